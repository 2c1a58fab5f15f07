"""Live streaming at rig scale: N cameras x 25 Mbit/s on loopback into the real receivers.

Each camera is its own process (like a Pi) running the agent's real StreamOutput, fed on an
absolute 56 Hz schedule with a real H.264 GOP at the target bitrate, encoded once up front (so 2
vCPUs are not spent on eight 1536x864 encoders; the receivers cannot tell the difference). The
receivers are the controller's ReceiverManager: one side-car process + one FFmpeg per camera.

Reported: frames received vs sent; capture -> on-disk latency (capture instant on the sender to
the side-car's write of the packet into stream/<cam>.h264 and FFmpeg's pipe, same host clock)
p50/p99/max; receiver CPU (side-cars + FFmpegs, from /proc). Baseline in the same process: the
same senders into a bare authenticated sink that reads and discards (network + sender share of
the latency), so the receivers' own cost shows as the difference.

    .venv/bin/python benchmarks/stream_receivers.py                  # 8 cams, 60 s
    .venv/bin/python benchmarks/stream_receivers.py --seconds 10     # quick look
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import pickle
import socket
import sys
import tempfile
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from controller.receivers import ReceiverManager, read_stream_table  # noqa: E402
from syncrig_agent.contract.formats.stream import FRAME_HEADER, decode_frame_header  # noqa: E402
from syncrig_agent.contract.layout import SessionLayout  # noqa: E402
from syncrig_agent.contract.protocol import accept_handshake, load_secret, read_message, write_secret  # noqa: E402
from syncrig_agent.frames import EncodedFrame, FrameMeta  # noqa: E402
from syncrig_agent.outputs.stream import StreamOutput  # noqa: E402

from _common import fmt, stats_us  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def encode_gop(width: int, height: int, fps: int, bitrate: int) -> list[tuple[bytes, bool]]:
    """One GOP of real H.264 at about the target bitrate (noise + motion keeps x264 honest)."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, "yuv420p"
    ctx.framerate = Fraction(fps)
    ctx.time_base = Fraction(1, fps)
    ctx.bit_rate = bitrate
    ctx.gop_size = fps
    ctx.options = {
        "preset": "ultrafast",
        "tune": "zerolatency",
        "x264-params": f"keyint={fps}:min-keyint={fps}:scenecut=0:repeat-headers=1"
        f":vbv-maxrate={bitrate // 1000}:vbv-bufsize={bitrate // 1000}",
    }
    ctx.open()
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (height * 3 // 2, width), dtype=np.uint8)
    packets = []
    for i in range(fps):
        img = np.roll(base, i * 7, axis=1)
        img[: height // 12] = rng.integers(0, 255, (height // 12, width), dtype=np.uint8)
        frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
        frame.pts = i
        packets += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(frame)]
    packets += [(bytes(p), bool(p.is_keyframe)) for p in ctx.encode(None)]
    assert packets[0][1], "a GOP starts with its keyframe"
    return packets


def sender(args: tuple) -> None:
    camera, address, secret, session_id, period, frames, packets_file, start_q, results = args
    with open(packets_file, "rb") as fh:
        packets = pickle.load(fh)
    host, port = address.rsplit(":", 1)
    t0 = 0
    out = StreamOutput((host, int(port)), secret, camera, session_id, t0, period, queue_frames=128)
    out.start()  # connects and authenticates now, before T0, as an agent does while arming
    results.put({"camera": camera, "ready": True})
    t0 = start_q.get()
    late = 0
    for n in range(frames):
        target = t0 + n * period
        delay = (target - time.time_ns()) / 1e9
        if delay > 0:
            time.sleep(delay)
        else:
            late += 1
        data, key = packets[n % len(packets)]
        now = time.time_ns()  # the capture instant as an agent would stamp it
        out.deliver(EncodedFrame(data, key, FrameMeta(n, now, now, target, now), n))
    out.stop()
    results.put({"camera": camera, "late_wakes": late, **out.report()})


def proc_cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def receiver_pids(manager: ReceiverManager) -> list[int]:
    pids = []
    for cam in manager.cameras:
        pid = manager.pid(cam)
        if pid:
            pids.append(pid)
        try:
            status = json.loads(manager.stream.files(cam)["status"].read_text())
            if status.get("ffmpeg_pid"):
                pids.append(int(status["ffmpeg_pid"]))
        except (OSError, ValueError):
            pass
    return pids


def run_senders(cams, destinations, secret, session_id, fps, seconds, packets_file):
    """Start one process per camera; T0 is chosen once all are up and connected (process start-up
    on 2 vCPUs must not be what is measured)."""
    period = round(1e9 / fps)
    frames = int(seconds * fps)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    start_qs = {cam: ctx.Queue() for cam in cams}
    procs = [
        ctx.Process(
            target=sender,
            args=(
                (
                    cam,
                    destinations[cam],
                    secret,
                    session_id,
                    period,
                    frames,
                    packets_file,
                    start_qs[cam],
                    results,
                ),
            ),
        )
        for cam in cams
    ]
    for p in procs:
        p.start()
    for _ in cams:
        assert results.get(timeout=120)["ready"]
    time.sleep(1.0)  # let FFmpeg processes finish starting
    t0 = time.time_ns() + 200_000_000
    for q in start_qs.values():
        q.put(t0)
    return procs, results, t0, frames


class DiscardSink:
    """Baseline receiver: authenticates, reads the framing, timestamps, keeps nothing."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.latencies: list[int] = []
        self.frames = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(sock,), daemon=True).start()

    def _read(self, sock: socket.socket) -> None:
        accept_handshake(sock, self.secret)
        read_message(sock)
        reader = sock.makefile("rb", buffering=1 << 20)
        while header := reader.read(FRAME_HEADER.size):
            row, size = decode_frame_header(header)
            if row is None:
                return
            reader.read(size)
            now = time.time_ns()
            with self._lock:
                self.frames += 1
                self.latencies.append(now - row.wall_ns)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--baseline-seconds", type=float, default=20.0)
    ap.add_argument("--fps", type=int, default=56)
    ap.add_argument("--bitrate", type=int, default=25_000_000)
    ap.add_argument("--width", type=int, default=1536)
    ap.add_argument("--height", type=int, default=864)
    ap.add_argument("--dir", type=Path, help="where the session is written (default: a temporary dir)")
    ap.add_argument("--keep", type=Path, help="also copy the receivers' frame tables here (for analysis)")
    args = ap.parse_args()
    cams = [f"cam{i}" for i in range(args.cameras)]
    with tempfile.TemporaryDirectory(prefix="syncrig-bench-stream-", dir=args.dir) as tmp:
        tmp = Path(tmp)
        packets = encode_gop(args.width, args.height, args.fps, args.bitrate)
        # x264's rate control overshoots on noise: one corrective pass lands near the target.
        rate = sum(len(p) for p, _ in packets) * 8 * args.fps / len(packets)
        packets = encode_gop(args.width, args.height, args.fps, int(args.bitrate * args.bitrate / rate))
        rate = sum(len(p) for p, _ in packets) * 8 * args.fps / len(packets)
        size = f"{args.width}x{args.height} @ {args.fps} fps"
        print(f"GOP: {len(packets)} frames, {rate / 1e6:.1f} Mbit/s per camera ({size})")
        packets_file = tmp / "gop.pkl"
        packets_file.write_bytes(pickle.dumps(packets))
        secret_file = tmp / "secret"
        write_secret(secret_file)
        secret = load_secret(secret_file)

        # Baseline: discard sink, same senders.
        sinks = {c: DiscardSink(secret) for c in cams}
        procs, results, _t0, frames = run_senders(
            cams,
            {c: s.address for c, s in sinks.items()},
            secret,
            "baseline",
            args.fps,
            args.baseline_seconds,
            packets_file,
        )
        for p in procs:
            p.join()
        base_lat = [v for s in sinks.values() for v in s.latencies]
        base_recv = sum(s.frames for s in sinks.values())
        print(
            f"\nbaseline (discard sink, {args.baseline_seconds:g} s): {base_recv}/{frames * len(cams)} frames"
        )
        print(f"  capture -> read   {fmt(stats_us(base_lat))}")

        # The real receivers.
        session_dir = tmp / "20260101-000000-0001"
        manager = ReceiverManager(session_dir, cams, secret_file, segment_seconds=2.0)
        destinations = manager.start()
        procs, results, t0, frames = run_senders(
            cams, destinations, secret, session_dir.name, args.fps, args.seconds, packets_file
        )
        time.sleep(max(0.0, (t0 - time.time_ns()) / 1e9) + min(5.0, args.seconds / 4))
        pids = receiver_pids(manager)
        cpu0, wall0 = sum(proc_cpu_s(p) for p in pids), time.monotonic()
        time.sleep(max(1.0, args.seconds - min(5.0, args.seconds / 4) - 2.0))
        cpu1, wall1 = sum(proc_cpu_s(p) for p in pids), time.monotonic()
        reports = [results.get(timeout=args.seconds + 60) for _ in procs]
        for p in procs:
            p.join()
        complete = manager.wait_complete(30.0)
        status = manager.stop()
        if args.keep:
            import shutil

            shutil.copytree(
                SessionLayout(session_dir).stream.path,
                args.keep,
                ignore=shutil.ignore_patterns("*.mkv", "*.h264"),
            )
        received = 0
        latencies = []
        steady = []  # after the first second: all cameras' first IDRs and process warm-up are over
        for cam in cams:
            rows = read_stream_table(SessionLayout(session_dir).stream.files(cam)["frames"])
            received += len(rows)
            latencies += [r.received_ns - r.row.wall_ns for r in rows]
            steady += [r.received_ns - r.row.wall_ns for r in rows if r.row.wall_ns >= t0 + 1_000_000_000]
        sent = frames * len(cams)
        segments = sum(c["segments"] for c in status["cameras"].values())
        restarts = sum(c["restarts"] for c in status["cameras"].values())
        overflow = sum(r["overflow"] for r in reports)
        late = sum(r["late_wakes"] for r in reports)
        cpu_pct = 100 * (cpu1 - cpu0) / (wall1 - wall0)
        print(f"\nreceivers ({len(cams)} side-cars + {len(cams)} FFmpeg, {args.seconds:g} s):")
        print(f"  frames received / sent      {received} / {sent}  (all streams ended: {complete})")
        print(f"  sender queue overflows      {overflow}   late sender wakes: {late}")
        print(f"  segments written            {segments}   receiver/FFmpeg restarts: {restarts}")
        print(f"  capture -> on disk          {fmt(stats_us(latencies))}")
        print(f"    after the first second    {fmt(stats_us(steady))}")
        machine = cpu_pct / (os.cpu_count() or 1)
        print(f"  receiver CPU                {cpu_pct:.0f} % of one core ({machine:.0f} % of the machine)")
        if base_lat and latencies:
            ratio = np.percentile(latencies, 99) / np.percentile(base_lat, 99)
            print(f"  p99 latency vs discard sink {ratio:.2f}x")
    return 0 if received == sent else 1


if __name__ == "__main__":
    sys.exit(main())
