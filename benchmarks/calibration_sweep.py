"""Calibration robustness: many simulated ChArUco sessions, each calibrated end to end (board
detection in the H.264 synced outputs, then `calibrate_session`) and compared with its ground truth.

Each session is drawn from a seeded generator: 2..6 cameras, 640x480 or 1280x720, 4..40 s at --fps,
and a random start time (the simulated board follows an 8 s trajectory of absolute time, so the start
decides which stretch of it a recording films: the board leaving a view, turning edge-on, grazing).
The session is made by `controller.dataset.synthetic_session.write_charuco_session` (the scene
`syncrig record --sim-scene charuco` films, without the rig). A session passes when every camera is
within focal 1 %, principal point 1 %, centre 2 mm and orientation 0.2° of the truth (after a
similarity alignment). Prints one line per session, the distribution of each figure, writes JSON.

    nice .venv/bin/python benchmarks/calibration_sweep.py [--sessions 30 --seed 13 --fps 30 --jobs 2]
        [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pi-deploy"))

import numpy as np  # noqa: E402

from controller.dataset.calibrate import CalibrationError, calibrate_session  # noqa: E402
from controller.dataset.calibrate.synthetic import compare_to_truth  # noqa: E402
from controller.dataset.cameras import load_calibration_toml  # noqa: E402
from controller.dataset.ground_truth import load_ground_truth  # noqa: E402
from controller.dataset.synthetic_session import write_charuco_session  # noqa: E402
from syncrig_agent.contract.layout import SessionLayout  # noqa: E402
from syncrig_agent.sim.charuco_sim import DEFAULT_PERIOD_S  # noqa: E402

ACCEPT = {"focal_rel": 0.01, "principal_rel": 0.01, "centre_mm": 2.0, "orientation_deg": 0.2}
T_BASE = 1_790_000_000_000_000_000
SIZES = ((640, 480), (1280, 720))


def draw_cases(count: int, seed: int, fps: int = 30) -> list[dict]:
    """The sessions of a sweep: a pure function of (count, seed, fps)."""
    rng = random.Random(seed)
    cases = []
    for k in range(count):
        width, height = SIZES[k % 2]  # both sizes equally often
        cases.append(
            {
                "cameras": rng.randint(2, 6),
                "width": width,
                "height": height,
                "fps": fps,
                "seconds": rng.randint(4, 40),
                "start_ns": T_BASE + rng.randrange(int(DEFAULT_PERIOD_S * 1e9)),
            }
        )
    return cases


def run_case(case: dict, workdir: Path) -> dict:
    """Make, detect, calibrate and compare one session; the figures (worst camera) or the error."""
    session = workdir / f"session-{os.getpid()}"
    shutil.rmtree(session, ignore_errors=True)
    started = time.perf_counter()
    write_charuco_session(
        session,
        case["cameras"],
        case["width"],
        case["height"],
        case["fps"],
        case["seconds"],
        case["start_ns"],
    )
    made = time.perf_counter()
    truth = load_ground_truth(session)
    out = dict(case, make_s=round(made - started, 1))
    try:
        report = calibrate_session(session, truth.board)
    except Exception as exc:  # noqa: BLE001 - a sweep records every way a session fails
        kind = "" if isinstance(exc, CalibrationError) else f"{type(exc).__name__} (escaped): "
        out.update(passed=False, error=kind + str(exc), calibrate_s=round(time.perf_counter() - made, 1))
        return out
    out["calibrate_s"] = round(time.perf_counter() - made, 1)
    cameras, _meta = load_calibration_toml(SessionLayout(session).calibration_toml)
    errors = compare_to_truth(cameras, truth.cameras)
    worst = {k: max(e[k] for e in errors.values()) for k in ACCEPT}
    out.update(worst)
    out["reprojection_mean_px"] = report["reprojection_px"]["mean"]
    out["views_dropped"] = sum(c.get("views_dropped", 0) for c in report["cameras"].values())
    out["passed"] = all(worst[k] <= ACCEPT[k] for k in ACCEPT)
    return out


def distribution(values: list[float]) -> str:
    v = np.asarray(values, dtype=np.float64)
    p = np.percentile(v, [0, 50, 90, 100])
    return f"min {p[0]:.4g}  median {p[1]:.4g}  p90 {p[2]:.4g}  max {p[3]:.4g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--jobs", type=int, default=1, help="sessions made and calibrated at once (processes)")
    ap.add_argument("--json", type=Path, help="write every session's figures here")
    ap.add_argument("--workdir", type=Path, help="where sessions are made (default: a temp dir)")
    args = ap.parse_args()
    cases = draw_cases(args.sessions, args.seed, args.fps)
    results = []
    with tempfile.TemporaryDirectory(prefix="calsweep-") as tmp:  # noqa: SIM117
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        print(
            f"{'#':>3s} {'cams':>4s} {'size':>9s} {'sec':>4s} {'phase s':>7s}  {'focal %':>8s} "
            f"{'pp %':>7s} {'ctr mm':>7s} {'ori deg':>7s} {'reproj':>6s} {'time s':>6s}  verdict"
        )
        pool = ProcessPoolExecutor(args.jobs) if args.jobs > 1 else None
        if pool is None:
            finished = ((k, run_case(case, workdir)) for k, case in enumerate(cases))
        else:
            futures = {pool.submit(run_case, case, workdir): k for k, case in enumerate(cases)}
            finished = ((futures[f], f.result()) for f in as_completed(futures))
        for k, r in finished:
            case = cases[k]
            r["index"] = k
            results.append(r)
            if args.json:  # after every session: a long sweep cut short still leaves its figures
                args.json.write_text(
                    json.dumps({"accept": ACCEPT, "seed": args.seed, "sessions": results}, indent=2)
                )
            phase = (case["start_ns"] - T_BASE) / 1e9
            size = f"{case['width']}x{case['height']}"
            head = f"{k:3d} {case['cameras']:4d} {size:>9s} {case['seconds']:4d} {phase:7.2f}"
            took = r["make_s"] + r["calibrate_s"]
            if "error" in r:
                print(f"{head}  {'':8s} {'':7s} {'':7s} {'':7s} {'':6s} {took:6.0f}  FAILED: {r['error']}")
            else:
                print(
                    f"{head}  {100 * r['focal_rel']:8.4f} {100 * r['principal_rel']:7.4f} "
                    f"{r['centre_mm']:7.3f} {r['orientation_deg']:7.4f} {r['reprojection_mean_px']:6.3f} "
                    f"{took:6.0f}  {'pass' if r['passed'] else 'OUT OF BOUNDS'}"
                )
            sys.stdout.flush()
        if pool is not None:
            pool.shutdown()
    done = [r for r in results if "error" not in r]
    passed = sum(r["passed"] for r in results)
    failed = len(results) - len(done)
    print(f"\n{passed}/{len(results)} sessions within every bound; {failed} failed to calibrate")
    if done:
        print("worst camera per session:")
        for key, scale, unit in (
            ("focal_rel", 100, "%"),
            ("principal_rel", 100, "%"),
            ("centre_mm", 1, "mm"),
            ("orientation_deg", 1, "deg"),
        ):
            bound = ACCEPT[key] * scale
            print(f"  {key:16s} {distribution([r[key] * scale for r in done])}  ({unit}; bound {bound:g})")
    if args.json:
        args.json.write_text(json.dumps({"accept": ACCEPT, "seed": args.seed, "sessions": results}, indent=2))
        print(f"wrote {args.json}")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
