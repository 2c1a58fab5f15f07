"""Encoder base class: a bounded queue in, a worker thread, encoded frames out to the outputs.

The capture thread only ever does a non-blocking put: if the encoder falls behind, the frame is
discarded and counted (the grid slot becomes a visible drop) instead of stalling the schedule.
"""

from __future__ import annotations

import logging
import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

from syncrig_agent.frames import CapturedFrame, EncodedFrame, FrameMeta
from syncrig_agent.outputs.base import Output

log = logging.getLogger(__name__)

_END = object()


@dataclass(frozen=True)
class EncoderSettings:
    width: int
    height: int
    fps: float
    bitrate: int = 25_000_000
    keyframe_interval: int = 56  # frames between IDR frames (the GOP length)
    codec: str = "auto"  # "auto", "libx264" or "h264_v4l2m2m"
    preset: str = "ultrafast"
    threads: int = 0  # 0 = let the codec decide
    queue_frames: int = 32


class Encoder(ABC):
    def __init__(self, settings: EncoderSettings) -> None:
        self.settings = settings
        self.outputs: list[Output] = []
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, settings.queue_frames))
        self._thread: threading.Thread | None = None
        self.frames_out = 0
        self.error: str | None = None

    def start(self, outputs: Iterable[Output]) -> None:
        self.outputs = list(outputs)
        self._open()
        for out in self.outputs:
            out.start()
        self._thread = threading.Thread(target=self._work, name="encoder", daemon=True)
        self._thread.start()

    def submit(self, frame: CapturedFrame) -> bool:
        """Non-blocking: False if the queue is full (frame discarded)."""
        try:
            self._queue.put_nowait(frame)
            return True
        except queue.Full:
            return False

    def stop(self) -> None:
        """Encode what is queued, drain the codec, stop every output (files closed and synced)."""
        if self._thread is not None:
            self._queue.put(_END)
            self._thread.join()
            self._thread = None
        for out in self.outputs:
            try:
                out.stop()
            except Exception as exc:  # an output failing to close must not hide the others' state
                log.exception("output %s failed to stop", out)
                self.error = self.error or f"{type(out).__name__} stop failed: {exc}"

    def _work(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _END:
                    break
                if self.error is None:
                    self._emit(self._encode(item))
            if self.error is None:
                self._emit(self._flush())
        except Exception as exc:
            log.exception("encoder failed")
            self.error = f"encoder failed: {exc}"
        finally:
            self._close()

    def _emit(self, frames: Iterable[tuple[bytes, bool, FrameMeta]]) -> None:
        for data, keyframe, meta in frames:
            encoded = EncodedFrame(data, keyframe, meta, self.frames_out)
            self.frames_out += 1
            for out in self.outputs:
                if not out.failed:
                    out.deliver(encoded)
            failed = [o for o in self.outputs if o.failed and o.essential]
            if failed and self.error is None:
                self.error = f"{type(failed[0]).__name__}: {failed[0].error}"

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _encode(self, frame: CapturedFrame) -> Iterable[tuple[bytes, bool, FrameMeta]]: ...

    @abstractmethod
    def _flush(self) -> Iterable[tuple[bytes, bool, FrameMeta]]: ...

    def _close(self) -> None:
        """Release codec resources (called on the worker thread)."""
