"""Is this session synced, and which cameras does it have? Asked by every stage that reads the
synced outputs (board detection, calibration, pose, triangulation); answered here once, from the
header of `synced/match.csv` (pipeline.matching's reader)."""

from __future__ import annotations

from pathlib import Path

from controller.pipeline.matching import read_match_header
from syncrig_agent.contract.ids import InvalidName, validate_camera_name
from syncrig_agent.contract.layout import SessionLayout


class NotSynced(ValueError):
    """The session has no readable match table; the message says what is missing and what to run."""


def synced_cameras(session: Path | str) -> list[str]:
    """The cameras of the session's match table, in its column order. Raises NotSynced when the
    session was never synced (or its match table is unreadable or names a bad camera)."""
    match = SessionLayout(session).synced.match_csv
    if not match.is_file():
        raise NotSynced(f"{session} is not synced yet (no {match}): run `syncrig sync {session}` first")
    try:
        cameras = read_match_header(match)
    except (OSError, ValueError) as exc:
        raise NotSynced(f"cannot read {match}: {exc}; run `syncrig sync {session}` again") from None
    for camera in cameras:
        try:
            validate_camera_name(camera)
        except InvalidName as exc:
            raise NotSynced(f"{match}: bad camera name: {exc}") from None
    return cameras
