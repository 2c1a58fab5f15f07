"""ChArUco detection recall against ground truth, over random start times of a recording.

The simulated board's pose is a function of absolute time (`charuco_sim.board_pose`, an 8 s
trajectory), so each recording films a different stretch of it: the board leaves a camera's view,
turns edge-on, passes under the stamps. For N random start phases this renders each camera's
frames of a recording (`--seconds` at `--fps`, no encoder) and prints, per camera and phase, the
rows where ground truth shows the whole board (`GroundTruth.board_in_view`, stamps as occluder)
and how many of those the detector missed; then the distribution, and how often a fixed share of
all rows (`--share`, what the detection test once required) would not have been reached.

    .venv/bin/python benchmarks/charuco_recall.py [--phases 40 --seed 7 --cameras 3]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pi-deploy"))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from controller.dataset.board.check import MIN_CORNERS  # noqa: E402
from controller.dataset.ground_truth import ground_truth_from_description  # noqa: E402
from syncrig_agent.sim.charuco_scene import CharucoScene  # noqa: E402
from syncrig_agent.sim.charuco_sim import DEFAULT_PERIOD_S, camera_config, scene_description  # noqa: E402
from syncrig_agent.sim.scene import SyntheticScene  # noqa: E402

T_BASE = 1_790_000_000_000_000_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phases", type=int, default=40, help="random start times")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=4.0)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--share", type=float, default=0.8, help="the fixed share of all rows to compare with")
    args = ap.parse_args()
    names = [f"cam{i}" for i in range(args.cameras)]
    description = scene_description(names, args.width, args.height)
    truth = ground_truth_from_description(description)
    detector = cv2.aruco.CharucoDetector(truth.board.cv_board())
    stamps = SyntheticScene(args.width, args.height, names[0]).stamp_region
    scenes = {n: CharucoScene(args.width, args.height, n, camera_config(description, n)) for n in names}
    rows = int(round(args.seconds * args.fps))
    step_ns = int(round(1e9 / args.fps))
    rng = random.Random(args.seed)
    in_view_counts, recalls, below_share = [], [], 0
    print(f"{rows} rows per recording; per camera: rows with the whole board in view / missed / found")
    for _ in range(args.phases):
        t0 = T_BASE + rng.randrange(int(DEFAULT_PERIOD_S * 1e9))
        cells = []
        short = False
        for model in truth.cameras:
            scene = scenes[model.name]
            in_view = missed = found = 0
            for k in range(rows):
                t = t0 + k * step_ns
                gray = np.ascontiguousarray(scene.render(t, k)[: args.height])
                _, ids, _, _ = detector.detectBoard(gray)
                hit = ids is not None and len(ids) >= MIN_CORNERS
                found += hit
                if truth.board_in_view(model, t, occluder=stamps):
                    in_view += 1
                    missed += not hit
            in_view_counts.append(in_view)
            recalls.append(1.0 - missed / in_view if in_view else float("nan"))
            short |= found < args.share * rows
            cells.append(f"{model.name} {in_view:3d}/{missed}/{found:3d}")
        below_share += short
        phase = (t0 - T_BASE) / 1e9
        print(f"start phase {phase:5.2f} s  " + "  ".join(cells), flush=True)
    rec = np.asarray(recalls, dtype=float)
    counts = np.asarray(in_view_counts)
    print(
        f"\n{args.phases} phases x {args.cameras} cameras: whole board in view in "
        f"{counts.min()}..{counts.max()} of {rows} rows (median {np.median(counts):.0f}); "
        "recall over those rows: "
        f"min {np.nanmin(rec):.3f}, p5 {np.nanpercentile(rec, 5):.3f}, median {np.nanmedian(rec):.3f}; "
        f"phases where some camera found the board in < {args.share:.0%} of all rows: {below_share}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
