"""Calibration accuracy against synthetic ground truth, and SyncRig against aniposelib on the
SAME detections (issue 7 measurement).

A ring of known cameras (1280x720, f ~1000 px, k1/k2/p1/p2 distortion, principal points off
centre) sees a 10x7 ChArUco board (60 mm squares) in random poses: front side only, inside the
image, not too oblique, sometimes partly occluded, with Gaussian pixel noise. Both calibrations get
the same corner detections; accuracy is measured after a similarity (Umeyama) alignment of the
camera centres onto the truth. aniposelib runs `CameraGroup.calibrate_rows` (its ChArUco path:
initCameraMatrix2D, PnP, spanning tree, iterative bundle adjustment) after an untimed warm-up
call (numba JIT). Both run with one BLAS thread (threaded OpenBLAS crawls on a shared machine).

    .venv/bin/python benchmarks/calibration.py [--cameras 4 --rows 250 --noise 0.3,0.5 --seed 3]

aniposelib (0.8) triangulates with JAX: tools/bootstrap.sh installs aniposelib (without its
dependencies) and its real ones; add JAX with `.venv/bin/pip install -e '.[compare]'`. Without
them the comparison says NOT RUN.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time

import numpy as np
from threadpoolctl import threadpool_limits

from controller.dataset.calibrate import calibrate_cameras
from controller.dataset.calibrate.synthetic import compare_to_truth, synthetic_calibration
from controller.dataset.cameras import CameraModel

ACCEPT = {"focal_rel": 0.01, "principal_rel": 0.01, "centre_mm": 2.0, "orientation_deg": 0.2}


def aniposelib_calibrate(syn) -> tuple[list[CameraModel], float]:  # noqa: ANN001
    from aniposelib.boards import CharucoBoard
    from aniposelib.cameras import CameraGroup

    spec = syn.spec
    bits, size = spec.dictionary.split("_")[1][0], int(spec.dictionary.rsplit("_", 1)[1])
    board = CharucoBoard(
        spec.squares_x,
        spec.squares_y,
        square_length=spec.square_mm,
        marker_length=spec.marker_mm,
        marker_bits=int(bits),
        dict_size=size,
    )
    names = [c.name for c in syn.cameras]
    group = CameraGroup.from_names(names)
    for cam, truth in zip(group.cameras, syn.cameras, strict=True):
        cam.set_size(truth.size)
    all_rows = []
    for name in names:
        det = syn.detections[name]
        rows = []
        for r in det.rows():
            ids, xy = det.view(int(r))
            rows.append(
                {
                    "framenum": int(r),
                    "corners": xy.reshape(-1, 1, 2).astype(np.float32),
                    "ids": ids.reshape(-1, 1),
                }
            )
        all_rows.append(board.fill_points_rows(rows))
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        error = group.calibrate_rows(
            all_rows, board, init_intrinsics=True, init_extrinsics=True, verbose=False
        )
    seconds = time.perf_counter() - started
    cams = [
        CameraModel(
            name=c.get_name(),
            size=tuple(c.get_size()),
            matrix=c.get_camera_matrix(),
            distortions=np.r_[c.get_distortions().reshape(-1), np.zeros(5)][:5],
            rotation=c.get_rotation(),
            translation=c.get_translation(),
        )
        for c in group.cameras
    ]
    return cams, seconds, float(error)


def summarise(errors: dict[str, dict]) -> dict:
    return {k: max(e[k] for e in errors.values()) for k in ACCEPT}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--rows", type=int, default=250, help="board poses (match rows)")
    ap.add_argument("--noise", default="0.3,0.5", help="pixel noise sigmas, comma-separated")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--no-aniposelib", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    anipose_ok = not args.no_aniposelib
    if anipose_ok:
        try:
            import aniposelib  # noqa: F401

            with threadpool_limits(1, "blas"):  # untimed warm-up: numba compiles on first use
                aniposelib_calibrate(synthetic_calibration(cameras=2, rows=30, seed=99))
        except Exception as exc:  # noqa: BLE001
            print(f"aniposelib NOT RUN: {exc!r} (install: .venv/bin/pip install -e '.[compare]')")
            anipose_ok = False

    results = []
    for noise in [float(x) for x in args.noise.split(",")]:
        syn = synthetic_calibration(cameras=args.cameras, rows=args.rows, noise_px=noise, seed=args.seed)
        views = {n: len(d.rows()) for n, d in syn.detections.items()}
        corners = sum(len(d.row) for d in syn.detections.values())
        started = time.perf_counter()
        ours = calibrate_cameras(syn.detections, syn.spec)
        ours_s = time.perf_counter() - started
        ours_err = summarise(compare_to_truth(ours.cameras, syn.cameras))
        entry = {
            "noise_px": noise,
            "views_per_camera": views,
            "corners": corners,
            "syncrig": {
                **ours_err,
                "mean_reprojection_px": ours.mean_error_px,
                "seconds": ours_s,
                "ba_iterations": ours.bundle["iterations"],
                "ba_seconds": ours.bundle["seconds"],
            },
        }
        if anipose_ok:
            with threadpool_limits(1, "blas"):
                cams, seconds, error = aniposelib_calibrate(syn)
            entry["aniposelib"] = {
                **summarise(compare_to_truth(cams, syn.cameras)),
                "its_error": error,
                "seconds": seconds,
            }
            entry["time_ratio_aniposelib_over_syncrig"] = seconds / ours_s
        results.append(entry)

        print(
            f"\nnoise {noise} px: {args.cameras} cameras, {args.rows} board poses, {corners} corners, "
            f"views per camera {views}"
        )
        print(
            f"{'':12s} {'focal %':>9s} {'princ. pt %':>11s} {'centre mm':>10s} "
            f"{'orient deg':>10s} {'time s':>8s}"
        )
        rows = [("syncrig", entry["syncrig"])] + ([("aniposelib", entry["aniposelib"])] if anipose_ok else [])
        for label, r in rows:
            print(
                f"{label:12s} {100 * r['focal_rel']:9.3f} {100 * r['principal_rel']:11.3f} "
                f"{r['centre_mm']:10.2f} {r['orientation_deg']:10.3f} {r['seconds']:8.1f}"
            )
        print(
            f"{'acceptance':12s} {100 * ACCEPT['focal_rel']:9.3f} {100 * ACCEPT['principal_rel']:11.3f} "
            f"{ACCEPT['centre_mm']:10.2f} {ACCEPT['orientation_deg']:10.3f}   (worst camera shown)"
        )
        # A correct fit leaves exactly the noise: for Gaussian noise of sigma per axis the mean
        # 2D error is sigma * sqrt(pi / 2) (Rayleigh), so "<= 0.5 px" is reachable for sigma <= 0.4.
        floor = noise * np.sqrt(np.pi / 2)
        geometry_ok = all(entry["syncrig"][k] < v for k, v in ACCEPT.items())
        entry["syncrig"]["noise_floor_px"] = floor
        print(
            f"syncrig mean reprojection error {ours.mean_error_px:.3f} px (noise alone: {floor:.3f} px); "
            f"BA {ours.bundle['iterations']} iterations, {ours.bundle['seconds']:.1f} s; geometry "
            f"{'PASS' if geometry_ok else 'FAIL'}; mean error <= 0.5 px: "
            f"{'PASS' if ours.mean_error_px <= 0.5 else 'no (the noise floor is above 0.5 px)'}"
        )
        if anipose_ok:
            print(f"time ratio aniposelib / syncrig: {entry['time_ratio_aniposelib_over_syncrig']:.2f}x")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
