"""What the typed replies cost: reading and writing a real STATUS through `contract/protocol/replies.py`
against the baseline of a plain JSON encode + decode of the same dict (what the wire costs anyway),
in this process, on the STATUS of a simulated rig of N cameras.

    .venv/bin/python benchmarks/replies.py [--cameras 3 --repeats 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from controller.rig.simulated import SimulatedRig, sim_cameras  # noqa: E402
from syncrig_agent.contract.protocol import STATUS  # noqa: E402
from syncrig_agent.contract.protocol.replies import StatusReply  # noqa: E402


def per_call_us(fn, repeats: int) -> float:  # noqa: ANN001
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rig = SimulatedRig(Path(tmp), sim_cameras(args.cameras), width=320, height=240)
        rig.start()
        try:
            with rig.link() as link:
                # The reply without its envelope (type, re, ok): what StatusReply types.
                wire = {"status": link.request({"type": STATUS})["status"]}
        finally:
            rig.stop()
    typed = StatusReply.from_dict(wire)
    assert typed.to_dict() == wire, "a STATUS read and written again must be the same JSON"
    baseline = per_call_us(lambda: json.loads(json.dumps(wire)), args.repeats)
    read = per_call_us(lambda: StatusReply.from_dict(wire), args.repeats)
    write = per_call_us(typed.to_dict, args.repeats)
    size = len(json.dumps(wire))
    print(f"STATUS of {args.cameras} cameras, {size} bytes of JSON, {args.repeats} calls each")
    print(f"{'':40s}{'µs/call':>10s}{'× baseline':>12s}")
    print(f"{'json.dumps + json.loads (baseline)':40s}{baseline:10.1f}{1.0:12.2f}")
    print(f"{'StatusReply.from_dict (read, checked)':40s}{read:10.1f}{read / baseline:12.2f}")
    print(f"{'StatusReply.to_dict (write)':40s}{write:10.1f}{write / baseline:12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
