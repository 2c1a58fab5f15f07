"""Validation of names that end up in paths and on the wire: subject/project IDs, session IDs,
camera names. One place, so the desktop, the CLI and the agents refuse the same things."""

from __future__ import annotations

import re

# Letters, digits, '.', '_' and '-' only: no separators, no control characters, no spaces, and a
# leading alphanumeric so a name can never be '.', '..' or look like a command-line option.
_SUBJECT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SESSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_CAMERA_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")


class InvalidName(ValueError):
    """A user-supplied name that cannot be used safely; the message says why."""


def _check(kind: str, value: object, pattern: re.Pattern[str], max_len: int) -> str:
    if not isinstance(value, str):
        raise InvalidName(f"{kind} must be text, got {type(value).__name__}")
    if not value:
        raise InvalidName(f"{kind} must not be empty")
    bad = sorted({c for c in value if ord(c) < 32 or ord(c) == 127})
    if bad:
        raise InvalidName(f"{kind} {value!r} contains control characters")
    if "/" in value or "\\" in value:
        raise InvalidName(f"{kind} {value!r} contains a path separator")
    if ".." in value:
        raise InvalidName(f"{kind} {value!r} contains '..'")
    if len(value) > max_len:
        raise InvalidName(f"{kind} {value!r} is longer than {max_len} characters")
    if not pattern.fullmatch(value):
        raise InvalidName(
            f"{kind} {value!r} may only use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit"
        )
    return value


def validate_subject_id(value: object, kind: str = "subject ID") -> str:
    """Animal/subject or project ID: returned unchanged when safe, InvalidName otherwise."""
    return _check(kind, value, _SUBJECT_RE, 64)


def validate_session_id(value: object) -> str:
    return _check("session ID", value, _SESSION_RE, 128)


def validate_camera_name(value: object) -> str:
    return _check("camera name", value, _CAMERA_RE, 32)


SUBJECT_PATTERN = _SUBJECT_RE.pattern
SESSION_PATTERN = _SESSION_RE.pattern
CAMERA_PATTERN = _CAMERA_RE.pattern
