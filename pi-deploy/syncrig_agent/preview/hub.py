"""The preview's frame path: a latest-frame slot the capture side writes, and one preview thread
that turns it into JPEGs for every viewer, only while someone watches.

The capture side's whole cost is one pointer store into `LatestFrame.frame` (the frame's pixels
belong to whoever receives the CapturedFrame, so keeping a reference is safe); the preview thread
encodes at most `fps` JPEGs per second, however many viewers there are."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from syncrig_agent.frames import CapturedFrame
from syncrig_agent.preview.jpeg import DEFAULT_MAX_WIDTH, JpegEncoder

log = logging.getLogger(__name__)

GRACE_S = 3.0  # keep the source running this long after the last viewer leaves (page reloads)
FPS_WINDOW_S = 2.0
MAX_VIEWERS = 8


class LatestFrame:
    """The newest frame of whatever runs the camera (a recording or the idle preview)."""

    __slots__ = ("frame",)

    def __init__(self) -> None:
        self.frame: CapturedFrame | None = None


class PreviewHub:
    def __init__(
        self,
        fps: float,
        max_width: int = DEFAULT_MAX_WIDTH,
        grace_s: float = GRACE_S,
        max_viewers: int = MAX_VIEWERS,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"preview fps must be > 0, got {fps}")
        self.fps = fps
        self.max_width = max_width
        self.grace_s = grace_s
        self.max_viewers = max_viewers
        self.slot = LatestFrame()
        # Set by the owner: called on the preview thread each tick while someone watches (start a
        # frame source if none runs) and once when nobody has watched for grace_s (stop it).
        self.on_watch: Callable[[], None] = lambda: None
        self.on_unwatched: Callable[[], None] = lambda: None
        self._cond = threading.Condition()
        self._viewers = 0
        self._seq = 0
        self._jpeg: bytes | None = None
        self._encoder: JpegEncoder | None = None
        self._encoded_at: deque[float] = deque(maxlen=256)
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="preview", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(5.0)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- viewers -----------------------------------------------------------------------------
    def attach(self) -> int | None:
        """Count a viewer; returns the sequence number to wait beyond, or None when full/closed."""
        with self._cond:
            if self._closed or self._viewers >= self.max_viewers:
                return None
            self._viewers += 1
            self._cond.notify_all()
            return self._seq

    def detach(self) -> None:
        with self._cond:
            self._viewers = max(0, self._viewers - 1)
            self._cond.notify_all()

    def next_jpeg(self, after_seq: int, timeout: float) -> tuple[int, bytes] | None:
        """The first JPEG encoded after `after_seq`, or None on timeout or close."""
        with self._cond:
            self._cond.wait_for(lambda: self._closed or self._seq > after_seq, timeout)
            if self._closed or self._seq <= after_seq or self._jpeg is None:
                return None
            return self._seq, self._jpeg

    @property
    def viewers(self) -> int:
        return self._viewers

    def measured_fps(self) -> float:
        now = time.monotonic()
        with self._cond:
            recent = [t for t in self._encoded_at if now - t <= FPS_WINDOW_S]
        if len(recent) < 2:
            return 0.0
        return round((len(recent) - 1) / max(now - recent[0], 1e-3), 2)

    # -- the preview thread ------------------------------------------------------------------
    def _run(self) -> None:
        period = 1.0 / self.fps
        watched = False  # a source was requested and not yet released
        last: CapturedFrame | None = None
        unwatched_since: float | None = None
        while True:
            with self._cond:
                if self._closed:
                    break
                if self._viewers == 0:
                    if not watched:
                        self._cond.wait()
                        continue
                    now = time.monotonic()
                    unwatched_since = unwatched_since or now
                    remaining = unwatched_since + self.grace_s - now
                    if remaining > 0:
                        self._cond.wait(min(remaining, period))
                        continue
                unwatched_since = None
                release = self._viewers == 0
            if release:
                watched, last = False, None
                self._release()
                continue
            watched = True
            tick = time.monotonic()
            self._call(self.on_watch, "starting the preview source")
            frame = self.slot.frame
            if frame is not None and frame is not last:
                last = frame
                self._publish(frame)
            with self._cond:
                self._cond.wait_for(lambda: self._closed, max(0.0, tick + period - time.monotonic()))
        if watched:
            self._release()

    def _publish(self, frame: CapturedFrame) -> None:
        try:
            jpeg = self._encode(frame)
        except Exception:
            log.exception("preview: could not encode a frame")
            return
        with self._cond:
            self._seq += 1
            self._jpeg = jpeg
            self._encoded_at.append(time.monotonic())
            self._cond.notify_all()

    def _encode(self, frame: CapturedFrame) -> bytes:
        rows, width = frame.image.shape
        height = rows * 2 // 3
        if self._encoder is None or self._encoder.source_size != (width, height):
            self._encoder = JpegEncoder(width, height, self.max_width)
        return self._encoder.encode(frame.image)

    def _release(self) -> None:
        self._call(self.on_unwatched, "stopping the preview source")
        with self._cond:
            self._jpeg = None
        self.slot.frame = None  # a later viewer must not be shown a frame from minutes ago

    @staticmethod
    def _call(hook: Callable[[], None], what: str) -> None:
        try:
            hook()
        except Exception:
            log.exception("preview: %s failed", what)
