"""One camera's preview: the hub, its HTTP server and the idle-time frame source, and the rule
that the camera is never run twice (a recording always wins over the idle preview)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator

from syncrig_agent.backends.base import CameraBackend
from syncrig_agent.contract.protocol import RequestError
from syncrig_agent.preview.hub import LatestFrame, PreviewHub
from syncrig_agent.preview.idle import IdlePreview
from syncrig_agent.preview.server import PreviewServer
from syncrig_agent.preview.token import PREVIEW_STREAM_PATH

log = logging.getLogger(__name__)

IDLE_RETRY_S = 5.0  # after an idle-preview run failed, wait this long before trying again
IDLE_STOP_TIMEOUT_S = 10.0


def disabled_status() -> dict:
    return {
        "port": None,
        "path": PREVIEW_STREAM_PATH,
        "viewers": 0,
        "fps": 0.0,
        "available": False,
        "reason": "preview disabled (--no-preview)",
    }


class PreviewService:
    def __init__(
        self,
        camera: str,
        backend: CameraBackend,
        secret: bytes,
        listen: str,
        fps: float,
        is_recording: Callable[[], bool],
    ) -> None:
        self.camera = camera
        self.backend = backend
        self.is_recording = is_recording
        self.hub = PreviewHub(fps)
        self.hub.on_watch = self._watch
        self.hub.on_unwatched = self._stop_idle
        self._source_lock = threading.Lock()  # held while the idle run starts or a recording arms
        self._idle: IdlePreview | None = None
        self._idle_failed_at: float | None = None
        self.server = PreviewServer(listen, camera, secret, self.hub, self.refusal)

    def start(self) -> int:
        self.hub.start()
        self.server.start()
        log.info("%s preview on %s%s", self.camera, self.server.address, PREVIEW_STREAM_PATH)
        return self.server.port

    def close(self) -> None:
        self.server.close()
        self.hub.close()
        self._stop_idle()

    @property
    def tap(self) -> LatestFrame | None:
        """Where a recording stores its newest frame, or None when this camera cannot preview
        while it records."""
        return self.hub.slot if self.backend.preview_while_recording else None

    def refusal(self) -> str | None:
        """Why a viewer cannot watch now (HTTP 409), or None."""
        if self.is_recording() and not self.backend.preview_while_recording:
            return (
                f"{self.camera} is recording and its camera ({self.backend.kind}) cannot preview "
                "while it records; the preview returns when the recording stops"
            )
        return None

    @contextlib.contextmanager
    def camera_for_recording(self) -> Iterator[None]:
        """Stop the idle preview and keep it stopped while a recording arms (and takes over)."""
        with self._source_lock:
            if self._idle is not None and not self._idle.stop(IDLE_STOP_TIMEOUT_S):
                raise RequestError("busy", f"{self.camera}: the preview did not release the camera")
            self._idle = None
            self.hub.slot.frame = None
            yield

    def _watch(self) -> None:
        """Preview thread, each tick while watched: run the camera for preview if nothing does."""
        if not self._source_lock.acquire(blocking=False):
            return  # a recording is arming: it owns the camera now
        try:
            idle = self._idle
            if self.is_recording() or (idle is not None and idle.running):
                return
            if idle is not None and idle.error:
                self._idle_failed_at = time.monotonic()
                log.error("%s: preview capture failed: %s", self.camera, idle.error)
            self._idle = None
            failed = self._idle_failed_at
            if failed is not None and time.monotonic() - failed < IDLE_RETRY_S:
                return
            self._idle = IdlePreview(self.backend, self.hub.fps, self.hub.slot)
            self._idle.start()
        finally:
            self._source_lock.release()

    def _stop_idle(self) -> None:
        with self._source_lock:
            if self._idle is not None:
                self._idle.stop(IDLE_STOP_TIMEOUT_S)
                self._idle = None

    def status(self) -> dict:
        refusal = self.refusal()
        status = {
            "port": self.server.port,
            "path": PREVIEW_STREAM_PATH,
            "viewers": self.hub.viewers,
            "fps": self.hub.measured_fps(),
            "max_fps": self.hub.fps,
            "available": refusal is None,
            "source": "recording"
            if self.is_recording()
            else ("idle" if self._idle is not None and self._idle.running else None),
        }
        if refusal:
            status["reason"] = refusal
        return status
