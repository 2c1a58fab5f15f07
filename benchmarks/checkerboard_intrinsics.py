"""Checkerboard intrinsics from real photographs against an independent calibration of the same
cameras: Pose2Sim's demo (4 cameras, 1088x1920, 7 photographs each of a printed checkerboard with
4x7 inner corners of 60 mm, as its Config.toml says) through `intrinsics_from_pictures` (what
`syncrig intrinsics --checkerboard 7x4 --square-mm 60` runs), compared with the demo's Qualisys
calibration (`calibration/Calib.qca.txt`; pixels = sensor units / 64, the principal point relative
to the video's field of view, as Pose2Sim's calib_qca_fun reads it; every camera has viewrotation 0).

    .venv/bin/python benchmarks/checkerboard_intrinsics.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pi-deploy"))

import tomllib  # noqa: E402

from controller.dataset.board.spec import BoardSpec  # noqa: E402
from controller.dataset.calibrate.standalone import intrinsics_from_pictures  # noqa: E402
from controller.dataset.imports.calibration import read_calibration  # noqa: E402
from controller.dataset.sample_data import pose2sim_demo  # noqa: E402


def qualisys_pixels(path: Path) -> dict[str, dict]:
    """The Qualisys file's intrinsics in pixels through the calibration importer (the one reader of
    .qca.txt). k1/k2 are given as the file states them: Pose2Sim's conversion (and so the importer)
    divides them by 64 like the pixel units, which the photographs' own k1 does not support."""
    out = {}
    for cam in read_calibration(path).cameras:
        out[cam.name] = {
            "fx": cam.matrix[0, 0],
            "fy": cam.matrix[1, 1],
            "cx": cam.matrix[0, 2],
            "cy": cam.matrix[1, 2],
            "k1": cam.distortions[0] * 64,
            "k2": cam.distortions[1] * 64,
        }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", default="Demo_SinglePerson")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    demo = pose2sim_demo(args.demo)
    settings = tomllib.loads((demo / "Config.toml").read_text())["calibration"]["calculate"]["intrinsics"]
    rows, cols = settings["intrinsics_corners_nb"]  # Pose2Sim: [H, W] inner corners
    spec = BoardSpec.checkerboard(cols, rows, float(settings["intrinsics_square_size"]))
    folders = sorted((demo / "calibration" / "intrinsics").glob("int_*_img"))
    sources = {f.name.split("_")[1]: f for f in folders}
    started = time.perf_counter()
    ours = intrinsics_from_pictures(sources, spec)
    seconds = time.perf_counter() - started
    theirs = qualisys_pixels(demo / "calibration" / "Calib.qca.txt")
    print(f"{spec.describe()}, {len(sources)} cameras, {seconds:.1f} s")
    print(
        f"{'camera':8s} {'pictures':>8s} {'rms px':>7s} {'f ours':>8s} {'f QTM':>8s} {'f diff %':>8s} "
        f"{'cx ours':>8s} {'cx QTM':>8s} {'cy ours':>8s} {'cy QTM':>8s} {'pp diff px':>10s} "
        f"{'k1 ours':>8s} {'k1 QTM':>8s}"
    )
    table = {}
    for name, r in ours.items():
        k, q = r["intrinsics"].matrix, theirs[name]
        f_ours = (k[0, 0] + k[1, 1]) / 2
        f_qtm = (q["fx"] + q["fy"]) / 2
        used = sum(isinstance(v, float) for v in r["pictures"].values())
        pp = float(((k[0, 2] - q["cx"]) ** 2 + (k[1, 2] - q["cy"]) ** 2) ** 0.5)
        row = {
            "pictures_used": used,
            "pictures": len(r["pictures"]),
            "rms_px": r["intrinsics"].rms_px,
            "focal_ours": f_ours,
            "focal_qualisys": f_qtm,
            "focal_diff_rel": f_ours / f_qtm - 1,
            "principal_ours": [k[0, 2], k[1, 2]],
            "principal_qualisys": [q["cx"], q["cy"]],
            "principal_diff_px": pp,
            "k1_ours": float(r["intrinsics"].distortions[0]),
            "k1_qualisys": q["k1"],
        }
        table[name] = row
        print(
            f"{name:8s} {used:>4d}/{len(r['pictures']):<3d} {row['rms_px']:7.3f} {f_ours:8.1f} {f_qtm:8.1f} "
            f"{100 * row['focal_diff_rel']:8.2f} {k[0, 2]:8.1f} {q['cx']:8.1f} {k[1, 2]:8.1f} {q['cy']:8.1f} "
            f"{pp:10.1f} {row['k1_ours']:8.4f} {q['k1']:8.4f}"
        )
    if args.json:
        args.json.write_text(json.dumps({"board": spec.as_dict(), "cameras": table}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
