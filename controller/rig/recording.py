"""Recording a session from the desktop: START on cam0, wait, STOP on a shared grid boundary,
gather every camera's files into one session directory with its manifest."""

from __future__ import annotations

import json
import logging
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

import av
import numpy as np

from controller.rig.cameras import CameraInfo
from controller.rig.cluster_link import ClusterLink
from controller.rig.faults import last_recorded_end, link_close_reasons, receiver_fault_notes, stop_or_none
from controller.rig.recorder import wait_for_planned_end
from controller.session.create import create_session_dir, remove_unused_session_dir, utc_now_iso
from controller.transfer.collect import Collection
from syncrig_agent import __version__
from syncrig_agent.contract.drops import CAMERA_LOST, NOT_REACHED, drops_by_cause
from syncrig_agent.contract.formats import SessionManifest, write_manifest
from syncrig_agent.contract.grid import period_ns_for_fps
from syncrig_agent.contract.layout import SessionLayout
from syncrig_agent.contract.protocol import ConnectionClosed, RemoteError, RequestTimeout
from syncrig_agent.contract.protocol.replies import RigStatus

log = logging.getLogger(__name__)


class _HasName(Protocol):
    name: str


Named = TypeVar("Named", bound=_HasName)


@dataclass
class RecordingRequest:
    fps: float
    seconds: float | None  # None: record until stopped
    subject: str | None = None
    project: str | None = None
    # Cameras of the rig to leave out, each with why ("excluded by the user", "offline at start").
    exclude: dict[str, str] = field(default_factory=dict)


class RecordingError(RuntimeError):
    pass


@dataclass
class ActiveRecording:
    """A recording between START and its collection. JSON-serialisable, so a controller that
    restarts mid-recording can re-attach to it (see `to_dict` / `from_dict`)."""

    session_id: str
    session_dir: Path
    cameras: list[CameraInfo]
    fps: float
    period_ns: int
    t0_ns: int
    created: str
    subject: str | None = None
    project: str | None = None
    planned_stop_ns: int | None = None  # fixed at START when the duration was given
    clock_reports: dict = field(default_factory=dict)
    start_info: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float | None:
        if self.planned_stop_ns is None:
            return None
        return (self.planned_stop_ns - self.t0_ns) / 1e9

    def to_dict(self) -> dict:
        data = asdict(self)
        data["session_dir"] = str(self.session_dir)
        data["cameras"] = [
            {**asdict(c), "data_dir": str(c.data_dir) if c.data_dir else None} for c in self.cameras
        ]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ActiveRecording:
        cams = [
            CameraInfo(**{**c, "data_dir": Path(c["data_dir"]) if c.get("data_dir") else None})
            for c in data["cameras"]
        ]
        return cls(**{**data, "session_dir": Path(data["session_dir"]), "cameras": cams})


def begin_recording(
    link: ClusterLink,
    sessions_root: Path,
    cameras: list[CameraInfo],
    request: RecordingRequest,
    notes: list[str] | None = None,
    collection: Collection | None = None,
) -> ActiveRecording:
    """Create the session directory and START every camera on cam0's next T0.

    With `request.seconds`, the end is fixed at START: every camera stops by itself after exactly
    that many grid slots, so frame counts are comparable and "expected − recorded" is the number
    of drops. Without it the recording runs until `finish_recording`. With a streaming
    `collection`, its live receivers are started first and START carries their addresses."""
    cameras = recorded_cameras(cameras, request.exclude)
    session_id, session_dir = create_session_dir(sessions_root, request.subject, request.project)
    period = period_ns_for_fps(request.fps)
    slots = max(1, round(request.seconds * request.fps)) if request.seconds else None
    created = utc_now_iso()
    try:
        status_before = link.status()
        try:
            desktop_clock = link.clock_offset()
        except Exception as exc:  # informative only
            desktop_clock = {"error": str(exc)}
        files = {c.name: c.name for c in cameras}
    except (RemoteError, RequestTimeout, ConnectionClosed, OSError) as exc:
        remove_unused_session_dir(session_dir)
        raise RecordingError(f"cam0 did not start the recording: {exc}") from None
    try:
        streams = collection.start_streams(session_dir, list(files)) if collection else None
    except (OSError, RuntimeError, ValueError) as exc:
        # The directory stays: stream/run/ holds the receivers' logs saying why.
        raise RecordingError(f"the stream receivers did not start: {exc}") from None
    try:
        started = link.start(session_id, period, request.fps, files, frames=slots, streams=streams)
    except (RemoteError, RequestTimeout, ConnectionClosed, OSError) as exc:
        if collection is not None:
            collection.abort()
        # Nothing was recorded: the empty directory we just made goes (and only it).
        if streams is None:
            remove_unused_session_dir(session_dir)
        raise RecordingError(f"cam0 did not start the recording: {exc}") from None
    t0 = started.t0_ns
    return ActiveRecording(
        session_id=session_id,
        session_dir=session_dir,
        cameras=cameras,
        fps=float(request.fps),
        period_ns=period,
        t0_ns=t0,
        created=created,
        subject=request.subject,
        project=request.project,
        planned_stop_ns=t0 + slots * period if slots else None,
        clock_reports=_clock_reports(status_before, desktop_clock),
        start_info={
            "lead_ns": started.lead_ns,
            "late_cameras": started.late,
            "armed": {name: armed.to_dict() for name, armed in started.cameras.items()},
        },
        notes=list(notes or []),
        excluded=dict(request.exclude),
    )


def recorded_cameras(cameras: list[Named], exclude: dict[str, str]) -> list[Named]:
    """The rig's cameras less the excluded ones; an unknown name, or leaving none, is refused."""
    names = [c.name for c in cameras]
    unknown = sorted(set(exclude) - set(names))
    if unknown:
        raise RecordingError(
            f"exclude: no camera named {', '.join(unknown)} in the rig (cameras: {', '.join(names)})"
        )
    kept = [c for c in cameras if c.name not in exclude]
    if not kept:
        raise RecordingError("exclude: every camera is excluded; nothing would be recorded")
    return kept


def finish_recording(
    link: ClusterLink,
    active: ActiveRecording,
    stop_now: bool = False,
    timeout: float | None = None,
    collection: Collection | None = None,
) -> Path:
    """STOP (at the planned end, or with `stop_now` on the next grid boundary every camera can
    make), collect every camera's files into the session directory and write its manifest. Works
    after a controller restart: a camera that already stopped on its own still has its summary in
    `<cam>.capture.json`. `collection` (the one given to `begin_recording`, or a new one after a
    restart) ends the live streams and pulls + verifies + gap-fills every camera's raw files; by
    default each camera's data dir is pulled locally (simulation)."""
    stop_ns = None if stop_now else active.planned_stop_ns
    wait_s = timeout if timeout is not None else 60.0 + max(0.0, (active.seconds or 0.0))
    try:
        # After the end instant this only collects the summaries (a STOP never extends a recording).
        stopped = stop_or_none(link, stop_ns, wait_s, active.notes)
    except RemoteError as exc:
        if collection is not None:
            collection.abort()
        raise RecordingError(
            f"STOP failed ({exc}); the cameras keep their files and stop on their own at the planned end"
        ) from None
    summaries: dict[str, dict] = {}
    lost: dict[str, str] = {}  # camera → why STOP could not reach it
    if stopped is None:
        # cam0 is gone (killed, frozen, cut off): each client stops by itself when cam0 falls
        # silent; what every camera wrote is collected and cam0 is the lost camera.
        final_stop = active.planned_stop_ns or (1 << 62)
        for cam in active.cameras:
            summaries[cam.name] = {}
            if cam.role == "server":
                lost[cam.name] = active.notes[-1]
    else:
        final_stop = stopped.stop_ns
        _note_clock_sync_at_stop(link, active)
        if stopped.session is None and active.planned_stop_ns is not None:
            # The cameras had finished by themselves: the recording ended at its planned end.
            final_stop = min(final_stop, active.planned_stop_ns)
        for cam in active.cameras:
            result = stopped.cameras.get(cam.name)
            if result is not None and result.error:
                log.error("%s: %s", cam.name, result.error)
            summaries[cam.name] = (result.summary if result is not None else None) or {}
            if result is None or result.error:  # STOP did not reach it
                lost[cam.name] = (result.error if result is not None else None) or "no answer to STOP"
        for name, why in link_close_reasons(link, lost).items():
            lost[name] = why
    transfer = (collection or Collection()).finish(
        active.session_dir, active.cameras, t0_ns=active.t0_ns, lost=set(lost)
    )
    active.notes.extend(receiver_fault_notes(transfer.get("stream")))
    for name, result in transfer["cameras"].items():
        if not result.get("ok"):
            log.error("%s: footage not on the desktop yet: %s", name, result.get("error"))
            active.notes.append(f"{name}: raw files not pulled: {result.get('error')}")
    for cam in active.cameras:
        if not summaries[cam.name] or summaries[cam.name].get("session_id") != active.session_id:
            summaries[cam.name] = _saved_summary(active.session_dir, cam.name)
        end_index = summaries[cam.name].get("end_index")
        if stopped is not None and stopped.session is None and end_index is not None:
            final_stop = min(final_stop, active.t0_ns + int(end_index) * active.period_ns)
    if stopped is None:
        # No shared stop instant: the recording ends after the last slot any camera recorded.
        final_stop = min(
            final_stop,
            last_recorded_end(
                active.session_dir, [c.name for c in active.cameras], active.t0_ns, active.period_ns
            ),
        )
    manifest = SessionManifest(
        id=active.session_id,
        subject=active.subject,
        project=active.project,
        created=active.created,
        fps=active.fps,
        period_ns=active.period_ns,
        t0_ns=active.t0_ns,
        stop_ns=final_stop,
        cameras=[
            _camera_entry(
                cam,
                summaries.get(cam.name, {}),
                active.t0_ns,
                active.period_ns,
                final_stop,
                active.session_dir,
                lost.get(cam.name),
            )
            for cam in active.cameras
        ],
        clock_reports=active.clock_reports,
        software={
            "syncrig": __version__,
            "python": platform.python_version(),
            "pyav": av.__version__,
            "host": platform.node(),
        },
        start=active.start_info,
        notes=active.notes,
        excluded=active.excluded,
    )
    write_manifest(active.session_dir, manifest)
    return active.session_dir


def _saved_summary(session_dir: Path, camera: str) -> dict:
    """The camera's own `<cam>.capture.json`, written when its capture ended."""
    path = SessionLayout(session_dir).raw.capture_report(camera)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def record(
    link: ClusterLink,
    sessions_root: Path,
    cameras: list[CameraInfo],
    request: RecordingRequest,
    progress: Callable[[float, dict], None] | None = None,
    collection: Collection | None = None,
) -> Path:
    """Record `request.seconds` on every camera and return the session directory.

    `collection` decides how the footage reaches the desktop (live receivers during the recording,
    verified pull + gap fill after it); by default each camera's data dir is pulled locally."""
    active = begin_recording(link, sessions_root, cameras, request, collection=collection)
    planned_stop_ns = active.planned_stop_ns
    assert planned_stop_ns is not None, "headless recordings have a duration"

    def cam0_now_ns() -> int:
        now = link.status().server.clock_now_ns
        if now is None:
            raise RecordingError("cam0's status has no clock reading")
        return now

    def on_tick(now: int) -> None:
        if progress is not None:
            remaining = (planned_stop_ns - now) / 1e9
            progress(
                min(1.0, max(0.0, 1 - remaining / max(request.seconds or 0.0, 1e-9))),
                {"t0_ns": active.t0_ns},
            )

    def sleep(seconds: float) -> bool:
        time.sleep(seconds)  # headless: only Ctrl-C (KeyboardInterrupt) stops early
        return False

    stop_now = False
    try:
        stop_now = wait_for_planned_end(planned_stop_ns, cam0_now_ns, sleep, on_tick, poll_s=0.5)
    except KeyboardInterrupt:
        active.notes.append("recording interrupted by the user")
        stop_now = True
    return finish_recording(
        link, active, stop_now, timeout=60.0 + (request.seconds or 0.0), collection=collection
    )


def _camera_entry(
    cam: CameraInfo,
    summary: dict,
    t0: int,
    period: int,
    stop_ns: int,
    session_dir: Path,
    lost_reason: str | None = None,
) -> dict:
    stats = summary.get("stats", {})
    raw = SessionLayout(session_dir).raw
    expected = max(0, -((t0 - stop_ns) // period))
    frames = int(summary.get("frames", 0))
    if lost_reason is not None and not summary and raw.frames(cam.name).exists():
        # A lost camera sent no summary: what it produced is what reached raw/ (whole frames).
        from syncrig_agent.contract.formats import read_frame_table

        grid = read_frame_table(raw.frames(cam.name))["grid_index"]
        frames = int(np.count_nonzero((grid >= 0) & (grid < expected)))
    entry = {
        "name": cam.name,
        "host": cam.host,
        "role": cam.role,
        "width": cam.width,
        "height": cam.height,
        "frames": frames,
        "expected_frames": expected,
        "dropped": expected - frames,
        # Every missing slot has exactly one cause (contract.drops); "not_reached" is filled in below.
        "drops": drops_by_cause(stats),
        "wake_error": stats.get("wake_error", {}),
        # Free-running sensors: lock state, when it locked (locked_at_ns / locked_at_index), phase error.
        "phase_lock": stats.get("phase_lock"),
        "error": summary.get("error"),
        "backend": summary.get("backend", {}),
        "realtime": summary.get("realtime"),
        # TTL lines, edges sent (and how late), input edges logged; None without TTL (ttl/ has the edges)
        "ttl": summary.get("ttl"),
        "files": {
            k: str((raw.path / Path(v).name).relative_to(session_dir))
            for k, v in summary.get("files", {}).items()
        },
    }
    frames_csv = raw.frames(cam.name)
    grid = np.zeros(0, dtype=np.int64)
    if frames_csv.exists():
        from syncrig_agent.contract.formats import read_frame_table

        grid = read_frame_table(frames_csv)["grid_index"]
    last = int(grid[-1]) if grid.size else -1
    lost_slots = max(0, expected - (last + 1))
    after_stop = int(np.count_nonzero(grid >= expected))
    if after_stop:
        # STOP did not reach it (cut off): it recorded on until it stopped by itself. Its own
        # recording ran to its last slot: those frames are counted, and so are its drops there.
        entry["frames_after_stop"] = after_stop
        entry["expected_frames"] = last + 1
        entry["dropped"] = last + 1 - frames
    if lost_reason is not None:
        # Every slot after its last whole frame was lost with the camera.
        entry["drops"][CAMERA_LOST] = lost_slots
        entry["lost"] = {
            "reason": lost_reason,
            "last_grid_index": last if grid.size else None,
            "at_ns": t0 + (last + 1) * period,
            "at_s": round((last + 1) * period / 1e9, 3),
            "slots_lost": lost_slots,
        }
        if lost_slots or not summary:
            entry["error"] = entry["error"] or (
                f"camera lost: {lost_reason} (its last frame {entry['lost']['at_s']:.2f} s in)"
            )
    # Slots after a camera stopped early (error, abort, lost server) were never attempted.
    entry["drops"][NOT_REACHED] = max(0, entry["dropped"] - sum(entry["drops"].values()))
    if frames_csv.exists():
        entry["first_grid_index"] = int(grid[0]) if grid.size else None
        entry["last_grid_index"] = int(grid[-1]) if grid.size else None
        present = np.zeros(expected, dtype=bool)
        present[grid[(grid >= 0) & (grid < expected)]] = True
        entry["missing_grid_indices"] = np.flatnonzero(~present)[:1000].tolist()
    return entry


def _clock_reports(status: RigStatus, desktop_clock: dict) -> dict:
    server = status.server
    reports = {
        status.reference: {
            "clock": server.clock,
            "clock_sync": server.clock_sync,
            "offset_to_desktop": desktop_clock,
        }
    }
    for name, client in status.clients.items():
        reports[name] = {
            "clock": client.status.clock if client.status else None,
            # What disciplined this camera's clock at START: source, lock, offset, grandmaster.
            "clock_sync": client.status.clock_sync if client.status else None,
            "offset_to_server_ns": client.clock_offset_ns,
            "rtt_to_server_ns": client.rtt_ns,
        }
    return reports


def _note_clock_sync_at_stop(link: ClusterLink, active: ActiveRecording) -> None:
    """Each camera's clock state right after STOP next to the one at START, so a clock that lost
    its lock during the session shows in the manifest."""
    try:
        status = link.status(timeout=5.0)
    except (RemoteError, RequestTimeout, ConnectionClosed, OSError) as exc:
        active.notes.append(f"clock state at stop not read: {exc}")
        return
    states = {
        name: entry.status.clock_sync if entry.status else None
        for name, entry in status.camera_links().items()
    }
    for cam in active.cameras:
        active.clock_reports.setdefault(cam.name, {})["clock_sync_at_stop"] = states.get(cam.name)
