"""Does TTL out delay frame capture? (issue 17: "the TTL must never delay frame capture")

Runs the simulated rig (real agent processes) alternately without and with TTL out on cam0
(start + strobe at every frame + barcodes), same settings, and compares cam0's software wake
error per frame (frames.csv wake_ns − target_ns: when the capture thread got to slot n) and
the TTL edges' own lateness (ttl/cam0.out.csv wall_ns − target_ns). The strobe edge and the frame
are due at the same Tn: the TTL thread waits one SCHED_FIFO step below capture, so capture should
not move. On a shared, loaded machine both distributions are wide; compare the two columns, which
ran interleaved on the same machine.

    .venv/bin/python benchmarks/ttl_capture_impact.py [--seconds 20 --repeats 3 --out ttl_impact.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from controller.rig.recording import RecordingRequest, record
from controller.rig.simulated import SimulatedRig, sim_cameras, with_ttl_out
from controller.transfer import Collection
from syncrig_agent.contract.formats import read_frame_table
from syncrig_agent.contract.formats.ttl import read_ttl_out
from syncrig_agent.contract.layout import SessionLayout


def run_once(workdir: Path, ttl: bool, seconds: float, fps: float) -> dict:
    cams = sim_cameras(2, trigger="wake")
    if ttl:
        cams = with_ttl_out(cams, ["start", "strobe", "barcode"])
    rig = SimulatedRig(workdir / "rig", cams, width=320, height=240, bitrate=1_000_000, spin_us=300)
    rig.start()
    try:
        with rig.link() as link:
            session = record(
                link,
                workdir / "sessions",
                rig.camera_infos(),
                RecordingRequest(fps=fps, seconds=seconds),
                collection=Collection(stream=False, secret_file=rig.secret_file),
            )
    finally:
        rig.stop()
    layout = SessionLayout(session)
    table = read_frame_table(layout.raw.frames("cam0"))
    wake_us = (table["wake_ns"] - table["target_ns"]) / 1e3
    out = {"ttl": ttl, "frames": int(wake_us.size), "wake_us": _stats(wake_us)}
    if ttl:
        edges = read_ttl_out(layout.ttl.out_csv("cam0"))
        out["ttl_edges"] = int(edges["edge"].size)
        out["ttl_late_us"] = _stats((edges["wall_ns"] - edges["target_ns"]) / 1e3)
    return out


def _stats(values: np.ndarray) -> dict:
    return {
        "p50": float(np.percentile(values, 50)),
        "p99": float(np.percentile(values, 99)),
        "max": float(values.max()),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--out", type=Path, default=Path("ttl_impact.json"))
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            for ttl in (False, True):
                runs.append(run_once(Path(tmp) / f"{i}-{int(ttl)}", ttl, args.seconds, args.fps))
    print(
        f"{args.repeats} × {args.seconds:g} s at {args.fps:g} fps, cam0 software wake error (µs), interleaved"
    )
    head = f"{'run':>4} {'TTL':>4} {'frames':>7} {'wake p50':>9} {'wake p99':>9} {'wake max':>9}"
    print(head + "   TTL edge late p50/p99/max")
    for i, r in enumerate(runs):
        w = r["wake_us"]
        late = r.get("ttl_late_us")
        extra = (
            f"   {late['p50']:.0f} / {late['p99']:.0f} / {late['max']:.0f} ({r['ttl_edges']} edges)"
            if late
            else ""
        )
        print(
            f"{i // 2:>4} {'yes' if r['ttl'] else 'no':>4} {r['frames']:>7} "
            f"{w['p50']:>9.1f} {w['p99']:>9.1f} {w['max']:>9.1f}{extra}"
        )
    args.out.write_text(json.dumps({"args": vars(args) | {"out": str(args.out)}, "runs": runs}, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
