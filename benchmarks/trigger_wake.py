"""Trigger wake error of simulated cameras on the shared grid (issue 2 measurement).

For each scenario (idle / both cores loaded) × (SCHED_FIFO permitted / not), records a session on
a simulated rig of real agent processes and reports, from the frames.csv files:
  * per camera: wake error = actual capture time − grid target (µs: p50 / p99 / max)
  * cross-camera spread per grid index = max − min capture time over cameras (µs)
  * frames missing (late skips, overflows)

    .venv/bin/python benchmarks/trigger_wake.py                # 3 cameras, 56 fps, 60 s per scenario
    .venv/bin/python benchmarks/trigger_wake.py --seconds 10   # quicker look
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from controller.rig.recording import RecordingRequest, record  # noqa: E402
from controller.rig.simulated import SimulatedRig, sim_cameras  # noqa: E402
from syncrig_agent.contract.formats import read_frame_table, read_manifest  # noqa: E402
from syncrig_agent.contract.layout import SessionLayout  # noqa: E402

from _common import CpuLoad, fmt, stats_us  # noqa: E402


def run_scenario(
    workdir: Path,
    cameras: int,
    fps: float,
    seconds: float,
    loaded: bool,
    realtime: bool,
    spin_us: float,
    width: int,
    height: int,
) -> dict:
    # The software-trigger model: capture happens when the agent wakes, so the figures are the
    # scheduler's own.
    cams = sim_cameras(cameras, trigger="wake")
    rig = SimulatedRig(
        workdir / "rig",
        cams,
        width=width,
        height=height,
        bitrate=4_000_000,
        spin_us=spin_us,
        realtime=realtime,
    )
    rig.start()
    try:
        infos = rig.camera_infos()
        with rig.link() as link:
            if loaded:
                with CpuLoad(seconds + 15):
                    session = record(link, workdir / "sessions", infos, RecordingRequest(fps, seconds))
            else:
                session = record(link, workdir / "sessions", infos, RecordingRequest(fps, seconds))
    finally:
        rig.stop()
    manifest = read_manifest(session)
    raw = SessionLayout(session).raw
    tables = {c: read_frame_table(raw.frames(c)) for c in manifest.camera_names}
    result = {"cameras": {}, "fifo": {}}
    for cam in manifest.cameras:
        t = tables[cam["name"]]
        result["cameras"][cam["name"]] = {
            "wake": stats_us(t["wake_ns"] - t["target_ns"]),
            "frames": int(t["frame"].size),
            "expected": cam["expected_frames"],
            "drops": cam["drops"],
        }
        result["fifo"][cam["name"]] = (cam.get("realtime") or {}).get("sched_fifo")
    common = None
    for t in tables.values():
        idx = set(t["grid_index"].tolist())
        common = idx if common is None else common & idx
    idx = np.asarray(sorted(common or []), dtype=np.int64)
    wakes = np.stack([t["wake_ns"][np.searchsorted(t["grid_index"], idx)] for t in tables.values()])
    result["spread"] = stats_us(wakes.max(axis=0) - wakes.min(axis=0))
    all_wake = np.concatenate([t["wake_ns"] - t["target_ns"] for t in tables.values()])
    result["all_wake"] = stats_us(all_wake)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--fps", type=float, default=56.0)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--spin-us", type=float, default=300.0)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--scenarios", default="idle-fifo,loaded-fifo,idle-nofifo,loaded-nofifo")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    results = {}
    print(
        f"trigger wake: {args.cameras} cameras, {args.fps:g} fps, {args.seconds:g} s per scenario, "
        f"{args.width}x{args.height}, spin {args.spin_us:g} µs"
    )
    for scenario in args.scenarios.split(","):
        loaded = scenario.startswith("loaded")
        realtime = scenario.endswith("-fifo")
        with tempfile.TemporaryDirectory(prefix="bench-wake-") as tmp:
            started = time.monotonic()
            r = run_scenario(
                Path(tmp),
                args.cameras,
                args.fps,
                args.seconds,
                loaded,
                realtime,
                args.spin_us,
                args.width,
                args.height,
            )
        results[scenario] = r
        fifo = ",".join(f"{k}={'yes' if v else 'no'}" for k, v in r["fifo"].items())
        print(f"\n[{scenario}] ({time.monotonic() - started:.0f} s; SCHED_FIFO granted: {fifo})")
        for name, c in r["cameras"].items():
            print(
                f"  {name} wake error     {fmt(c['wake'])}  frames {c['frames']}/{c['expected']} "
                f"drops {c['drops']}"
            )
        print(f"  all cameras wake     {fmt(r['all_wake'])}")
        print(f"  cross-camera spread  {fmt(r['spread'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
