"""Live stream of the encoded frames to a desktop receiver over TCP (formats.stream framing).

The encoder thread only does a non-blocking put into a bounded queue: a slow or absent receiver
can never hold up capture or the local file (which keeps every frame). A sender thread connects
with the shared-secret handshake, sends, and after any failure reconnects with exponential
backoff and resumes at the next keyframe (a decoder, and a segment, can only start there). While
disconnected it keeps only the frames since the latest keyframe, so a reconnect resumes as early
as possible. Every frame that does not reach the receiver is counted under one cause.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import queue
import socket
import threading
import time

from syncrig_agent.contract.formats.stream import encode_end, encode_frame_header, stream_hello
from syncrig_agent.contract.protocol import ProtocolError, connect_handshake, write_message
from syncrig_agent.frames import EncodedFrame
from syncrig_agent.outputs.base import Output

log = logging.getLogger(__name__)

_END = object()
BACKOFF_START_S = 0.1
BACKOFF_MAX_S = 2.0
SEND_TIMEOUT_S = 5.0
# After STOP, how long the sender may still try to deliver what is queued and the END record.
FINAL_FLUSH_S = 5.0


class StreamOutput(Output):
    essential = False  # a lost stream never fails the recording: the Pi's local copy is the truth

    def __init__(
        self,
        address: tuple[str, int],
        secret: bytes,
        camera: str,
        session_id: str,
        t0_ns: int,
        period_ns: int,
        queue_frames: int = 128,
    ) -> None:
        super().__init__()
        self.address = address
        self.secret = secret
        self.camera = camera
        self.session_id = session_id
        self.t0_ns = t0_ns
        self.period_ns = period_ns
        self.queue_frames = max(1, queue_frames)
        self._queue: queue.Queue = queue.Queue(maxsize=self.queue_frames)
        self._pending: collections.deque[EncodedFrame] = collections.deque()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop_deadline: float | None = None
        self._lock = threading.Lock()
        # Counters (see report()).
        self.sent = 0
        self.bytes_sent = 0
        self.overflow = 0  # queue full while the encoder delivered (receiver or network too slow)
        self.skipped = 0  # discarded while disconnected / waiting for a keyframe to resume
        self.connections = 0
        self.connect_failures = 0
        self.end_sent = False
        self.last_error: str | None = None

    # -- encoder side (never blocks) -----------------------------------------------------------
    def start(self) -> None:
        super().start()
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.camera}", daemon=True)
        self._thread.start()

    def output_frame(self, frame: EncodedFrame) -> None:
        try:
            self._queue.put_nowait(frame)
        except queue.Full:
            self.overflow += 1

    def stop(self) -> None:
        """Let the sender deliver what is queued plus the END record (bounded time), then close."""
        if not self.recording:
            return
        super().stop()
        self._stop_deadline = time.monotonic() + FINAL_FLUSH_S
        with contextlib.suppress(queue.Full):
            self._queue.put(_END, timeout=FINAL_FLUSH_S)
        if self._thread is not None:
            self._thread.join(FINAL_FLUSH_S + SEND_TIMEOUT_S + 1.0)
        self._close()

    def report(self) -> dict:
        return {
            "kind": "stream",
            "address": f"{self.address[0]}:{self.address[1]}",
            "frames_in": self.frames,
            "sent": self.sent,
            "bytes_sent": self.bytes_sent,
            "overflow": self.overflow,
            "skipped": self.skipped,
            "not_sent": self.frames - self.sent,
            "connections": self.connections,
            "connect_failures": self.connect_failures,
            "end_sent": self.end_sent,
            "last_error": self.last_error,
        }

    # -- sender thread ---------------------------------------------------------------------------
    def _stopping_expired(self) -> bool:
        return self._stop_deadline is not None and time.monotonic() > self._stop_deadline

    def _run(self) -> None:
        try:
            self._send_loop()
        except Exception as exc:  # a bug here must show in the report, never touch capture
            log.exception("stream %s: sender failed", self.camera)
            self.last_error = f"sender failed: {type(exc).__name__}: {exc}"
            self._close()

    def _send_loop(self) -> None:
        backoff = BACKOFF_START_S
        need_keyframe = True
        ended = False
        while not ended:
            if self._sock is None:
                self._drain_while_disconnected()
                if self._stopping_expired():
                    break
                if not self._connect():
                    wait_until = time.monotonic() + backoff
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    while time.monotonic() < wait_until and not self._stopping_expired():
                        self._drain_while_disconnected()
                        time.sleep(0.02)
                    continue
                backoff = BACKOFF_START_S
                need_keyframe = True
            item = self._next_item()
            if item is None:
                continue
            if item is _END:
                ended = True
                self._send_end()
                break
            if need_keyframe and not item.keyframe:
                self.skipped += 1
                continue
            if self._send_frame(item):
                need_keyframe = False
            else:
                self.skipped += 1
                need_keyframe = True
        # Anything still queued after the final flush window never went out.
        self._drain_while_disconnected()
        self.skipped += len(self._pending)
        self._pending.clear()
        self._close()

    def _next_item(self):
        if self._pending:
            return self._pending.popleft()
        try:
            return self._queue.get(timeout=0.2)
        except queue.Empty:
            return None

    def _drain_while_disconnected(self) -> None:
        """Keep only the frames from the latest keyframe on (where a resumed stream can start)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is _END:
                self._queue.put_nowait(_END)  # there is room: we just took it out
                return
            if item.keyframe:
                self.skipped += len(self._pending)
                self._pending.clear()
            if item.keyframe or self._pending:
                self._pending.append(item)
            else:
                self.skipped += 1
            if len(self._pending) > self.queue_frames:
                self._pending.popleft()
                self.skipped += 1

    def _connect(self) -> bool:
        try:
            sock = socket.create_connection(self.address, timeout=SEND_TIMEOUT_S)
        except OSError as exc:
            self._note_failure(f"connect: {exc}")
            return False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connect_handshake(sock, self.secret, timeout=SEND_TIMEOUT_S)
            sock.settimeout(SEND_TIMEOUT_S)
            write_message(
                sock,
                stream_hello(self.camera, self.session_id, self.t0_ns, self.period_ns, self.connections > 0),
            )
        except (OSError, ProtocolError) as exc:
            sock.close()
            self._note_failure(f"handshake: {exc}")
            return False
        with self._lock:
            self._sock = sock
        if self.connections:
            log.info("stream %s: reconnected to %s:%d", self.camera, *self.address)
        self.connections += 1
        return True

    def _note_failure(self, reason: str) -> None:
        self.connect_failures += 1
        if reason != self.last_error:
            log.warning("stream %s -> %s:%d: %s", self.camera, *self.address, reason)
        self.last_error = reason

    def _send_frame(self, frame: EncodedFrame) -> bool:
        row = frame.row()
        try:
            assert self._sock is not None
            self._sock.sendall(encode_frame_header(row) + frame.data)
        except OSError as exc:
            self.last_error = f"send: {exc}"
            log.warning("stream %s: connection lost (%s); will resume at a keyframe", self.camera, exc)
            self._close()
            return False
        self.sent += 1
        self.bytes_sent += len(frame.data)
        return True

    def _send_end(self) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendall(encode_end())
            self.end_sent = True
        except OSError as exc:
            self.last_error = f"send end: {exc}"

    def _close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
