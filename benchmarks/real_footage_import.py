"""Real footage from another rig, end to end (issue 13): Pose2Sim's demo trials (4 cameras, 60 fps,
H.264 with B-frames and VP9, 1080 and 1088 px wide, a Qualisys calibration made for 1088x1920)
through `syncrig import` (+ --calibration) → `syncrig pose` (MediaPipe Holistic) → `syncrig
triangulate` → TRC export, timing each stage and reporting what the import did per camera, the exact
rate, the padding notes, the triangulated fraction and reprojection error per keypoint group, and
bone-length consistency (a rigid segment's length should not change: coefficient of variation over
frames). With --keypoint-seeds N it also sweeps the 2D-keypoint importers: DeepLabCut h5/csv, SLEAP
slp/analysis h5 and Lightning Pose CSV made from known 3D points through known cameras (0.5 px noise,
10 % missing, 5 % low-likelihood outliers), median 3D error per format and seed.

    .venv/bin/python benchmarks/real_footage_import.py [--demo Demo_SinglePerson] [--no-pose]
        [--keypoint-seeds 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

# Rigid body segments (MediaPipe body indices): their length must not change over frames.
SEGMENTS = {
    "left upper arm": (11, 13),
    "right upper arm": (12, 14),
    "left forearm": (13, 15),
    "right forearm": (14, 16),
    "left thigh": (23, 25),
    "right thigh": (24, 26),
    "left shank": (25, 27),
    "right shank": (26, 28),
}


def run_demo(demo: str, work: Path, pose: bool) -> dict:
    from controller.dataset.export import export_session
    from controller.dataset.imports.footage import import_session
    from controller.dataset.pose.pose3d import load_pose3d, triangulate_session
    from controller.dataset.pose.run import pose_session
    from controller.dataset.sample_data import pose2sim_demo
    from controller.pipeline.footage_import import FootageImport

    folder = pose2sim_demo(demo)
    out: dict = {"demo": demo}
    t = time.perf_counter()
    done = import_session(
        FootageImport(folder / "videos", work), folder / "calibration" / "Calib.qca.txt", None, None
    )
    out["import_s"] = round(time.perf_counter() - t, 2)
    out["session"] = str(done.session)
    out["fps"] = str(done.imported.fps)
    out["absolute_time"] = done.imported.absolute
    out["cameras"] = {c.name: {**c.as_dict(), "size": f"{c.width}x{c.height}", "frames": c.frames}
                      for c in done.imported.cameras}  # fmt: skip
    out["synced_outputs"] = {
        cam: {k: r[k] for k in ("frames", "copied", "reencoded")}
        for cam, r in done.sync.report["outputs"]["cameras"].items()
    }
    out["calibration_notes"] = done.calibration.notes if done.calibration else []
    if not pose:
        return out
    t = time.perf_counter()
    pose_session(done.session)
    out["pose_s"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    report = triangulate_session(done.session)
    out["triangulate_s"] = round(time.perf_counter() - t, 2)
    out["groups"] = {
        g: {"triangulated": v["triangulated_fraction"], "reprojection_px": v["reprojection_px"]}
        for g, v in report["groups"].items()
    }
    points = load_pose3d(done.session).points.astype(np.float64)
    segments = {}
    for name, (a, b) in SEGMENTS.items():
        length = np.linalg.norm(points[:, a] - points[:, b], axis=-1)
        length = length[np.isfinite(length)]
        if length.size > 2:
            segments[name] = {
                "median_mm": round(float(np.median(length)), 1),
                "cv_pct": round(float(np.std(length) / np.mean(length) * 100), 1),
                "frames": int(length.size),
            }
    out["segments"] = segments
    trc = export_session(done.session, "trc", None, units="mm", up="y")
    out["trc"] = str(trc)
    return out


def keypoint_sweep(seeds: int, work: Path) -> dict:
    import test_keypoint_import as test  # its file writers are the ones the suite checks

    from controller.cli.main import main
    from controller.dataset.cameras import CameraSet
    from controller.dataset.pose.pose3d import load_pose3d
    from controller.dataset.pose.synthetic import ring_cameras, skeleton_motion, write_synthetic_session

    kinds = ("dlc-h5", "dlc-csv", "dlc-ma", "lightning-pose", "sleap-slp", "sleap-h5", "sleap-tracks")
    results: dict = {k: [] for k in kinds}
    warnings.simplefilter("ignore", RuntimeWarning)  # the session's human skeleton falls off-image
    for seed in range(seeds):
        session = work / f"kp{seed}"
        cams = ring_cameras(4, radius_mm=500.0, height_mm=350.0, target_mm=(0.0, 0.0, 30.0), seed=seed)
        write_synthetic_session(session, cams, skeleton_motion(test.FRAMES, 30.0, seed=seed), video_scale=0.1)
        rng = np.random.default_rng(seed)
        base = np.array([[40, 0, 30], [20, 12, 40], [20, -12, 40], [0, 0, 35], [-60, 0, 25], [-120, 0, 5.0]])
        truth = base[None] + np.cumsum(rng.normal(0, 3, (test.FRAMES, 1, 3)), axis=0)
        rig = CameraSet(cams)
        for kind in kinds:
            files = test.write_files(kind, session, rig, truth, work / f"kp{seed}-{kind}")
            with contextlib.redirect_stdout(io.StringIO()):  # the commands' own summaries
                assert main(["pose", str(session), "--import", *map(str, files), "--force"]) == 0
                assert main(["triangulate", str(session), "--quiet"]) == 0
            pose = load_pose3d(session)
            want = test.two_mice(truth) if kind in test.MULTI else truth
            err = np.linalg.norm(pose.points - want[pose.rows], axis=-1)
            ok = np.isfinite(err)
            results[kind].append(
                {"seed": seed, "median_mm": float(np.median(err[ok])), "done": float(ok.mean())}
            )
    return results


def main_cli() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default="Demo_SinglePerson")
    ap.add_argument("--no-pose", action="store_true", help="import only (no MediaPipe, no triangulation)")
    ap.add_argument("--keypoint-seeds", type=int, default=0, help="also sweep the keypoint importers")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="syncrig-import-bench-") as tmp:
        work = Path(tmp)
        figures = {"demo": run_demo(args.demo, work / "sessions", not args.no_pose)}
        if args.keypoint_seeds:
            figures["keypoints"] = keypoint_sweep(args.keypoint_seeds, work)
    d = figures["demo"]
    print(f"{d['demo']}: import {d['import_s']} s, {d['fps']} fps, absolute time {d['absolute_time']}")
    print("  camera  source  codec  size        frames  raw video    synced outputs (copied / re-encoded)")
    for cam, c in d["cameras"].items():
        s = d["synced_outputs"][cam]
        print(f"  {cam:<7} {c['source']:<10} {c['codec']:<5} {c['size']:<11} {c['frames']:6d}  "
              f"{c['video']:<11}  {s['copied']} / {s['reencoded']}")  # fmt: skip
    for note in d["calibration_notes"]:
        print(f"  calibration: {note}")
    if "groups" in d:
        print(f"  pose {d['pose_s']} s, triangulate {d['triangulate_s']} s")
        for g, v in d["groups"].items():
            r = v["reprojection_px"]
            print(f"  {g:<11} {v['triangulated']:.1%} triangulated, reproj. p50 {r['p50']} p95 {r['p95']} px")
        for name, s in d["segments"].items():
            print(f"  {name:<16} {s['median_mm']:7.1f} mm, CV {s['cv_pct']:4.1f} % over {s['frames']} frames")
    if "keypoints" in figures:
        print("  keypoint importer   median 3D error over seeds: min / median / max mm   triangulated")
        for kind, rows in figures["keypoints"].items():
            m = np.array([r["median_mm"] for r in rows])
            done = np.mean([r["done"] for r in rows])
            print(f"  {kind:<18} {m.min():.3f} / {np.median(m):.3f} / {m.max():.3f}   {done:.1%}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main_cli())
