"""The camera an agent owns, and what START/STOP/STATUS do to it (the same in both roles)."""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path

from syncrig_agent.backends.factory import CameraParts, build_camera
from syncrig_agent.backends.free_running import FreeRunningCamera
from syncrig_agent.capture import CameraSession, CaptureOptions
from syncrig_agent.clock_state import ClockMonitor
from syncrig_agent.contract.grid import FrameGrid
from syncrig_agent.contract.ids import validate_camera_name
from syncrig_agent.contract.protocol import RequestError
from syncrig_agent.contract.protocol.replies import (
    CameraArmed,
    CameraSessionStatus,
    CameraStatus,
    CameraStopResult,
)
from syncrig_agent.contract.validation import SettingsError, parse_address
from syncrig_agent.diagnostics.health import health_report
from syncrig_agent.encoders.base import EncoderSettings
from syncrig_agent.outputs.stream import StreamOutput
from syncrig_agent.preview import PreviewService, disabled_status
from syncrig_agent.settings import AgentSettings
from syncrig_agent.ttl.factory import open_lines
from syncrig_agent.ttl.session import TtlInputMonitor, TtlOutputRun

log = logging.getLogger(__name__)


class CameraAgent:
    def __init__(self, settings: AgentSettings, camera: CameraParts | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self.data_dir = Path(settings.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        camera = camera or build_camera(settings)
        self.clock = camera.clock
        self.backend = camera.backend
        self.backend.open()
        self.session: CameraSession | None = None
        self.last_summary: dict | None = None
        self.preview: PreviewService | None = None
        self._lock = threading.Lock()
        # Clock state in the background: pmc/chronyc can take seconds, STATUS must not wait.
        self.clock_monitor = ClockMonitor(camera.read_clock_state, settings.clock_refresh_s).start()
        # TTL lines for the agent's lifetime: outputs held low between recordings, inputs watched.
        self.ttl_lines = open_lines(settings.ttl, self.clock, settings.secret_file)
        self.ttl_inputs = TtlInputMonitor(self.ttl_lines).start() if self.ttl_lines else None
        self.ttl_out: TtlOutputRun | None = None
        self.ttl_error: str | None = None

    def start_preview(self, secret: bytes) -> int | None:
        """Serve the live preview (settings permitting); returns its port."""
        if not self.settings.preview:
            return None
        s = self.settings
        self.preview = PreviewService(
            self.name, self.backend, secret, s.preview_listen, s.preview_fps, lambda: self.recording
        )
        return self.preview.start()

    # -- commands ----------------------------------------------------------------------------
    def start(
        self,
        session_id: str,
        t0_ns: int,
        period_ns: int,
        fps: float,
        basename: str | None,
        stream_to: str | None = None,
        stream_secret: bytes | None = None,
    ) -> CameraArmed:
        """Arm for a session; with `stream_to` ("HOST:PORT") the frames also go live to that
        desktop receiver, authenticated with `stream_secret`."""
        with self._lock:
            if self.session is not None and self.session.running:
                raise RequestError(
                    "busy", f"{self.name} is already recording session {self.session.session_id}"
                )
            try:
                camera_file = validate_camera_name(basename or self.name)
            except ValueError as exc:
                raise RequestError("bad_field", f"files: {exc}") from None
            s = self.settings
            encoder = EncoderSettings(
                width=s.width,
                height=s.height,
                fps=fps,
                bitrate=s.bitrate,
                keyframe_interval=max(1, round(fps * s.keyframe_interval_s)),
                codec=s.codec,
                preset=s.preset,
                threads=s.encoder_threads,
                queue_frames=s.queue_frames,
            )
            options = CaptureOptions(
                realtime=s.realtime,
                fifo_priority=s.fifo_priority,
                min_free_bytes=s.min_free_mb * 1024 * 1024,
            )
            self._check_ttl(period_ns)
            extra_outputs = []
            if stream_to is not None:
                if not stream_secret:
                    raise RequestError("bad_field", "streams: no shared secret to authenticate the stream")
                host, port = parse_address(stream_to, 0, "streams")
                extra_outputs.append(
                    StreamOutput(
                        (host, port),
                        stream_secret,
                        camera_file,
                        session_id,
                        t0_ns,
                        period_ns,
                        queue_frames=s.stream_queue_frames,
                    )
                )
            session = CameraSession(
                camera_file,
                session_id,
                self.data_dir,
                FrameGrid(t0_ns, period_ns),
                self.backend,
                encoder,
                options,
                extra_outputs=extra_outputs,
            )
            preview = self.preview
            # The idle preview lets go of the camera before the recording takes it.
            with preview.camera_for_recording() if preview else contextlib.nullcontext():
                session.preview_slot = preview.tap if preview else None
                try:
                    info = session.arm()
                except FileExistsError as exc:
                    raise RequestError("exists", str(exc)) from None
                except OSError as exc:
                    raise RequestError(
                        "io_error", f"{self.name}: cannot create recording files: {exc}"
                    ) from None
                self.session = session
            try:
                self._start_ttl(session, camera_file)
            except OSError as exc:  # the frames matter more: record on, and say so in the summary
                log.error("%s: TTL not started: %s", self.name, exc)
                self.ttl_error = f"TTL not started: {exc}"
            log.info("%s armed for session %s, T0=%d", self.name, session_id, t0_ns)
            return CameraArmed(camera=self.name, **info)

    def stop(self, stop_ns: int | None, timeout: float = 30.0) -> CameraStopResult:
        """Stop at `stop_ns` (grid-aligned) or now, wait until the files are closed, summarise."""
        session = self.session
        if session is None:
            return CameraStopResult(camera=self.name, recording=False, summary=self.last_summary)
        if session.running:
            stop_ns = stop_ns if stop_ns is not None else self.clock.now_ns()
            session.stop_at(stop_ns)  # the TTL out run follows the capture's end
        if not session.wait(timeout):
            session.abort("stop timed out")
            session.wait(5.0)
        summary = session.summary()
        summary["ttl"] = self._end_ttl()
        self.last_summary = summary
        return CameraStopResult(camera=self.name, recording=False, summary=summary)

    def abort(self, reason: str) -> None:
        session = self.session
        if session is not None and session.running:
            session.abort(reason)
            session.wait(10.0)
            self.last_summary = {**session.summary(), "ttl": self._end_ttl(abort=True)}

    # -- TTL ----------------------------------------------------------------------------------
    def _check_ttl(self, period_ns: int) -> None:
        if self.ttl_lines is None:
            return
        try:
            self.settings.ttl.check_strobe_period(period_ns)
        except SettingsError as exc:
            raise RequestError("bad_field", f"{self.name}: {exc}") from None

    def _start_ttl(self, session: CameraSession, camera_file: str) -> None:
        """TTL out from T0 on the session's grid, TTL in into the session, beside raw/."""
        if self.ttl_lines is None:
            return
        ttl = self.settings.ttl
        files = session.layout.ttl.files(camera_file)
        if ttl.outputs:
            self.ttl_out = TtlOutputRun(
                self.ttl_lines,
                self.clock,
                session.grid,
                session.control,
                ttl.outputs,
                round(ttl.strobe_width_us * 1000),
                files["out"],
                fifo_priority=max(1, self.settings.fifo_priority - 1),
                realtime=self.settings.realtime,
                spin_ns=round(self.settings.spin_us * 1000),
                seed=ttl.barcode_seed,
            ).start()
        if self.ttl_inputs is not None and self.ttl_lines.inputs:
            self.ttl_inputs.begin(files["in"])

    def _end_ttl(self, abort: bool = False) -> dict | None:
        if self.ttl_lines is None:
            return None
        report: dict = {"lines": self.ttl_lines.describe(), "error": self.ttl_error}
        self.ttl_error = None
        out, self.ttl_out = self.ttl_out, None
        if out is not None:
            if abort:
                out.abort()
            if not out.wait(10.0):
                out.abort()
                out.wait(2.0)
            report["out"] = out.report()
        if self.ttl_inputs is not None:
            report["in"] = self.ttl_inputs.end()
        return report

    @property
    def recording(self) -> bool:
        return self.session is not None and self.session.running

    def status(self) -> dict:
        """This camera's STATUS as it goes on the wire (a client's reply, its hello state)."""
        return self.camera_status().to_dict()

    def camera_status(self) -> CameraStatus:
        session = self.session
        current = None
        if session is not None:
            current = CameraSessionStatus(
                session_id=session.session_id,
                running=session.running,
                frames=session.local.frames if session.local else 0,
                stats=session.stats.summary(),
                error=session.error,
                t0_ns=session.grid.t0_ns,
                period_ns=session.grid.period_ns,
            )
        return CameraStatus(
            name=self.name,
            role=self.settings.role,
            state="recording" if self.recording else "idle",
            session=current,
            clock=self.clock.describe(),
            clock_now_ns=self.clock.now_ns(),
            clock_sync=self.clock_monitor.snapshot(),
            backend=self.backend.describe(),
            health=health_report(self.data_dir),
            preview=self.preview.status() if self.preview else disabled_status(),
            # Free-running sensors only (None for triggered ones): the servo's lock state, phase error.
            phase_lock=self.phase_lock_status(),
            ttl=self.ttl_status(),
        )

    def ttl_status(self) -> dict | None:
        if self.ttl_lines is None:
            return None
        inputs = self.ttl_inputs.status() if self.ttl_inputs is not None else {}
        return {"lines": self.ttl_lines.describe(), "inputs": inputs}

    def phase_lock_status(self) -> dict | None:
        backend = self.backend
        return backend.phase_lock_status() if isinstance(backend, FreeRunningCamera) else None

    def close(self) -> None:
        self.clock_monitor.close()
        if self.preview is not None:
            self.preview.close()
        self.abort("agent shutting down")
        if self.ttl_inputs is not None:
            self.ttl_inputs.close()
        if self.ttl_lines is not None:
            self.ttl_lines.close()
        self.backend.close()
