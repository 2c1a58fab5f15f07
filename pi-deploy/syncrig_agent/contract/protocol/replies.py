"""The replies to START, STOP and STATUS, and the STATUS structure, as types both sides share.

`messages.py` checks requests; this module is its counterpart for what comes back. Each type's
`to_dict()` is exactly the JSON an agent sends (field order included), and `from_dict()` reads a
received one, raising `InvalidReply` that names the first missing or ill-typed field by its path
(``status.clients.cam1.status.state``). As with requests, unknown fields are ignored, so a newer
peer can add one without breaking an older reader, and fields with a default may be missing.

Who sends what:
- cam0 → controller: `StatusReply` (a `RigStatus`), `StartReply`, `StopReply`.
- a client → cam0: its STATUS (a `CameraStatus` under "status"), `ArmReply` to START and one
  `CameraStopResult` to STOP; cam0 relays them inside its own replies.

Every type is also a read-only Mapping of its JSON, so a script or test that indexes a reply as
it did before these types existed (``link.status()["clients"]``) keeps working; code reads the
attributes.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, TypeVar

__all__ = [
    "ArmReply",
    "CameraArmed",
    "CameraSessionStatus",
    "CameraStatus",
    "CameraStopResult",
    "ClientLink",
    "InvalidReply",
    "RecordingSession",
    "RigStatus",
    "StartReply",
    "StatusReply",
    "StopReply",
    "WireRecord",
]

R = TypeVar("R", bound="WireRecord")


class InvalidReply(ValueError):
    """A reply (or STATUS) that does not have the shape of its type; the message names the field."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class WireRecord(Mapping[str, Any]):
    """Base of the typed replies: fields in wire order, `to_dict()` / `from_dict()`."""

    def to_dict(self) -> dict[str, Any]:
        return {name: _to_wire(getattr(self, name)) for name, _required, _read in _plan(type(self))}

    @classmethod
    def from_dict(cls: type[R], data: Any, where: str | None = None) -> R:
        """Check `data` against this type; `where` names it in errors (default: the type's name)."""
        where = where or cls.__name__
        if not isinstance(data, Mapping):
            raise InvalidReply(f"{where}: must be an object, got {_show(data)}")
        values = {}
        for name, required, read in _plan(cls):
            if name not in data:
                if required:
                    raise InvalidReply(f"{where}: missing field {name!r}")
                continue
            values[name] = read(data[name], f"{where}.{name}")
        return cls(**values)

    # The read-only Mapping view of the wire JSON.
    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())


def _to_wire(value: Any) -> Any:
    if isinstance(value, WireRecord):
        return value.to_dict()
    if isinstance(value, dict):
        return {k: _to_wire(v) for k, v in value.items()}
    return value


def _is_int(value: Any) -> bool:
    # bool is a subclass of int; "t0_ns": true must not pass as 1.
    return isinstance(value, int) and not isinstance(value, bool)


# A plain type's check and its description for errors. int stays int and float accepts an int
# without converting it, so what was read re-encodes to the same bytes.
_PLAIN: dict[Any, tuple[Callable[[Any], bool], str]] = {
    int: (_is_int, "an integer"),
    float: (lambda v: _is_int(v) or isinstance(v, float), "a number"),
    bool: (lambda v: isinstance(v, bool), "true or false"),
    str: (lambda v: isinstance(v, str), "a string"),
    dict: (lambda v: isinstance(v, dict), "an object"),
}


Reader = Callable[[Any, str], Any]


@functools.cache
def _plan(cls: type) -> tuple[tuple[str, bool, Reader], ...]:
    """Each field in wire order: its name, whether it is required, and its reader. Worked out once
    per type from its annotations, so reading a STATUS costs dict look-ups, not introspection."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, f.default is MISSING and f.default_factory is MISSING, _reader(hints[f.name]))
        for f in fields(cls)
    )


@functools.cache
def _reader(tp: Any) -> Reader:
    """A function (value, path) -> value that checks `value` against the annotation `tp`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in args if a is not type(None)]
        read_inner, optional = _reader(inner), type(None) in args

        def read_union(value: Any, path: str) -> Any:
            return None if value is None and optional else read_inner(value, path)

        return read_union
    if isinstance(tp, type) and issubclass(tp, WireRecord):
        return tp.from_dict
    if origin is list:
        read_item = _reader(args[0])

        def read_list(value: Any, path: str) -> Any:
            if not isinstance(value, list):
                raise InvalidReply(f"{path}: must be a list, got {_show(value)}")
            return [read_item(item, f"{path}[{i}]") for i, item in enumerate(value)]

        return read_list
    if origin is dict:
        read_value = _reader(args[1])

        def read_dict(value: Any, path: str) -> Any:
            if not isinstance(value, dict):
                raise InvalidReply(f"{path}: must be an object, got {_show(value)}")
            return {key: read_value(item, f"{path}.{key}") for key, item in value.items()}

        return read_dict
    if tp is Any:
        return lambda value, _path: value
    check, expect = _PLAIN[tp]

    def read_plain(value: Any, path: str) -> Any:
        if not check(value):
            raise InvalidReply(f"{path}: must be {expect}, got {_show(value)}")
        return value

    return read_plain


# -- STATUS ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CameraSessionStatus(WireRecord):
    """The session a camera records (or last recorded), in its STATUS."""

    session_id: str
    running: bool
    frames: int
    stats: dict  # CaptureStats.summary(): the drop counters of contract.drops, wake error, lock
    error: str | None
    t0_ns: int
    period_ns: int


@dataclass(frozen=True, kw_only=True)
class CameraStatus(WireRecord):
    """One camera agent's STATUS. Only `state` is required: readers treat a missing part as
    not reported (an older agent, a hand-written shape)."""

    name: str | None = None
    role: str | None = None
    state: str  # "idle" | "recording"
    session: CameraSessionStatus | None = None
    clock: dict | None = None  # the camera clock's description
    clock_now_ns: int | None = None  # that clock's reading when the status was made
    clock_sync: dict | None = None  # what disciplines the clock (PTP, chrony, ...) and how well
    backend: dict | None = None
    health: dict | None = None  # disk, temperature, throttling
    preview: dict | None = None
    phase_lock: dict | None = None  # free-running sensors only: the servo's lock onto the grid
    # TTL lines: {"lines": {kind, outputs, inputs}, "inputs": {name: {edges, level, wall_ns, record}}}
    ttl: dict | None = None


@dataclass(frozen=True, kw_only=True)
class ClientLink(WireRecord):
    """cam0's view of one client: its link and the last status it reported."""

    connected: bool
    status: CameraStatus | None = None
    status_age_s: float | None = None
    rtt_ns: int | None = None
    clock_offset_ns: int | None = None  # the client's clock minus cam0's
    close_reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class RecordingSession(WireRecord):
    """The session cam0 started and has not stopped yet."""

    session_id: str
    t0_ns: int
    period_ns: int
    fps: float
    cameras: list[str]
    lead_ns: int
    stop_ns: int | None
    started_at_ns: int


@dataclass(frozen=True, kw_only=True)
class RigStatus(WireRecord):
    """cam0's STATUS: its own camera, every client it has seen, the session in progress."""

    server: CameraStatus
    clients: dict[str, ClientLink]
    session: RecordingSession | None = None

    @property
    def reference(self) -> str:
        """cam0's name: the camera every other clock is measured against."""
        return self.server.name or "cam0"

    def camera_links(self) -> dict[str, ClientLink]:
        """One entry per camera, cam0 first: cam0's own status as a link that is always up, fresh,
        with no offset to itself, then every client's."""
        own = ClientLink(connected=True, status=self.server, status_age_s=0.0, rtt_ns=0, clock_offset_ns=0)
        return {self.reference: own, **self.clients}


@dataclass(frozen=True, kw_only=True)
class StatusReply(WireRecord):
    status: RigStatus


# -- START -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CameraArmed(WireRecord):
    """One camera armed for a session: its capture thread waits for T0."""

    camera: str
    armed_at_ns: int
    arm_duration_ns: int
    late: bool  # armed after T0: the first slots stay empty
    realtime: dict | None
    encoder: str | None


@dataclass(frozen=True, kw_only=True)
class ArmReply(WireRecord):
    """A client's reply to the START cam0 forwards: sent only once it is armed."""

    armed: CameraArmed


@dataclass(frozen=True, kw_only=True)
class StartReply(WireRecord):
    """cam0's reply to START: the grid every camera records on and how each armed."""

    t0_ns: int
    period_ns: int
    lead_ns: int
    stop_ns: int | None  # fixed at START when the controller gave a frame count
    cameras: dict[str, CameraArmed]
    late: list[str]  # cameras that armed after T0


# -- STOP --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CameraStopResult(WireRecord):
    """One camera's answer to STOP: its capture summary, or why it could not be stopped."""

    camera: str
    recording: bool | None = None
    summary: dict | None = None  # the capture summary (also the camera's <cam>.capture.json)
    error: str | None = None  # cam0 could not reach the camera; it stops on its own

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"camera": self.camera, "error": self.error}
        return {"camera": self.camera, "recording": self.recording, "summary": self.summary}


@dataclass(frozen=True, kw_only=True)
class StopReply(WireRecord):
    """cam0's reply to STOP: the stop instant, the session it ended (None if none was running)."""

    stop_ns: int
    session: RecordingSession | None
    cameras: dict[str, CameraStopResult]
