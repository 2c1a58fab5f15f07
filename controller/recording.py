"""Recording a session from the desktop: START on cam0, wait, STOP on a shared grid boundary,
gather every camera's files into one session directory with its manifest."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from syncrig_agent import __version__
from syncrig_agent.formats import SessionManifest, write_manifest
from syncrig_agent.grid import period_ns_for_fps
from syncrig_agent.protocol import ConnectionClosed, RemoteError, RequestTimeout

from .cluster_link import ClusterLink
from .sessions import create_session_dir, remove_unused_session_dir, utc_now_iso
from .transfer.collect import Collection

log = logging.getLogger(__name__)

# How long after the end instant the STOP (which collects the summaries) is sent.
STOP_MARGIN_S = 0.2


@dataclass
class CameraInfo:
    name: str
    host: str
    role: str
    width: int
    height: int
    data_dir: Path | None = None  # local path of the camera's recordings (simulation / local transport)


@dataclass
class RecordingRequest:
    fps: float
    seconds: float
    subject: str | None = None
    project: str | None = None


class RecordingError(RuntimeError):
    pass


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
    collection = collection or Collection()
    session_id, session_dir = create_session_dir(sessions_root, request.subject, request.project)
    period = period_ns_for_fps(request.fps)
    slots = max(1, round(request.seconds * request.fps))
    created = utc_now_iso()
    status_before = link.status()
    try:
        desktop_clock = link.clock_offset()
    except Exception as exc:  # informative only
        desktop_clock = {"error": str(exc)}
    files = {c.name: c.name for c in cameras}
    # The end is fixed at START: every camera stops by itself after exactly `slots` grid slots,
    # so frame counts are comparable and "expected − recorded" is the number of drops.
    try:
        streams = collection.start_streams(session_dir, list(files))
    except (OSError, RuntimeError, ValueError) as exc:
        # The directory stays: stream/run/ holds the receivers' logs saying why.
        raise RecordingError(f"the stream receivers did not start: {exc}") from None
    try:
        started = link.start(session_id, period, request.fps, files, frames=slots, streams=streams)
    except (RemoteError, RequestTimeout, ConnectionClosed) as exc:
        collection.abort()
        # Nothing was recorded: the empty directory we just made goes (and only it).
        if streams is None:
            remove_unused_session_dir(session_dir)
        raise RecordingError(f"cam0 did not start the recording: {exc}") from None
    t0 = int(started["t0_ns"])
    stop_ns: int | None = t0 + slots * period
    interrupted = False
    try:
        while True:
            now = link.status()["server"]["clock_now_ns"]
            remaining = (stop_ns - now) / 1e9
            if progress is not None:
                progress(min(1.0, max(0.0, 1 - remaining / max(request.seconds, 1e-9))), {"t0_ns": t0})
            if remaining <= -STOP_MARGIN_S:
                break
            time.sleep(min(0.5, remaining + STOP_MARGIN_S))
    except KeyboardInterrupt:
        interrupted = True
        stop_ns = None  # stop as soon as every camera can
    # After the end instant this only collects the summaries (a STOP never extends a recording).
    try:
        stopped = link.stop(at_ns=stop_ns, timeout=60.0 + request.seconds)
    except (RemoteError, RequestTimeout, ConnectionClosed) as exc:
        collection.abort()
        raise RecordingError(
            f"STOP failed ({exc}); the cameras keep their files and stop on their own at the planned end"
        ) from None
    final_stop = int(stopped["stop_ns"])
    summaries = {}
    for cam in cameras:
        result = stopped["cameras"].get(cam.name, {})
        if result.get("error"):
            log.error("%s: %s", cam.name, result["error"])
        summaries[cam.name] = result.get("summary") or {}
    transfer = collection.finish(session_dir, cameras)
    notes = ["recording interrupted by the user"] if interrupted else []
    for name, result in transfer["cameras"].items():
        if not result.get("ok"):
            log.error("%s: footage not on the desktop yet: %s", name, result.get("error"))
            notes.append(f"{name}: raw files not pulled: {result.get('error')}")
    manifest = SessionManifest(
        id=session_id,
        subject=request.subject,
        project=request.project,
        created=created,
        fps=float(request.fps),
        period_ns=period,
        t0_ns=t0,
        stop_ns=final_stop,
        cameras=[
            _camera_entry(cam, summaries.get(cam.name, {}), t0, period, final_stop, session_dir)
            for cam in cameras
        ],
        clock_reports=_clock_reports(status_before, desktop_clock),
        software={
            "syncrig": __version__,
            "python": platform.python_version(),
            "pyav": av.__version__,
            "host": platform.node(),
        },
        start={
            "lead_ns": started.get("lead_ns"),
            "late_cameras": started.get("late", []),
            "armed": started.get("cameras", {}),
        },
        notes=notes,
    )
    write_manifest(session_dir, manifest)
    return session_dir


def _camera_entry(
    cam: CameraInfo, summary: dict, t0: int, period: int, stop_ns: int, session_dir: Path
) -> dict:
    stats = summary.get("stats", {})
    expected = max(0, -((t0 - stop_ns) // period))
    frames = int(summary.get("frames", 0))
    entry = {
        "name": cam.name,
        "host": cam.host,
        "role": cam.role,
        "width": cam.width,
        "height": cam.height,
        "frames": frames,
        "expected_frames": expected,
        "dropped": expected - frames,
        "drops": {
            "sensor": stats.get("sensor_drops", 0),
            "late_skips": stats.get("late_skips", 0),
            "queue_overflows": stats.get("queue_overflows", 0),
            "after_failure": stats.get("after_failure", 0),
        },  # every missing slot has exactly one cause; "not_reached" is filled in below
        "wake_error": stats.get("wake_error", {}),
        "error": summary.get("error"),
        "backend": summary.get("backend", {}),
        "realtime": summary.get("realtime"),
        "files": {k: str(Path("raw") / Path(v).name) for k, v in summary.get("files", {}).items()},
    }
    # Slots after a camera stopped early (error, abort, lost server) were never attempted.
    entry["drops"]["not_reached"] = max(0, entry["dropped"] - sum(entry["drops"].values()))
    frames_csv = session_dir / "raw" / f"{cam.name}.frames.csv"
    if frames_csv.exists():
        from syncrig_agent.formats import read_frame_table

        table = read_frame_table(frames_csv)
        grid = table["grid_index"]
        entry["first_grid_index"] = int(grid[0]) if grid.size else None
        entry["last_grid_index"] = int(grid[-1]) if grid.size else None
        present = np.zeros(expected, dtype=bool)
        present[grid[(grid >= 0) & (grid < expected)]] = True
        entry["missing_grid_indices"] = np.flatnonzero(~present)[:1000].tolist()
    return entry


def _clock_reports(status: dict, desktop_clock: dict) -> dict:
    server = status.get("server", {})
    reports = {server.get("name", "cam0"): {"clock": server.get("clock"), "offset_to_desktop": desktop_clock}}
    for name, client in status.get("clients", {}).items():
        reports[name] = {
            "clock": (client.get("status") or {}).get("clock"),
            "offset_to_server_ns": client.get("clock_offset_ns"),
            "rtt_to_server_ns": client.get("rtt_ns"),
        }
    return reports
