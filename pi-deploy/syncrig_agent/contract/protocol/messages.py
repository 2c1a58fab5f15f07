"""The command vocabulary and its validation, shared by server, clients and controller.

Validation is table-driven: each request type maps to field specs (a predicate plus a human
description), so adding a field is one line and every error names the offending field.
Unknown extra fields are ignored, so a newer peer can add optional fields without breaking an
older one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from syncrig_agent.contract.ids import CAMERA_PATTERN, SESSION_PATTERN
from syncrig_agent.contract.protocol.errors import RequestError

__all__ = [
    "AUTH",
    "AUTH_OK",
    "CHALLENGE",
    "ERROR",
    "HELLO",
    "LOGS",
    "CLOCK_CHECK",
    "MAX_PERIOD_NS",
    "MIN_PERIOD_NS",
    "NAME_RE",
    "PING",
    "PROTOCOL_VERSION",
    "REPLY",
    "REQUEST_TYPES",
    "ROLES",
    "SCHEMAS",
    "SESSION_ID_RE",
    "START",
    "STATUS",
    "STOP",
    "FieldSpec",
    "validate_request",
]

MAX_LOG_LINES = 2000  # the most log lines one `logs` request may ask for (the ring keeps as many)
PROTOCOL_VERSION = 1

# Requests
PING = "ping"
HELLO = "hello"
START = "start"
STOP = "stop"
STATUS = "status"
LOGS = "logs"
CLOCK_CHECK = "clock_check"
# Envelope / handshake messages (never requests)
REPLY = "reply"
ERROR = "error"
CHALLENGE = "challenge"
AUTH = "auth"
AUTH_OK = "auth_ok"

REQUEST_TYPES = frozenset({PING, HELLO, START, STOP, STATUS, LOGS, CLOCK_CHECK})

ROLES = frozenset({"client", "controller"})
# Camera names double as file-name stems and directory names on every Pi, so they are
# restricted to characters that are safe everywhere and cannot express a path.
NAME_RE = re.compile(CAMERA_PATTERN)
# Session ids become directory names; dots are allowed (dates), '..' is refused below.
SESSION_ID_RE = re.compile(SESSION_PATTERN)
MIN_PERIOD_NS = 1_000_000  # 1000 fps
MAX_PERIOD_NS = 10_000_000_000  # one frame per 10 s


@dataclass(frozen=True)
class FieldSpec:
    """``check(value)`` says whether a present value is acceptable; ``expect`` is for the error."""

    check: Callable[[Any], bool]
    expect: str
    required: bool = True


def _is_int(value: Any) -> bool:
    # bool is a subclass of int; "period_ns": true must not pass as 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _int_range(lo: int | None = None, hi: int | None = None) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        return _is_int(value) and (lo is None or value >= lo) and (hi is None or value <= hi)

    return check


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and NAME_RE.fullmatch(value) is not None


def _is_session_id(value: Any) -> bool:
    return isinstance(value, str) and SESSION_ID_RE.fullmatch(value) is not None and ".." not in value


def _is_files(value: Any) -> bool:
    return isinstance(value, dict) and all(_is_name(k) and _is_name(v) for k, v in value.items())


# A stream destination: host name / IPv4 / bracketed IPv6 literal, then a port.
_STREAM_DEST_RE = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9.-]{0,252}|\[[0-9A-Fa-f:]{2,39}\]):[0-9]{1,5}")


def _is_stream_dest(value: Any) -> bool:
    return (
        isinstance(value, str)
        and _STREAM_DEST_RE.fullmatch(value) is not None
        and 1 <= int(value.rsplit(":", 1)[1]) <= 65535
    )


def _is_streams(value: Any) -> bool:
    return isinstance(value, dict) and all(_is_name(k) and _is_stream_dest(v) for k, v in value.items())


def _is_positive_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def _is_role(value: Any) -> bool:
    return isinstance(value, str) and value in ROLES


def _is_dict(value: Any) -> bool:
    return isinstance(value, dict)


_NAME_DESC = "a name of 1-32 letters, digits, '_' or '-' starting with a letter or digit"

SCHEMAS: Mapping[str, Mapping[str, FieldSpec]] = {
    HELLO: {
        "name": FieldSpec(_is_name, _NAME_DESC),
        "role": FieldSpec(_is_role, f"one of {sorted(ROLES)}"),
        "version": FieldSpec(_int_range(), "an integer"),
        "state": FieldSpec(_is_dict, "an object", required=False),
    },
    START: {
        "session_id": FieldSpec(
            _is_session_id,
            "1-128 letters, digits, '.', '_' or '-' starting with a letter or digit, without '..'",
        ),
        "period_ns": FieldSpec(
            _int_range(MIN_PERIOD_NS, MAX_PERIOD_NS), f"an integer in [{MIN_PERIOD_NS}, {MAX_PERIOD_NS}]"
        ),
        # The controller may leave t0 to the server, which picks one and always sends it on
        # to the clients (validate_request(..., from_server=True) requires it).
        "t0_ns": FieldSpec(_int_range(0), "an integer >= 0", required=False),
        "files": FieldSpec(_is_files, f"an object mapping camera names to file stems ({_NAME_DESC})"),
        "stop_ns": FieldSpec(_int_range(0), "an integer >= 0", required=False),
        "fps": FieldSpec(_is_positive_number, "a finite number > 0", required=False),
        # Controller → server: record exactly this many grid slots (the server turns it into stop_ns).
        "frames": FieldSpec(_int_range(1, 10**9), "an integer in [1, 1000000000]", required=False),
        # Live stream destinations: camera name -> "HOST:PORT" of that camera's desktop receiver.
        # Cameras not named here record locally only.
        "streams": FieldSpec(
            _is_streams, 'an object mapping camera names to "HOST:PORT" receiver addresses', required=False
        ),
    },
    STOP: {
        "at_ns": FieldSpec(_int_range(0), "an integer >= 0", required=False),
    },
    STATUS: {},
    PING: {},
    # An agent's recent log lines; `camera` (default: the camera asked) lets cam0 forward to a client.
    LOGS: {
        "camera": FieldSpec(_is_name, _NAME_DESC, required=False),
        "lines": FieldSpec(
            _int_range(1, MAX_LOG_LINES), f"an integer in [1, {MAX_LOG_LINES}]", required=False
        ),
    },
    # Pre-flight: cam0 measures every client's clock against its own with a burst of pings.
    CLOCK_CHECK: {
        "samples": FieldSpec(_int_range(1, 64), "an integer in [1, 64]", required=False),
    },
}

# Fields that are optional in general but mandatory once the server forwards the command.
_REQUIRED_FROM_SERVER: Mapping[str, frozenset[str]] = {START: frozenset({"t0_ns"})}


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_request(msg: dict[str, Any], *, from_server: bool = False) -> None:
    """Check a request against its schema.

    Raises RequestError("unknown_command", ...) for a type that is not a request and
    RequestError("bad_field", ...) naming the first missing or ill-typed field. Pass
    ``from_server=True`` on a client validating a command fanned out by the server, where
    fields the server fills in (start's t0_ns) are required.
    """
    if not isinstance(msg, dict):
        raise RequestError("bad_field", "a request must be a JSON object")
    mtype = msg.get("type")
    schema = SCHEMAS.get(mtype) if isinstance(mtype, str) else None
    if schema is None:
        raise RequestError("unknown_command", f"unknown command {_show(mtype)}")
    must_have = _REQUIRED_FROM_SERVER.get(mtype, frozenset()) if from_server else frozenset()
    for name, spec in schema.items():
        if name not in msg:
            if spec.required or name in must_have:
                raise RequestError("bad_field", f"{mtype}: missing field {name!r} (expected {spec.expect})")
            continue
        value = msg[name]
        if not spec.check(value):
            raise RequestError(
                "bad_field", f"{mtype}: field {name!r} must be {spec.expect}, got {_show(value)}"
            )
    # Cross-field rule the per-field table cannot express.
    if mtype == START and "stop_ns" in msg and "t0_ns" in msg and msg["stop_ns"] <= msg["t0_ns"]:
        raise RequestError("bad_field", "start: field 'stop_ns' must be later than t0_ns")
