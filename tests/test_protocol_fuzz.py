"""Fuzzing the protocol's readers with hypothesis: whatever bytes arrive, a Connection's reader never
crashes and ends the link promptly, and the acceptor's handshake refuses garbage in time."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncrig_agent.contract.protocol import (
    AuthenticationFailed,
    Connection,
    ProtocolError,
    accept_handshake,
)

from protocol_support import FUZZ_EXAMPLES, SECRET, frame

# ---------------------------------------------------------------------------- fuzzing

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
_json = st.recursive(
    _json_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=6), kids, max_size=4),
    max_leaves=12,
)
_message_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["ping", "reply", "error", "status", "start", "hello", ""]) | _json},
    optional={"id": st.integers(-2, 5) | _json, "re": st.integers(-2, 5) | _json, "ok": _json},
).map(lambda d: json.dumps(d, allow_nan=True).encode())
_bodies = st.binary(max_size=200) | _message_like | _json.map(lambda v: json.dumps(v).encode())
_frames = st.lists(_bodies, max_size=5).map(lambda bodies: b"".join(frame(b) for b in bodies))
FUZZ_INPUT = st.one_of(
    st.binary(max_size=2048),
    _frames,
    st.tuples(_frames, st.binary(max_size=64)).map(lambda t: t[0] + t[1]),
)


class _CrashRecorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.crashes: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "reader thread" in record.getMessage():
            self.crashes.append(record.getMessage())


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=FUZZ_INPUT)
def test_fuzz_connection_reader(data: bytes) -> None:
    uncaught: list[Any] = []
    recorder = _CrashRecorder()
    logger = logging.getLogger("syncrig_agent.contract.protocol.connection")
    logger.addHandler(recorder)
    old_hook = threading.excepthook
    threading.excepthook = uncaught.append
    a, b = socket.socketpair()
    try:
        conn = Connection(a, "fuzz", on_request=lambda c, m: {"seen": True})
        conn.start()
        b.sendall(data)
        b.shutdown(socket.SHUT_WR)
        # Whatever arrived, EOF follows, so the reader must end the connection promptly.
        assert conn.wait_closed(2.0)
        assert conn._reader is not None
        conn._reader.join(2.0)
        assert not conn._reader.is_alive()
        assert not conn.close_reason.startswith("internal")
    finally:
        threading.excepthook = old_hook
        logger.removeHandler(recorder)
        b.close()
        a.close()
    assert uncaught == []
    assert recorder.crashes == []


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=FUZZ_INPUT)
def test_fuzz_acceptor_handshake_rejects_garbage(data: bytes) -> None:
    a, b = socket.socketpair()
    try:
        b.sendall(data)
        b.shutdown(socket.SHUT_WR)
        t0 = time.monotonic()
        with pytest.raises(AuthenticationFailed) as info:
            accept_handshake(a, SECRET, timeout=1.0)
        assert isinstance(info.value, ProtocolError)
        assert time.monotonic() - t0 < 1.5
    finally:
        a.close()
        b.close()
