"""Start lead actually used on loopback (issue 2 measurement): from the controller's START
("click") to T0 and to the first captured frame, over repeated starts on a simulated rig.

    .venv/bin/python benchmarks/start_lead.py [--cameras 3 --starts 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from controller.rig.simulated import SimulatedRig, sim_cameras
from syncrig_agent.contract.formats import read_frame_table
from syncrig_agent.contract.grid import period_ns_for_fps
from syncrig_agent.contract.layout import SessionLayout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--starts", type=int, default=10)
    ap.add_argument("--fps", type=float, default=56.0)
    args = ap.parse_args()
    period = period_ns_for_fps(args.fps)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lead-") as tmp:
        cams = sim_cameras(args.cameras)
        rig = SimulatedRig(Path(tmp), cams, width=640, height=360, spin_us=300)
        rig.start()
        try:
            with rig.link() as link:
                for k in range(args.starts):
                    session = f"lead{k}"
                    click = time.time_ns()
                    started = link.start(session, period, args.fps, {c.name: c.name for c in cams}, frames=10)
                    acked = time.time_ns()
                    time.sleep(10 * period / 1e9 + 0.3)
                    link.stop()
                    first = min(
                        int(
                            read_frame_table(
                                SessionLayout(rig.data_dir(c.name) / session).raw.frames(c.name)
                            )["wall_ns"][0]
                        )
                        for c in cams
                    )
                    rows.append(
                        (
                            started["lead_ns"],
                            started["t0_ns"] - click,
                            acked - click,
                            first - click,
                            len(started.get("late", [])),
                        )
                    )
        finally:
            rig.stop()
    arr = np.asarray(rows, dtype=np.float64)
    print(f"start lead on loopback: {args.cameras} cameras, {args.starts} starts (ms)")
    print("  start  lead chosen  click→T0  click→all armed  click→first frame  late cameras")
    widths = (11, 8, 15, 17)

    def row(label: str, values_ms) -> str:
        return label + "".join(f"  {v:{w}.1f}" for v, w in zip(values_ms, widths, strict=True))

    for k, values in enumerate(arr):
        print(row(f"  {k:5d}", values[:4] / 1e6) + f"  {int(values[4]):12d}")
    print(row("  median", np.median(arr, axis=0)[:4] / 1e6))
    print(row("  max   ", arr.max(axis=0)[:4] / 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main())
