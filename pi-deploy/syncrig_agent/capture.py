"""One camera's part of one session: backend → encoder → outputs, on the shared frame grid.

`arm()` does everything slow (files, codec, threads) and returns only when the capture thread is
waiting for T0 — so "armed" in an ACK means it. `stop_at()` ends on a grid boundary, so cameras
that receive the same stop instant record the same range of slots.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from syncrig_agent.backends.base import CameraBackend, CaptureControl, CaptureStats
from syncrig_agent.contract.grid import FrameGrid
from syncrig_agent.contract.ids import validate_camera_name, validate_session_id
from syncrig_agent.contract.layout import SessionLayout
from syncrig_agent.encoders.base import Encoder, EncoderSettings
from syncrig_agent.encoders.pyav_h264 import PyAVH264Encoder
from syncrig_agent.outputs.base import Output
from syncrig_agent.outputs.local_file import LocalFileOutput
from syncrig_agent.timing.realtime import RealtimeSetup, enable_realtime

if TYPE_CHECKING:
    from syncrig_agent.preview.hub import LatestFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptureOptions:
    realtime: bool = True  # try SCHED_FIFO for the capture thread
    fifo_priority: int = 50
    flush_interval_s: float = 0.5
    min_free_bytes: int = 256 * 1024 * 1024


class CameraSession:
    def __init__(
        self,
        camera: str,
        session_id: str,
        data_dir: Path,
        grid: FrameGrid,
        backend: CameraBackend,
        encoder_settings: EncoderSettings,
        options: CaptureOptions | None = None,
        extra_outputs: list[Output] | None = None,
    ) -> None:
        self.camera = validate_camera_name(camera)
        self.session_id = validate_session_id(session_id)
        self.session_dir = Path(data_dir) / self.session_id
        self.layout = SessionLayout(self.session_dir)
        self.raw_dir = self.layout.raw.path
        self.grid = grid
        self.backend = backend
        self.encoder_settings = encoder_settings
        self.options = options or CaptureOptions()
        self.extra_outputs = extra_outputs or []
        self.control = CaptureControl()
        self.stats = CaptureStats()
        self.encoder: Encoder | None = None
        self.local: LocalFileOutput | None = None
        self.realtime: RealtimeSetup | None = None
        self.error: str | None = None
        self.armed_at_ns: int | None = None
        self.arm_duration_ns: int | None = None
        self.finished_at_ns: int | None = None
        self._thread: threading.Thread | None = None
        self.preview_slot: LatestFrame | None = None  # live preview tap (set by the agent)
        self._ready = threading.Event()
        self._done = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    def arm(self) -> dict:
        started = time.monotonic_ns()
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        self.local = LocalFileOutput(
            self.raw_dir,
            self.camera,
            self.grid.t0_ns,
            flush_interval_s=self.options.flush_interval_s,
            min_free_bytes=self.options.min_free_bytes,
        )
        try:
            self.encoder = PyAVH264Encoder(self.encoder_settings)
            self.encoder.start([self.local, *self.extra_outputs])
        except BaseException:
            self.local.discard_unused()
            for empty in (self.raw_dir, self.session_dir):
                with contextlib.suppress(OSError):
                    empty.rmdir()  # only if nothing else is in there
            raise
        self._thread = threading.Thread(target=self._capture, name=f"capture-{self.camera}", daemon=True)
        self._thread.start()
        self._ready.wait(5.0)
        self.arm_duration_ns = time.monotonic_ns() - started
        self.armed_at_ns = self.backend.clock.now_ns()
        late = self.armed_at_ns > self.grid.t0_ns
        if late:
            log.warning(
                "%s armed %.1f ms after T0: the first slots will be empty",
                self.camera,
                (self.armed_at_ns - self.grid.t0_ns) / 1e6,
            )
        return {
            "armed_at_ns": self.armed_at_ns,
            "arm_duration_ns": self.arm_duration_ns,
            "late": late,
            "realtime": self.realtime.as_dict() if self.realtime else None,
            "encoder": self.encoder.codec_name if isinstance(self.encoder, PyAVH264Encoder) else None,
        }

    def _capture(self) -> None:
        self.realtime = enable_realtime(self.options.fifo_priority, want_fifo=self.options.realtime)
        self._ready.set()
        try:
            self.backend.run(self.grid, self.control, self._deliver, self.stats)
        except Exception as exc:
            log.exception("capture failed")
            self.error = f"capture failed: {exc}"
        finally:
            self._finish()

    def _deliver(self, frame) -> bool:
        """Hand a frame to the encoder; count it under the right cause when it is not taken."""
        assert self.encoder is not None
        slot = self.preview_slot
        if slot is not None:
            slot.frame = frame  # the preview tap: one pointer store; the preview thread encodes it
        if self.encoder.error is not None:
            # The recording has failed (e.g. disk nearly full): stop capturing, keep files whole.
            self.stats.after_failure += 1
            if not self.control.aborted:
                log.error("%s: stopping capture: %s", self.camera, self.encoder.error)
                self.control.abort()
            return False
        if self.encoder.submit(frame):
            return True
        self.stats.queue_overflows += 1
        return False

    def _finish(self) -> None:
        try:
            if self.encoder is not None:
                self.encoder.stop()
                if self.encoder.error and not self.error:
                    self.error = self.encoder.error
        finally:
            self.finished_at_ns = time.time_ns()
            try:
                self._write_report()
            finally:
                self._done.set()

    def stop_at(self, stop_ns: int) -> int:
        """Record slots with Tn < stop_ns; returns the end index (exclusive)."""
        end = self.grid.end_index(stop_ns)
        assert end is not None
        self.control.stop_at_index(end)
        return end

    def abort(self, reason: str) -> None:
        log.warning("%s: capture aborted: %s", self.camera, reason)
        if not self.error:
            self.error = f"aborted: {reason}"
        self.control.abort()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self.finished_at_ns is None

    # -- reporting ---------------------------------------------------------------------------
    def summary(self) -> dict:
        stats = self.stats.summary()
        frames = self.local.frames if self.local else 0
        end = self.control.end_index
        return {
            "camera": self.camera,
            "session_id": self.session_id,
            "t0_ns": self.grid.t0_ns,
            "period_ns": self.grid.period_ns,
            "end_index": end,
            "frames": frames,
            "bytes": self.local.bytes_written if self.local else 0,
            "stats": stats,
            "outputs": [out.report() for out in self.extra_outputs],
            "error": self.error,
            "running": self.running,
            "backend": self.backend.describe(),
            "realtime": self.realtime.as_dict() if self.realtime else None,
            "arm_duration_ns": self.arm_duration_ns,
            "armed_at_ns": self.armed_at_ns,
            "finished_at_ns": self.finished_at_ns,
            "files": {k: str(p.relative_to(self.session_dir)) for k, p in self.local.paths.items()}
            if self.local
            else {},
        }

    def _write_report(self) -> None:
        path = self.layout.agent_capture_report(self.camera)
        try:
            with open(path, "x", encoding="utf-8") as fh:
                json.dump(self.summary(), fh, indent=2)
                fh.write("\n")
        except OSError as exc:
            log.error("could not write %s: %s", path, exc)
