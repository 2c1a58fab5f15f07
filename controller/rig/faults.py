"""What a recording does when a part of the rig fails before STOP: which cameras STOP could not
reach and why (cam0's view of their links), a STOP that cannot reach cam0 at all (every camera's
files are collected anyway), and the notes that say so in the manifest."""

from __future__ import annotations

import logging
from pathlib import Path

from controller.rig.cluster_link import ClusterLink
from syncrig_agent.contract.formats import read_frame_table
from syncrig_agent.contract.layout import SessionLayout
from syncrig_agent.contract.protocol import ConnectionClosed, ProtocolError, RemoteError, RequestTimeout
from syncrig_agent.contract.protocol.replies import StopReply

log = logging.getLogger(__name__)


def link_close_reasons(link: ClusterLink, lost: dict[str, str]) -> dict[str, str]:
    """Why cam0 lost each of these cameras (its link's close reason), where cam0 knows."""
    if not lost:
        return {}
    try:
        clients = link.status(timeout=5.0).clients
    except (RemoteError, RequestTimeout, ConnectionClosed, ProtocolError, OSError):
        return {}
    reasons = {}
    for name in lost:
        entry = clients.get(name)
        if entry is not None and entry.close_reason:
            reasons[name] = f"link to cam0 closed: {entry.close_reason}"
    return reasons


def stop_or_none(link: ClusterLink, stop_ns: int | None, wait_s: float, notes: list[str]) -> StopReply | None:
    """cam0's STOP reply; None when cam0 cannot be reached twice (the second try on a fresh
    connection, so a broken controller link is not taken for a lost cam0). RemoteError (cam0
    refused) goes to the caller."""
    failure: Exception | None = None
    for attempt_timeout in (wait_s, 10.0):
        try:
            return link.stop(at_ns=stop_ns, timeout=attempt_timeout)
        except (RequestTimeout, ConnectionClosed, ProtocolError, OSError) as exc:
            # ProtocolError: a frozen cam0 accepts the TCP connection but never answers the handshake.
            failure = exc
            log.warning("STOP did not reach cam0: %s", exc)
            link.close()
    notes.append(f"cam0 unreachable at STOP ({failure}); collected what every camera wrote")
    log.warning("%s", notes[-1])
    return None


def last_recorded_end(session_dir: Path, cameras: list[str], t0_ns: int, period_ns: int) -> int:
    """The instant after the last grid slot any camera has in raw/ (T0 when none has any)."""
    raw = SessionLayout(session_dir).raw
    last = -1
    for camera in cameras:
        try:
            grid = read_frame_table(raw.frames(camera))["grid_index"]
        except (OSError, ValueError):
            continue
        if grid.size:
            last = max(last, int(grid[-1]))
    return t0_ns + (last + 1) * period_ns


def receiver_fault_notes(stream_status: dict | None) -> list[str]:
    """A note per camera whose live receiver (side-car or FFmpeg) was restarted during the
    recording: its missing frames came from the Pi's copy (gap fill)."""
    notes = []
    for camera, st in ((stream_status or {}).get("cameras") or {}).items():
        if st.get("restarts"):
            notes.append(
                f"{camera}: live receiver restarted during the recording ({st.get('receiver_restarts', 0)} "
                f"side-car, {st.get('ffmpeg_restarts', 0)} FFmpeg); what the stream missed came from the Pi"
            )
    return notes
