"""The controller's model of the rig: one cluster link to cam0, a status poller (rig/poller.py) that
keeps a fresh snapshot (request handlers read it and never wait on the network), the camera cards
(rig/cards.py), and the recording lifecycle as jobs, its state moving through rig/state.py and its
wait for the planned end in rig/recorder.py.

The recording in progress is written to `<sessions root>/.syncrig/active-recording.json` before
anything else happens after START, so a controller that is killed mid-recording re-attaches on its
next start: cam0 still reports the session, the page shows it recording, and Stop collects
complete files."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from pathlib import Path

from controller.events import EventBus
from controller.jobs import JobContext, JobRunner
from controller.rig.cameras import CameraInfo
from controller.rig.cards import camera_card
from controller.rig.cluster_link import ClusterLink
from controller.rig.config import RigConfig
from controller.rig.poller import POLL_INTERVAL_S, StatusPoller
from controller.rig.preflight import PreflightLimits, run_checks
from controller.rig.recorder import wait_for_planned_end
from controller.rig.recording import (
    ActiveRecording,
    RecordingError,
    RecordingRequest,
    begin_recording,
    finish_recording,
    recorded_cameras,
)
from controller.rig.state import RecordingState, move
from controller.rig.ttl_trigger import TtlRecordTrigger
from controller.transfer.collect import Collection, local_sources, sftp_sources
from controller.transfer.ledger import footage_safe
from controller.transfer.pull import TransportFactory
from syncrig_agent.contract.formats import read_manifest
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.ids import InvalidName, validate_subject_id
from syncrig_agent.contract.protocol import CLOCK_CHECK, LOGS, ConnectionClosed, RemoteError, RequestTimeout

log = logging.getLogger(__name__)

MAX_RECORDING_S = 24 * 3600.0
STATE_DIR = ".syncrig"
ACTIVE_FILE = "active-recording.json"


class RigError(Exception):
    """A request the rig cannot carry out now; `status` is the HTTP status that fits."""

    def __init__(self, message: str, status: int = 409, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


class RigService:
    def __init__(
        self,
        config: RigConfig,
        secret: bytes,
        cameras: list[CameraInfo],
        sessions_root: Path,
        jobs: JobRunner,
        bus: EventBus,
        limits: PreflightLimits | None = None,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self.config = config
        self.secret = secret
        self.cameras = cameras
        self.sessions_root = Path(sessions_root)
        self.jobs = jobs
        self.bus = bus
        self.limits = limits or PreflightLimits()
        self.poll_interval_s = poll_interval_s
        server = config.server
        self.address = (server.host, config.control_port)
        self.link = ClusterLink(
            self.address,
            secret,
            heartbeat_interval_s=config.heartbeat_interval_s,
            heartbeat_timeout_s=config.heartbeat_timeout_s,
        )
        self.active: ActiveRecording | None = None
        self.collection: Collection | None = None  # live receivers + pull of the current recording
        self.recording_state = RecordingState.IDLE  # changed only by _move_to
        self.record_job_id: str | None = None
        self.last_error: str | None = None
        self.last_preflight: dict | None = None
        self.camera_logs: dict[str, dict] = {}
        self._stop_requested = threading.Event()
        self._lock = threading.RLock()
        self._poller = StatusPoller(self.link, self._on_poll, self._stream_status, poll_interval_s)
        self._ttl_gate = TtlRecordTrigger(
            lambda: self.start_recording(None, None, None),
            self.stop_recording,
            lambda: self.recording_state != RecordingState.IDLE,
        )

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> RigService:
        self.sessions_root.mkdir(parents=True, exist_ok=True)
        self._reattach()
        self._poller.start()
        return self

    def close(self) -> None:
        """Stop polling and drop the link. A recording in progress keeps running on the cameras
        (and is re-attached by the next controller)."""
        self._poller.stop()
        self.link.close()

    def _move_to(self, state: RecordingState) -> None:
        with self._lock:
            self.recording_state = move(self.recording_state, state)

    @property
    def state_file(self) -> Path:
        return self.sessions_root / STATE_DIR / ACTIVE_FILE

    def _save_active(self, active: ActiveRecording | None) -> None:
        path = self.state_file
        if active is None:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, active.to_dict())

    def _reattach(self) -> None:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.error("cannot read %s: %s (left in place)", self.state_file, exc)
            return
        try:
            active = ActiveRecording.from_dict(data)
        except (KeyError, TypeError) as exc:
            log.error("%s is not a recording record: %s (left in place)", self.state_file, exc)
            return
        log.warning("re-attaching to recording %s started before this controller", active.session_id)
        active.notes.append("controller restarted during the recording and re-attached")
        self.active = active
        self._move_to(RecordingState.RECORDING)
        self._stop_requested.clear()
        job = self.jobs.submit("record", f"Recording {active.session_id} (re-attached)", self._run_attached)
        self.record_job_id = job.id

    # -- status ----------------------------------------------------------------------------
    def _stream_status(self) -> dict | None:
        collection = self.collection
        receivers = collection.receivers if collection is not None else None
        return receivers.status()["cameras"] if receivers is not None else None

    def snapshot(self) -> dict:
        """Everything a page shows about the rig, from the last poll (never blocks on the network)."""
        polled = self._poller.latest()
        status = polled.status
        with self._lock:
            active = self.active
        cards = [camera_card(cam, status, self._poller.fps(cam.name), polled.streams) for cam in self.cameras]
        rec: dict = {
            "state": self.recording_state.value,
            "job_id": self.record_job_id,
            "error": self.last_error,
        }
        if active is not None:
            clock_now = status.server.clock_now_ns if status is not None else None
            rec.update(
                session_id=active.session_id,
                subject=active.subject,
                project=active.project,
                t0_ns=active.t0_ns,
                planned_seconds=active.seconds,
                elapsed_s=max(0.0, (clock_now - active.t0_ns) / 1e9) if clock_now else None,
            )
        return {
            "link": {
                "connected": status is not None,
                "address": f"{self.address[0]}:{self.address[1]}",
                "error": polled.link_error,
                "status_at": polled.at,
            },
            "recording": rec,
            "cameras": cards,
            "updated": time.time(),
        }

    # -- footage -----------------------------------------------------------------------------
    @property
    def simulated(self) -> bool:
        """Every camera's storage is reachable on this machine (the simulated rig)."""
        return all(c.data_dir is not None for c in self.cameras)

    def transfer_sources(self) -> dict[str, TransportFactory]:
        """How to reach each camera's recordings: local data dirs in simulation, SFTP on a rig."""
        return local_sources(self.cameras) if self.simulated else sftp_sources(self.config)

    def _collection(self, ctx: JobContext, stream: bool) -> Collection:
        """Live streams to receivers on this machine while recording (simulation: loopback; a real
        rig needs `extra.desktop_host`, the address the Pis reach this machine at), then a
        verified pull with gap fill."""
        desktop_host = self.config.extra.get("desktop_host")
        stream = stream and (self.simulated or bool(desktop_host))
        return Collection(
            stream=stream,
            secret_file=Path(self.config.secret_file).expanduser(),
            bind_host="127.0.0.1" if self.simulated else "0.0.0.0",
            advertise_host=None if self.simulated else desktop_host,
            sources=self.transfer_sources(),
            progress=lambda f, m: ctx.progress(0.95 + 0.05 * f, m),
        )

    # -- pre-flight --------------------------------------------------------------------------
    def preflight(
        self, planned_seconds: float | None, ctx: JobContext | None = None, exclude: list[str] = ()
    ) -> dict:
        """Measure and check (network work: call from a job); `exclude`d cameras are not checked."""
        if ctx:
            ctx.progress(0.1, "reading camera status")
        status = self.link.status(timeout=5.0)
        if ctx:
            ctx.progress(0.3, "measuring each camera's clock against cam0")
        try:
            clock_check = self.link.request({"type": CLOCK_CHECK, "samples": 8}, timeout=30.0)["cameras"]
        except (RemoteError, RequestTimeout, ConnectionClosed) as exc:
            clock_check = {"error": str(exc)}
        if ctx:
            ctx.progress(0.6, "measuring desktop ↔ cam0 clock offset")
        try:
            desktop_clock = self.link.clock_offset()
        except (RequestTimeout, ConnectionClosed) as exc:
            desktop_clock = {"error": str(exc)}
        try:
            desktop_free = shutil.disk_usage(self.sessions_root).free
        except OSError:
            desktop_free = None
        result = run_checks(
            status,
            [c.name for c in self.cameras if c.name not in exclude],
            self.config.bitrate,
            planned_seconds,
            self.limits,
            desktop_clock=desktop_clock,
            desktop_free_bytes=desktop_free,
            clock_check=clock_check,
        ).to_dict()
        result["measured_at"] = time.time()
        self.last_preflight = result
        self.bus.publish("preflight", result)
        return result

    def submit_preflight(self, planned_seconds: float | None) -> str:
        job = self.jobs.submit(
            "preflight", "Pre-flight checks", lambda ctx: self.preflight(planned_seconds, ctx)
        )
        return job.id

    # -- recording ---------------------------------------------------------------------------
    def start_recording(
        self,
        subject: str | None,
        project: str | None,
        seconds: float | None,
        override: bool = False,
        exclude: list[str] = (),
    ) -> str:
        """Start a recording job. `exclude`: cameras to leave out (recorded in the manifest); with
        `override` ("record anyway") cameras offline at the start are left out too."""
        subject = _optional_id(subject, "subject")
        project = _optional_id(project, "project")
        try:
            recorded_cameras(self.cameras, dict.fromkeys(exclude, ""))
        except RecordingError as exc:
            raise RigError(str(exc), 400, "exclude") from None
        if seconds is not None and not (0 < seconds <= MAX_RECORDING_S):
            raise RigError(f"seconds: must be in (0, {MAX_RECORDING_S:g}] s, got {seconds:g}", 400, "seconds")
        if self.jobs.active("settings") is not None:
            raise RigError("new settings are being applied to the rig; try again in a moment")
        with self._lock:
            if self.active is not None or self.recording_state != RecordingState.IDLE:
                raise RigError(f"a recording is already {self.recording_state}")
            self._move_to(RecordingState.STARTING)
            self.last_error = None
            self._stop_requested.clear()
        request = RecordingRequest(
            self.config.fps, seconds, subject, project, {n: "excluded by the user" for n in exclude}
        )
        title = f"Recording {subject or ''} {project or ''}".strip()
        job = self.jobs.submit("record", title, lambda ctx: self._run_recording(ctx, request, override))
        self.record_job_id = job.id
        self._publish()
        return job.id

    def stop_recording(self) -> str:
        with self._lock:
            if self.recording_state == RecordingState.IDLE and self.active is None:
                raise RigError("nothing is recording")
            self._stop_requested.set()
        self._publish()
        return self.record_job_id or ""

    def _on_poll(self) -> None:
        self._ttl_gate.observe(self._poller.latest().status)  # TTL inputs that gate recording
        self._publish()

    def _publish(self) -> None:
        self.bus.publish("status", self.snapshot())

    def _run_recording(self, ctx: JobContext, request: RecordingRequest, override: bool) -> dict:
        try:
            ctx.progress(0.0, "pre-flight checks")
            pre = self.preflight(request.seconds, exclude=list(request.exclude))
            notes = []
            if not pre["ok"]:
                if not override:
                    raise RecordingError(
                        f"pre-flight failed: {pre['reason']} (tick 'record anyway' to override)"
                    )
                notes.append(f"pre-flight overridden by the user: {pre['reason']}")
                ctx.log(notes[-1])
                # "Record anyway" records with the cameras that are there.
                for card in self.snapshot()["cameras"]:
                    if not card.get("online") and card["name"] not in request.exclude:
                        request.exclude[card["name"]] = "offline at start (recorded anyway)"
                        ctx.log(f"{card['name']} is offline: recording without it")
            for name, why in request.exclude.items():
                ctx.log(f"{name} left out: {why}")
            if self._stop_requested.is_set():
                raise RecordingError("stopped before the recording started")
            ctx.progress(0.0, "starting")
            collection = self._collection(ctx, stream=True)
            active = begin_recording(
                self.link, self.sessions_root, self.cameras, request, notes=notes, collection=collection
            )
        except BaseException as exc:
            with self._lock:
                self._move_to(RecordingState.IDLE)
                self.last_error = str(exc)
            self._publish()
            raise
        with self._lock:
            self.active = active
            self.collection = collection
            self._save_active(active)
            self._move_to(RecordingState.RECORDING)
        ctx.log(f"session {active.session_id}: T0 = {active.t0_ns}")
        if collection.receivers is not None:
            ctx.log(f"live streams to {len(collection.receivers.receivers)} receivers")
        self._publish()
        return self._run_attached(ctx)

    def _run_attached(self, ctx: JobContext) -> dict:
        """Wait for the planned end or a Stop, then collect (also after a controller restart)."""
        active = self.active
        assert active is not None

        def cam0_now_ns() -> int:
            status = self._poller.latest().status
            session = status.session if status is not None else None
            if session is not None and session.session_id != active.session_id:
                raise RecordingError(f"cam0 is recording another session: {session.to_dict()}")
            # While the link is down this machine's clock stands in: a lost link must not stall
            # the planned end.
            return self._poller.cam0_now_ns() or time.time_ns()

        def on_tick(now: int) -> None:
            elapsed = max(0.0, (now - active.t0_ns) / 1e9)
            if active.seconds is not None:
                ctx.progress(elapsed / active.seconds, f"recording {elapsed:.1f} / {active.seconds:.1f} s")
            else:
                ctx.progress(0.0, f"recording {elapsed:.1f} s (until stopped)")

        def stop_requested(wait_s: float) -> bool:
            return self._stop_requested.wait(wait_s) or ctx.cancelled

        stop_now = wait_for_planned_end(active.planned_stop_ns, cam0_now_ns, stop_requested, on_tick, 0.25)
        self._move_to(RecordingState.STOPPING if stop_now else RecordingState.COLLECTING)
        self._publish()
        ctx.progress(0.95, "stopping and collecting files")
        try:
            # After a controller restart there are no receivers of ours: the pull fills in
            # everything the earlier receivers did not get.
            collection = self.collection or self._collection(ctx, stream=False)
            session_dir = finish_recording(self.link, active, stop_now=stop_now, collection=collection)
        except RecordingError as exc:
            with self._lock:
                self.last_error = str(exc)
                self._move_to(RecordingState.RECORDING)  # the cameras may still record: Stop can be retried
                self._stop_requested.clear()
            self._publish()
            raise
        with self._lock:
            self.active = None
            self.collection = None
            self._save_active(None)
            self._move_to(RecordingState.IDLE)
        self.bus.publish("sessions", {"changed": active.session_id})
        self._publish()
        manifest = read_manifest(session_dir)
        safe = footage_safe(session_dir, rehash=False)
        for cam, verdict in safe["cameras"].items():
            if not verdict["safe"]:
                ctx.log(f"{cam}: footage not verified on the desktop: {'; '.join(verdict['problems'])}")
        lost = {c["name"]: c["lost"] for c in manifest.cameras if c.get("lost")}
        for cam, what in lost.items():
            ctx.log(f"{cam} LOST {what['at_s']:.2f} s into the recording: {what['reason']}")
        return {
            "session_id": active.session_id,
            "cameras": {
                c["name"]: {"frames": c["frames"], "dropped": c["dropped"]} for c in manifest.cameras
            },
            "footage_verified": safe["safe"],
            "lost": lost,
        }

    # -- logs --------------------------------------------------------------------------------
    def fetch_logs(self, camera: str, lines: int = 300) -> str:
        if camera not in {c.name for c in self.cameras}:
            raise RigError(f"unknown camera {camera!r}", 404, "camera")

        def run(ctx: JobContext) -> dict:
            try:
                reply = self.link.request({"type": LOGS, "camera": camera, "lines": lines}, timeout=5.0)
                entry = {"lines": reply.get("lines", []), "fetched_at": time.time(), "error": None}
            except (RemoteError, RequestTimeout, ConnectionClosed, OSError) as exc:
                entry = {"lines": [], "fetched_at": time.time(), "error": str(exc)}
            self.camera_logs[camera] = entry
            self.bus.publish("logs", {"camera": camera, **entry})
            return {"camera": camera, "lines": len(entry["lines"]), "error": entry["error"]}

        return self.jobs.submit("logs", f"Logs of {camera}", run).id


def _optional_id(value: str | None, kind: str) -> str | None:
    if value is None or value == "":
        return None
    try:
        return validate_subject_id(value, f"{kind} ID")
    except InvalidName as exc:
        raise RigError(str(exc), 400, kind) from None
