"""Agent overhead per frame, excluding the encoder (issue 2 measurement).

Times, in this process and on the same frames, each step the agent adds around the encoder:
grid wake bookkeeping (target → monotonic conversion, timer, priority window), rendering the
synthetic frame (a Pi would get it from the ISP instead), handing it to the encoder queue, and
writing .h264 + .pts + .frames.csv. The baseline is libx264 encoding the same frame.

    .venv/bin/python benchmarks/agent_overhead.py [--width 1536 --height 864 --frames 600]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from syncrig_agent.contract.grid import FrameGrid, period_ns_for_fps
from syncrig_agent.frames import CapturedFrame, EncodedFrame, FrameMeta
from syncrig_agent.outputs.local_file import LocalFileOutput
from syncrig_agent.sim.scene import SyntheticScene
from syncrig_agent.timing import GridWaiter, SystemClock


def per_call_us(fn, n: int) -> np.ndarray:
    out = np.empty(n)
    for i in range(n):
        t = time.perf_counter_ns()
        fn(i)
        out[i] = (time.perf_counter_ns() - t) / 1e3
    return out


def describe(name: str, values: np.ndarray) -> float:
    med = float(np.median(values))
    print(f"  {name:<34} median {med:8.1f} µs   p99 {np.percentile(values, 99):8.1f} µs")
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=1536)
    ap.add_argument("--height", type=int, default=864)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--fps", type=float, default=56.0)
    args = ap.parse_args()
    n = args.frames
    period = period_ns_for_fps(args.fps)
    clock = SystemClock()
    grid = FrameGrid(time.time_ns(), period)
    scene = SyntheticScene(args.width, args.height, "cam0")
    waiter = GridWaiter(clock, spin_ns=0)
    print(f"agent overhead per frame at {args.width}x{args.height}, {n} frames")

    # Targets already in the past: measures the bookkeeping of a wake, not the sleep itself.
    wake = per_call_us(lambda i: waiter.wait_until(grid.t0_ns - 10**9 + i), n)
    # A bounded ring, as in the agent, where the encoder frees each frame after use (keeping
    # every copy alive would measure fresh page faults instead of the copy).
    ring = 8
    frames: list[np.ndarray] = [np.empty(0)] * ring

    def render_copy(i: int) -> None:
        frames[i % ring] = scene.render(time.time_ns(), i).copy()

    render = per_call_us(render_copy, n)

    import queue

    q: queue.Queue = queue.Queue(maxsize=n + 1)

    def submit(i: int) -> None:
        meta = FrameMeta(i, grid.target(i), time.monotonic_ns(), grid.target(i), grid.target(i) + 5)
        q.put_nowait(CapturedFrame(frames[i % ring], meta))

    handoff = per_call_us(submit, n)

    # Encode once to get real packets, and time it: the baseline.
    rate = Fraction(args.fps).limit_denominator(1001)
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = args.width, args.height, "yuv420p"
    ctx.framerate, ctx.time_base, ctx.bit_rate = rate, 1 / rate, 25_000_000
    ctx.gop_size, ctx.max_b_frames = round(args.fps), 0
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency"}
    packets: list[bytes] = []

    def encode(i: int) -> None:
        frame = scene.render(time.time_ns(), i)
        vf = av.VideoFrame.from_ndarray(frame, format="yuv420p")
        vf.pts = i
        packets.extend(bytes(p) for p in ctx.encode(vf))

    enc = per_call_us(encode, n)
    packets.extend(bytes(p) for p in ctx.encode(None))

    with tempfile.TemporaryDirectory() as tmp:
        out = LocalFileOutput(Path(tmp), "cam0", grid.t0_ns)
        out.start()
        write = per_call_us(
            lambda i: out.output_frame(
                EncodedFrame(
                    packets[i],
                    i % 56 == 0,
                    FrameMeta(i, grid.target(i) + 5, i, grid.target(i), grid.target(i) + 5),
                    i,
                )
            ),
            min(n, len(packets)),
        )
        out.stop()
    waiter.close()

    parts = {
        "grid wake bookkeeping": describe("grid wake bookkeeping", wake),
        "synthetic render + copy": describe("synthetic render + copy", render),
        "hand-off to encoder queue": describe("hand-off to encoder queue", handoff),
        "write .h264/.pts/.frames.csv": describe("write .h264/.pts/.frames.csv", write),
    }
    base = describe("baseline: libx264 encode", enc)
    total = sum(parts.values())
    without_render = total - parts["synthetic render + copy"]
    print(
        f"\n  agent overhead excluding encode: {total:.1f} µs/frame "
        f"({100 * total / base:.1f} % of the encode time)"
    )
    print(
        f"  … of which not simulation-specific (no render): {without_render:.1f} µs/frame "
        f"({100 * without_render / base:.1f} % of encode); frame period at {args.fps:g} fps: "
        f"{period / 1e3:.0f} µs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
