"""Session directories on the desktop: one per recording, never reused, never overwritten."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from syncrig_agent.contract.ids import validate_session_id, validate_subject_id
from syncrig_agent.contract.layout import SessionLayout

# Subject and project IDs are optional (a test recording, a calibration take), but a session
# without them is found only by its start time: every way of starting a recording says so.
ID_WARNINGS = {
    "subject": "no subject ID: the session is recorded without one and listed by its start time only",
    "project": "no project ID: the session is recorded without one and belongs to no project",
}


def missing_id_warnings(subject: str | None, project: str | None) -> list[str]:
    """What the UI, the API (`warnings`) and `syncrig record` say when an ID is left empty."""
    given = {"subject": subject, "project": project}
    return [text for name, text in ID_WARNINGS.items() if not given[name]]


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


COUNTER_FILE = ".syncrig-session-counter"  # the last number issued (the first seed's dotfile)
ISSUED_LOG = ".syncrig-sessions-issued"  # every id ever issued here, one per line, append-only
LOCK_FILE = ".syncrig-sessions.lock"
_NUMBER_RE = re.compile(r"\d{8}-\d{6}-(\d{4,})(?:_|$)")


@contextlib.contextmanager
def _locked(root: Path):
    """Serialise id allocation between threads and processes (two controllers on one root)."""
    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _highest_issued(root: Path) -> int:
    """The highest session number ever issued in `root`, from every record there is: the counter,
    the issued log and the directories themselves — so losing one of them cannot cause reuse."""
    numbers = [0]
    with contextlib.suppress(OSError, ValueError):
        numbers.append(int((root / COUNTER_FILE).read_text().strip() or 0))
    try:
        for line in (root / ISSUED_LOG).read_text().splitlines():
            if m := _NUMBER_RE.match(line.strip()):
                numbers.append(int(m.group(1)))
    except OSError:
        pass
    for entry in root.iterdir():
        if m := _NUMBER_RE.match(entry.name):
            numbers.append(int(m.group(1)))
    return max(numbers)


def _record_issued(root: Path, number: int, session_id: str) -> None:
    with open(root / ISSUED_LOG, "a", encoding="utf-8") as fh:
        fh.write(session_id + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp = root / f".{COUNTER_FILE}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(f"{number}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / COUNTER_FILE)


def create_session_dir(
    root: Path | str, subject: str | None = None, project: str | None = None, now: datetime | None = None
) -> tuple[str, Path]:
    """Make a new, empty session directory; returns (session id, path).

    The id is the UTC start time, a session number and the project/subject, so it sorts and reads
    well. The number comes from a counter kept in the sessions root (under a lock, fsynced before
    the directory exists), and is also above every number in the issued log and in the existing
    directory names: an id is never issued twice, not across controller restarts, not after a
    session was deleted, not by two controllers at once. `mkdir` (fails if the name exists) is
    the last guard: an existing session is never reused.
    """
    if subject is not None:
        validate_subject_id(subject, "subject ID")
    if project is not None:
        validate_subject_id(project, "project ID")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    with _locked(root):
        number = _highest_issued(root)
        for _attempt in range(1000):
            number += 1
            session_id = validate_session_id(
                "_".join(p for p in (f"{stamp}-{number:04d}", project, subject) if p)
            )
            path = root / session_id
            _record_issued(root, number, session_id)
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise OSError(exc.errno, f"no space left to create a session in {root}") from None
                raise
            SessionLayout(path).raw.path.mkdir()  # what a recording or an import writes first
            return session_id, path
    raise FileExistsError(f"could not find a free session name in {root}")


def remove_unused_session_dir(path: Path) -> None:
    """Undo `create_session_dir` when nothing was recorded; rmdir fails on anything non-empty,
    so a directory holding even one file is never removed."""
    SessionLayout(path).raw.path.rmdir()
    path.rmdir()
