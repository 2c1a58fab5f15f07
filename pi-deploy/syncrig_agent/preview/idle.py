"""The camera run for preview alone, while nothing records: the backend's own capture loop on a
preview-rate grid, delivering into the preview's latest-frame slot (nothing is encoded to disk)."""

from __future__ import annotations

import logging
import threading

from syncrig_agent.backends.base import CameraBackend, CaptureControl, CaptureStats
from syncrig_agent.contract.grid import FrameGrid, period_ns_for_fps
from syncrig_agent.frames import CapturedFrame
from syncrig_agent.preview.hub import LatestFrame

log = logging.getLogger(__name__)


class IdlePreview:
    def __init__(self, backend: CameraBackend, fps: float, slot: LatestFrame) -> None:
        self.backend = backend
        self.fps = fps
        self.slot = slot
        self.control = CaptureControl()
        self.stats = CaptureStats()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="preview-capture", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> bool:
        """Abort the run and wait until the backend has let go of the camera."""
        self.control.abort()
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _deliver(self, frame: CapturedFrame) -> bool:
        self.slot.frame = frame
        return True

    def _run(self) -> None:
        grid = FrameGrid(self.backend.clock.now_ns(), period_ns_for_fps(self.fps))
        try:
            self.backend.run(grid, self.control, self._deliver, self.stats)
        except Exception as exc:
            log.exception("idle preview capture failed")
            self.error = f"{type(exc).__name__}: {exc}"
