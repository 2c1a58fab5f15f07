"""One camera's live-stream receiver: the side-car process in front of its FFmpeg.

It listens on the camera's port, authenticates every connection with the shared secret (like
every other SyncRig port), reads the stream framing (syncrig_agent.contract.formats.stream) and

- feeds the packets to FFmpeg, which writes `stream/<cam>_NNN.mkv` segments (segmenter.py);
- appends the exact packets to `stream/<cam>.h264` and one row per frame to
  `stream/<cam>.frames.csv` (the agent's frame-table row + where the bytes are + when they
  landed), which is what reconciliation uses to fill only the gaps from the Pi's copy;
- keeps `stream/<cam>.receiver.json` current (status for the manager and the UI) and writes
  `stream/<cam>.end.json` once the agent has sent its END record (completion is seen from files).

A newer connection from the same camera replaces an older one (an agent that reconnected after a
network loss). If this process is killed, the manager starts it again on the same port: it
appends to the same files and never touches earlier segments.

Two modes: `--session-dir DIR` (started by the controller for one session; exits after END) and
`--sessions-root DIR` (a long-running systemd service on a dedicated receiving machine; each
stream names its session, whose directory is created under the root).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from controller.receivers.segmenter import SegmentWriter
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.formats.frame_table import FRAME_TABLE_COLUMNS, FrameRow
from syncrig_agent.contract.formats.stream import (
    FRAME_HEADER,
    STREAM_MESSAGE,
    StreamFormatError,
    decode_frame_header,
)
from syncrig_agent.contract.ids import InvalidName, validate_camera_name, validate_session_id
from syncrig_agent.contract.layout import SessionLayout, StreamFolder
from syncrig_agent.contract.protocol import (
    AuthenticationFailed,
    ProtocolError,
    accept_handshake,
    read_message,
)
from syncrig_agent.contract.protocol.links import MAX_PENDING_HANDSHAKES, start_peer_thread

log = logging.getLogger(__name__)

STREAM_TABLE_COLUMNS = (*FRAME_TABLE_COLUMNS, "offset", "received_ns", "in_segment")
IDLE_TIMEOUT_S = 30.0
STATUS_INTERVAL_S = 0.5


def stream_files(stream_dir: Path, camera: str) -> dict[str, Path]:
    """A camera's receiver files in a stream folder, by kind (StreamFolder.files)."""
    return StreamFolder(stream_dir).files(camera)


@dataclass
class StreamRow:
    row: FrameRow
    offset: int
    received_ns: int
    in_segment: int


def read_stream_table(path: Path) -> list[StreamRow]:
    """Rows of a receiver's frame table; a torn last line (process killed mid-write) is skipped."""
    rows: list[StreamRow] = []
    if not path.exists():
        return rows
    with open(path, encoding="ascii", errors="replace") as fh:
        header = fh.readline().strip().split(",")
        if tuple(header) != STREAM_TABLE_COLUMNS:
            raise ValueError(f"{path}: unexpected header {header}")
        for line in fh:
            parts = line.strip().split(",")
            if len(parts) != len(STREAM_TABLE_COLUMNS):
                continue
            try:
                values = [int(v) for v in parts]
            except ValueError:
                continue
            rows.append(StreamRow(FrameRow(*values[:8]), values[8], values[9], values[10]))
    return rows


class StreamSession:
    """The files of one camera's stream within one session (appended, never truncated)."""

    def __init__(
        self,
        session_dir: Path,
        session_id: str,
        camera: str,
        hello: dict,
        ffmpeg: str,
        segment_seconds: float,
    ) -> None:
        self.session_dir = session_dir
        self.session_id = session_id
        self.camera = camera
        self.stream_dir = SessionLayout(session_dir).stream.path
        self.stream_dir.mkdir(parents=True, exist_ok=True)
        self.files = stream_files(self.stream_dir, camera)
        self.t0_ns = int(hello["t0_ns"])
        self.period_ns = int(hello["period_ns"])
        existing = read_stream_table(self.files["frames"])
        self.last_frame = existing[-1].row.frame if existing else -1
        self.frames = len(existing)
        self.bytes = sum(r.row.size for r in existing)
        new_table = not self.files["frames"].exists()
        self._video = open(self.files["h264"], "ab", buffering=0)
        self._table = open(self.files["frames"], "ab", buffering=0)
        if new_table:
            self._table.write((",".join(STREAM_TABLE_COLUMNS) + "\n").encode("ascii"))
        self.segments = SegmentWriter(ffmpeg, self.stream_dir, camera, 1e9 / self.period_ns, segment_seconds)
        self.connections = 0
        with contextlib.suppress(OSError, ValueError, KeyError):
            # A restarted receiver continues the count (the status shows reconnects across restarts).
            self.connections = int(json.loads(self.files["status"].read_text())["connections"])
        self.duplicates = 0
        self.complete = False
        self.started_at = time.time()
        self.last_frame_at: float | None = None
        self.closed = False

    def add(self, row: FrameRow, data: bytes) -> None:
        if row.frame <= self.last_frame:
            self.duplicates += 1  # already have it (a resent frame after a reconnect)
            return
        offset = self._video.seek(0, os.SEEK_END)
        self._video.write(data)
        fed = self.segments.write(data, bool(row.keyframe))
        received = time.time_ns()
        values = (*(int(getattr(row, c)) for c in FRAME_TABLE_COLUMNS), offset, received, int(fed))
        self._table.write((",".join(map(str, values)) + "\n").encode("ascii"))
        self.last_frame = row.frame
        self.frames += 1
        self.bytes += len(data)
        self.last_frame_at = time.time()

    def status(self) -> dict:
        return {
            "camera": self.camera,
            "session_id": self.session_id,
            "pid": os.getpid(),
            "frames": self.frames,
            "bytes": self.bytes,
            "last_frame": self.last_frame,
            "duplicates": self.duplicates,
            "segments": len(StreamFolder(self.stream_dir).segments(self.camera)),
            "ffmpeg_runs": self.segments.runs,
            "ffmpeg_restarts": self.segments.restarts,
            "ffmpeg_pid": self.segments.pid,
            "connections": self.connections,
            "complete": self.complete,
            "last_frame_age_s": None
            if self.last_frame_at is None
            else round(time.time() - self.last_frame_at, 3),
            "updated": time.time(),
        }

    def write_status(self) -> None:
        with contextlib.suppress(OSError):
            write_json_atomic(self.files["status"], self.status())

    def close(self, complete: bool) -> None:
        if self.closed:
            return
        self.closed = True
        code = self.segments.close()
        for fh in (self._video, self._table):
            with contextlib.suppress(OSError):
                os.fsync(fh.fileno())
            fh.close()
        self.complete = complete
        self.write_status()
        if complete:
            write_json_atomic(self.files["end"], {**self.status(), "ffmpeg_exit": code})


class CameraReceiver:
    def __init__(
        self,
        camera: str,
        listen: tuple[str, int],
        secret: bytes,
        ffmpeg: str,
        session_dir: Path | None = None,
        sessions_root: Path | None = None,
        segment_seconds: float = 2.0,
        ready_file: Path | None = None,
    ) -> None:
        if (session_dir is None) == (sessions_root is None):
            raise ValueError("give exactly one of session_dir or sessions_root")
        self.camera = validate_camera_name(camera)
        self.listen_address = listen
        self.secret = secret
        self.ffmpeg = ffmpeg
        self.session_dir = session_dir
        self.sessions_root = sessions_root
        self.segment_seconds = segment_seconds
        self.ready_file = ready_file
        self.session: StreamSession | None = None
        self._active: socket.socket | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._listener: socket.socket | None = None
        # Connections still in their (5 s) handshake: a flood of strangers costs a bounded number
        # of threads (the same limit as the agents' ports).
        self._handshakes = threading.BoundedSemaphore(MAX_PENDING_HANDSHAKES)

    # -- lifecycle -----------------------------------------------------------------------------
    def bind(self) -> int:
        host, port = self.listen_address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(4)
        self._listener = sock
        actual = sock.getsockname()[1]
        if self.ready_file is not None:
            write_json_atomic(self.ready_file, {"camera": self.camera, "port": actual, "pid": os.getpid()})
        log.info("receiver %s listening on %s:%d", self.camera, host, actual)
        return actual

    def serve(self) -> None:
        assert self._listener is not None
        threading.Thread(target=self._status_loop, name="status", daemon=True).start()
        self._listener.settimeout(0.5)
        while not self._done.is_set():
            try:
                sock, addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            if not self._handshakes.acquire(blocking=False):
                log.warning("receiver %s: too many pending handshakes; refusing %s", self.camera, addr[0])
                sock.close()
                continue
            start_peer_thread(self._handle, (sock, addr), f"conn-{addr[1]}", sock, addr, self._handshakes)
        self._shutdown(complete=False)

    def request_stop(self) -> None:
        self._done.set()

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    def _shutdown(self, complete: bool) -> None:
        with self._lock:
            if self._active is not None:
                with contextlib.suppress(OSError):
                    self._active.shutdown(socket.SHUT_RDWR)
            if self.session is not None:
                self.session.close(complete=complete or self.session.complete)
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()

    def _status_loop(self) -> None:
        while not self._done.wait(STATUS_INTERVAL_S):
            with self._lock:
                session = self.session
                if session is not None and not session.closed:
                    session.write_status()

    # -- one connection ------------------------------------------------------------------------
    def _handle(self, sock: socket.socket, addr: tuple) -> None:
        try:
            accept_handshake(sock, self.secret)
        except (AuthenticationFailed, ProtocolError, OSError, ValueError) as exc:
            log.warning("receiver %s: refused connection from %s: %s", self.camera, addr[0], exc)
            sock.close()
            return
        finally:
            self._handshakes.release()
        try:
            sock.settimeout(IDLE_TIMEOUT_S)
            hello = read_message(sock)
            session = self._begin(sock, hello)
        except (AuthenticationFailed, ProtocolError, OSError, ValueError) as exc:
            log.warning("receiver %s: refused connection from %s: %s", self.camera, addr[0], exc)
            sock.close()
            return
        try:
            self._receive(sock, session)
        except (OSError, StreamFormatError) as exc:
            log.warning("receiver %s: stream from %s ended: %s", self.camera, addr[0], exc)
        finally:
            sock.close()
            with self._lock:
                if self._active is sock:
                    self._active = None

    def _begin(self, sock: socket.socket, hello: dict) -> StreamSession:
        if hello.get("type") != STREAM_MESSAGE:
            raise ValueError(f"expected a stream message, got {str(hello.get('type'))[:40]!r}")
        if hello.get("camera") != self.camera:
            raise ValueError(f"this receiver is for {self.camera}, not {str(hello.get('camera'))[:40]!r}")
        try:
            session_id = validate_session_id(hello.get("session_id"))
        except InvalidName as exc:
            raise ValueError(str(exc)) from None
        for key in ("t0_ns", "period_ns"):
            if type(hello.get(key)) is not int or hello[key] < (0 if key == "t0_ns" else 1):
                raise ValueError(f"stream: bad {key}")
        with self._lock:
            if self.session_dir is not None:
                target = self.session_dir
                if self.session is None and target.name != session_id:
                    raise ValueError(f"stream is for session {session_id}, this receiver for {target.name}")
            else:
                assert self.sessions_root is not None
                target = self.sessions_root / session_id
            if self.session is not None and self.session.session_id != session_id:
                if self.session_dir is not None:
                    raise ValueError(f"stream is for session {session_id}, not {self.session.session_id}")
                self.session.close(complete=self.session.complete)  # service mode: the next session
                self.session = None
            if self.session is None or self.session.closed:
                self.session = StreamSession(
                    target, session_id, self.camera, hello, self.ffmpeg, self.segment_seconds
                )
            if self._active is not None:  # a reconnected agent replaces its stale connection
                with contextlib.suppress(OSError):
                    self._active.shutdown(socket.SHUT_RDWR)
            self._active = sock
            self.session.connections += 1
            self.session.segments.resync()
            # Start FFmpeg now (START arrives before T0), not on the first frame's time.
            self.session.segments.ensure_running()
            return self.session

    def _receive(self, sock: socket.socket, session: StreamSession) -> None:
        reader = sock.makefile("rb", buffering=1 << 20)
        while True:
            header = reader.read(FRAME_HEADER.size)
            if not header:
                return
            row, size = decode_frame_header(header)
            if row is None:
                with self._lock:
                    if self._active is sock:
                        session.close(complete=True)
                        log.info("receiver %s: end of stream, %d frames", self.camera, session.frames)
                        if self.session_dir is not None:
                            self._done.set()
                return
            data = reader.read(size)
            if len(data) != size:
                raise StreamFormatError(f"frame {row.frame}: stream cut after {len(data)}/{size} bytes")
            with self._lock:
                if self._active is not sock or session.closed:
                    return  # superseded by a newer connection
                session.add(row, data)


def run_receiver(receiver: CameraReceiver) -> int:
    """Serve until END (session mode) or a signal; files are closed cleanly either way."""

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: closing the receiver's files", signum)
        receiver.request_stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    receiver.serve()
    return 0
