"""The agent's stream output on its own: never blocks the encoder, counts what it could not send,
reconnects after a cut and resumes at a keyframe; and the receiver as a long-running service
(systemd unit mode) that files each stream under the session it names."""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from controller.cli.main import build_parser
from controller.media import ffmpeg_exe
from controller.receivers import CameraReceiver, read_stream_table, stream_files
from syncrig_agent.contract.formats.stream import (
    FRAME_HEADER,
    StreamFormatError,
    decode_frame_header,
    encode_end,
)
from syncrig_agent.contract.protocol import accept_handshake, read_message, write_secret
from syncrig_agent.encoders.base import EncoderSettings
from syncrig_agent.encoders.pyav_h264 import PyAVH264Encoder
from syncrig_agent.frames import CapturedFrame, EncodedFrame, FrameMeta
from syncrig_agent.outputs.stream import StreamOutput

SECRET = b"0123456789abcdef0123456789abcdef"
PERIOD = 10_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def encoded(i: int, size: int, keyframe: bool) -> EncodedFrame:
    meta = FrameMeta(i, i * PERIOD, i * PERIOD, i * PERIOD, i * PERIOD)
    return EncodedFrame(bytes([i % 256]) * size, keyframe, meta, i)


def test_frame_header_rejects_garbage() -> None:
    with pytest.raises(StreamFormatError, match="magic"):
        decode_frame_header(b"XX" + bytes(FRAME_HEADER.size - 2))
    assert decode_frame_header(encode_end()) == (None, 0)


def test_a_stuck_receiver_never_blocks_the_encoder(tmp_path: Path) -> None:
    """The receiver authenticates, then stops reading: the output's queue fills, frames are
    counted as overflow, and every deliver() returns at once (the local file would get them all)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def stuck() -> None:
        sock, _ = listener.accept()
        accept_handshake(sock, SECRET)
        read_message(sock)
        held.append(sock)  # ...and never read again

    threading.Thread(target=stuck, daemon=True).start()
    out = StreamOutput(listener.getsockname(), SECRET, "cam0", "s1", 0, PERIOD, queue_frames=8)
    out.start()
    worst = 0.0
    for i in range(300):
        started = time.perf_counter()
        out.deliver(encoded(i, 200_000, i % 10 == 0))
        worst = max(worst, time.perf_counter() - started)
    assert out.frames == 300 and out.overflow > 0
    out.stop()
    report = out.report()
    assert report["sent"] + report["overflow"] + report["skipped"] == 300 == report["frames_in"]
    assert report["not_sent"] == 300 - report["sent"] > 0
    print(f"slowest deliver(): {worst * 1e3:.2f} ms")  # informative, not asserted (no timing tests)
    listener.close()


class CuttableProxy:
    """TCP proxy in front of the receiver; `cut()` drops the live connection like a network loss."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                a, _ = self.listener.accept()
            except OSError:
                return
            b = socket.create_connection(self.target)
            self.pairs.append((a, b))
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        for a, b in self.pairs:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
        self.pairs.clear()


def test_cut_connection_reconnects_and_resumes_at_a_keyframe(tmp_path: Path) -> None:
    session = tmp_path / "s1"
    receiver = CameraReceiver("cam0", ("127.0.0.1", 0), SECRET, ffmpeg_exe(), session_dir=session)
    port = receiver.bind()
    threading.Thread(target=receiver.serve, daemon=True).start()
    proxy = CuttableProxy(("127.0.0.1", port))
    out = StreamOutput(proxy.address, SECRET, "cam0", "s1", 0, PERIOD)
    encoder = PyAVH264Encoder(EncoderSettings(width=160, height=96, fps=100.0, keyframe_interval=10))
    encoder.start([out])
    rng = np.random.default_rng(1)
    total = 120
    for i in range(total):
        image = rng.integers(0, 255, (96 * 3 // 2, 160), dtype=np.uint8)
        assert encoder.submit(
            CapturedFrame(image, FrameMeta(i, i * PERIOD, i * PERIOD, i * PERIOD, i * PERIOD))
        )
        time.sleep(0.01)
        if i == 45:
            proxy.cut()
    encoder.stop()  # drains: the END record goes out on the new connection
    deadline = time.monotonic() + 20
    while not receiver.finished and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.finished, "END never arrived after the reconnect"
    report = out.report()
    assert report["connections"] == 2 and report["end_sent"]
    rows = [r.row for r in read_stream_table(stream_files(session / "stream", "cam0")["frames"])]
    frames = [r.frame for r in rows]
    # "sent" = handed to TCP; what was in flight when the link was cut is lost (the Pi's copy
    # has it: that is what gap fill is for).
    assert report["sent"] == total - report["not_sent"]
    assert frames == sorted(frames) and report["sent"] - 20 <= len(frames) <= report["sent"]
    gaps = [i for i in range(1, len(frames)) if frames[i] != frames[i - 1] + 1]
    assert gaps, "the cut cost no frames? (then it did not happen)"
    for i in gaps:
        assert rows[i].keyframe == 1, "a resumed stream must start at a keyframe"
    assert json.loads(stream_files(session / "stream", "cam0")["end"].read_text())["connections"] == 2


def test_receiver_service_mode_files_each_session_and_unit_renders(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret = write_secret(secret_file)
    port = free_port()
    config = tmp_path / "receivers.json"
    config.write_text(
        json.dumps(
            {
                "sessions_root": str(tmp_path / "sessions"),
                "secret_file": str(secret_file),
                "cameras": {"cam3": f"127.0.0.1:{port}"},
                "segment_seconds": 1,
            }
        )
    )
    units = tmp_path / "units"
    rc = subprocess.run(
        [
            sys.executable,
            "-m",
            "controller",
            "receive",
            "--camera",
            "cam3",
            "--config",
            str(config),
            "--write-unit",
            str(units),
        ],
        capture_output=True,
        text=True,
    )
    assert rc.returncode == 0, rc.stderr
    unit = (units / "syncrig-receiver@.service").read_text()
    assert "KillSignal=SIGINT" in unit and "Restart=always" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_start.removeprefix("ExecStart=").replace("%i", "cam3"))
    assert argv[:3] == [sys.executable, "-m", "controller"]
    args = build_parser().parse_args(argv[3:])  # the unit's command line is one the CLI accepts
    assert args.command == "receive" and args.camera == "cam3" and args.config == config.resolve()

    ready = tmp_path / "ready.json"
    proc = subprocess.Popen(
        [sys.executable, *argv[1:], "--ready-file", str(ready)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stdout.read() if proc.stdout else ""
            )
            time.sleep(0.05)
        for session_id in ("20260101-000000-0001", "20260101-000100-0002"):
            out = StreamOutput(("127.0.0.1", port), secret, "cam3", session_id, 0, PERIOD)
            encoder = PyAVH264Encoder(EncoderSettings(width=160, height=96, fps=100.0, keyframe_interval=10))
            encoder.start([out])
            for i in range(30):
                image = np.full((96 * 3 // 2, 160), i * 7 % 256, dtype=np.uint8)
                assert encoder.submit(CapturedFrame(image, FrameMeta(i, i * PERIOD, 0, i * PERIOD, 0)))
                time.sleep(0.005)
            encoder.stop()
            end = stream_files(tmp_path / "sessions" / session_id / "stream", "cam3")["end"]
            deadline = time.monotonic() + 20
            while not end.exists():
                assert time.monotonic() < deadline, f"no END for {session_id}"
                time.sleep(0.05)
            assert json.loads(end.read_text())["frames"] == 30
            assert list((tmp_path / "sessions" / session_id / "stream").glob("cam3_*.mkv"))
        assert proc.poll() is None  # a service keeps serving after each session
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
