"""The UI's camera cards (`/api/status` `cameras`, drawn by static/pages/record.js): one per
configured camera, from cam0's last STATUS."""

from __future__ import annotations

from controller.rig.cameras import CameraInfo
from syncrig_agent.contract.drops import total_drops
from syncrig_agent.contract.protocol.replies import RigStatus


def camera_card(cam: CameraInfo, status: RigStatus | None, fps: float, streams: dict | None) -> dict:
    """`fps`: the camera's measured frame rate (shown while it records); `streams`: the live
    receivers' status per camera while a recording streams (None otherwise: no "stream" key)."""
    card = _card(cam, status, fps)
    if streams is not None:
        card["stream"] = streams.get(cam.name)
    return card


def _card(cam: CameraInfo, status: RigStatus | None, fps: float) -> dict:
    card: dict = {"name": cam.name, "role": cam.role, "host": cam.host, "online": False}
    if status is None:
        return card
    entry = status.camera_links().get(cam.name)
    if entry is None or not entry.connected or entry.status is None:
        card["error"] = (entry.close_reason if entry is not None else None) or "not connected to cam0"
        return card
    st = entry.status
    session = st.session
    stats = session.stats if session is not None else None
    health = st.health or {}
    disk = health.get("disk") or {}
    card.update(
        online=True,
        state=st.state,
        session_id=session.session_id if session is not None else None,
        frames=session.frames if session is not None else None,
        # Every slot of the recording without a written frame so far, whatever its cause.
        dropped=total_drops(stats) if stats else None,
        fps=round(fps, 2) if st.state == "recording" else None,
        disk_free_bytes=disk.get("free_bytes"),
        disk_total_bytes=disk.get("total_bytes"),
        temperature_c=health.get("temperature_c"),
        throttled=health.get("throttled"),
        clock={
            **(st.clock or {}),
            "offset_to_cam0_ns": entry.clock_offset_ns,
            "rtt_ns": entry.rtt_ns,
            "reference": cam.name == status.reference,
        },
        clock_sync=st.clock_sync,  # what disciplines this camera's clock, as it reports
        phase_lock=st.phase_lock,  # free-running sensors: the servo's lock onto the grid
        preview=st.preview,
        ttl=st.ttl,  # the TTL lines it drives and reads, and each input's edges so far
        error=session.error if session is not None else None,
        status_age_s=entry.status_age_s,
    )
    return card
