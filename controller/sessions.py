"""Session directories on the desktop: one per recording, never reused, never overwritten."""

from __future__ import annotations

import errno
from datetime import datetime, timezone
from pathlib import Path

from syncrig_agent.ids import validate_session_id, validate_subject_id

SESSION_SUBDIRS = ("raw",)


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def create_session_dir(
    root: Path | str, subject: str | None = None, project: str | None = None, now: datetime | None = None
) -> tuple[str, Path]:
    """Make a new, empty session directory; returns (session id, path).

    The id is the UTC start time plus the subject, so it sorts and reads well; `mkdir` (atomic,
    fails if the name exists) decides uniqueness, with a numeric suffix on collision — an
    existing session is never reused, not even by two recordings started in the same second.
    """
    if subject is not None:
        validate_subject_id(subject, "subject ID")
    if project is not None:
        validate_subject_id(project, "project ID")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    base = "_".join(p for p in (stamp, project, subject) if p)
    for attempt in range(1, 1000):
        session_id = validate_session_id(base if attempt == 1 else f"{base}-{attempt}")
        path = root / session_id
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise OSError(exc.errno, f"no space left to create a session in {root}") from None
            raise
        for sub in SESSION_SUBDIRS:
            (path / sub).mkdir()
        return session_id, path
    raise FileExistsError(f"could not find a free session name for {base!r} in {root}")


def remove_unused_session_dir(path: Path) -> None:
    """Undo `create_session_dir` when nothing was recorded; rmdir fails on anything non-empty,
    so a directory holding even one file is never removed."""
    for sub in SESSION_SUBDIRS:
        (path / sub).rmdir()
    path.rmdir()
