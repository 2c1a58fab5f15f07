"""The wire format of syncrig_agent.contract.protocol: framing and decoding limits over real sockets,
and the validation of every request kind."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import pytest

from syncrig_agent.contract.protocol import (
    MAX_MESSAGE_BYTES,
    ConnectionClosed,
    MalformedMessage,
    MessageTooLarge,
    RequestError,
    TruncatedMessage,
    decode_body,
    encode_message,
    read_message,
    validate_request,
    write_message,
)

from protocol_support import frame

# ---------------------------------------------------------------------------- framing


def test_round_trip_non_ascii(sockpair: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockpair
    msg = {"type": "hello", "name": "cam1", "note": "Grüße, 東京 🎥", "n": [1, 2.5, None, True]}
    write_message(a, msg)
    write_message(a, {"type": "status", "id": 2})
    assert read_message(b) == msg
    assert read_message(b) == {"type": "status", "id": 2}
    data = encode_message(msg)
    assert struct.unpack("!I", data[:4])[0] == len(data) - 4
    assert "東京".encode() in data  # ensure_ascii=False: UTF-8 on the wire, not \u escapes
    assert b'"hello","name"' in data and b"[1,2.5,null,true]" in data  # compact separators


def test_clean_eof_is_connection_closed(sockpair: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockpair
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionClosed) as info:
        read_message(b)
    assert info.value.code == "closed"


def test_truncated_header(sockpair: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockpair
    a.sendall(b"\x00\x00")
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(TruncatedMessage) as info:
        read_message(b)
    assert info.value.code == "truncated"


def test_truncated_body(sockpair: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockpair
    a.sendall(frame(b'{"type":"status"}')[:-3])
    a.shutdown(socket.SHUT_WR)
    with pytest.raises(TruncatedMessage):
        read_message(b)


def test_oversized_length_fails_fast_without_reading(sockpair: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockpair
    # Claims 2 GiB; no body follows and the sender keeps the socket open, so any attempt to
    # read (or wait for) the body would block until the 5 s socket timeout.
    a.sendall(struct.pack("!I", 2 << 30))
    t0 = time.monotonic()
    with pytest.raises(MessageTooLarge) as info:
        read_message(b)
    assert time.monotonic() - t0 < 0.5
    assert info.value.code == "too_large"
    a.sendall(struct.pack("!I", MAX_MESSAGE_BYTES + 1))
    with pytest.raises(MessageTooLarge):
        read_message(b)


def test_encode_too_large() -> None:
    with pytest.raises(MessageTooLarge):
        encode_message({"type": "x", "blob": "a" * MAX_MESSAGE_BYTES})


def test_encode_rejects_nan_and_missing_type() -> None:
    with pytest.raises(ValueError):
        encode_message({"type": "x", "v": float("nan")})
    with pytest.raises(ValueError):
        encode_message({"id": 1})


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"not json at all", "bad_json"),
        (b"", "bad_json"),
        (b'[{"type":"ping"}]', "not_object"),
        (b'"ping"', "not_object"),
        (b'{"id":1}', "missing_type"),
        (b'{"type":""}', "missing_type"),
        (b'{"type":7}', "missing_type"),
        (b'{"type":"ping","x":"\xff\xfe"}', "bad_json"),  # invalid UTF-8
        (b'{"type":"ping","x":NaN}', "bad_json"),
        (b'{"type":"ping","x":-Infinity}', "bad_json"),
        (b'{"type":"ping","x":1e999}', "bad_json"),
        (b'{"type":"ping","x":' + b"9" * 5000 + b"}", "bad_json"),  # beyond int digit limit
        (b"[" * 200_000, "bad_json"),  # nesting bomb
        (b'{"type":"x","a":' + b"[" * 40 + b"]" * 40 + b"}", "bad_json"),
    ],
)
def test_decode_rejects(body: bytes, code: str) -> None:
    t0 = time.monotonic()
    with pytest.raises(MalformedMessage) as info:
        decode_body(body)
    assert info.value.code == code
    assert time.monotonic() - t0 < 1.0


def test_decode_accepts_moderate_nesting_and_brackets_in_strings() -> None:
    body = b'{"type":"x","a":' + b"[" * 20 + b"]" * 20 + b',"s":"' + b"[" * 100 + b'"}'
    assert decode_body(body)["type"] == "x"


def test_malformed_over_socket_keeps_framing(sockpair: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockpair
    a.sendall(frame(b"garbage") + frame(b"[1,2]") + frame(b'{"type":"status","id":3}'))
    with pytest.raises(MalformedMessage):
        read_message(b)
    with pytest.raises(MalformedMessage) as info:
        read_message(b)
    assert info.value.code == "not_object"
    assert read_message(b) == {"type": "status", "id": 3}


# ---------------------------------------------------------------------------- messages


GOOD_START = {
    "type": "start",
    "id": 1,
    "session_id": "2024-05-01_take.3",
    "period_ns": 33_333_333,
    "files": {"cam0": "cam0", "cam-1": "left_1"},
}


@pytest.mark.parametrize(
    "msg",
    [
        {"type": "hello", "name": "cam1", "role": "client", "version": 1},
        {"type": "hello", "name": "desk-1", "role": "controller", "version": 1, "state": {"x": 1}},
        GOOD_START,
        {**GOOD_START, "t0_ns": 0, "stop_ns": 10, "fps": 29.97},
        {**GOOD_START, "period_ns": 1_000_000},
        {**GOOD_START, "period_ns": 10_000_000_000},
        {"type": "stop"},
        {"type": "stop", "at_ns": 0},
        {"type": "status"},
        {"type": "ping"},
    ],
)
def test_validate_accepts(msg: dict[str, Any]) -> None:
    validate_request(msg)


@pytest.mark.parametrize(
    ("msg", "field"),
    [
        ({"type": "hello", "role": "client", "version": 1}, "name"),
        ({"type": "hello", "name": "-cam", "role": "client", "version": 1}, "name"),
        ({"type": "hello", "name": "a" * 33, "role": "client", "version": 1}, "name"),
        ({"type": "hello", "name": "cam/1", "role": "client", "version": 1}, "name"),
        ({"type": "hello", "name": "cam1", "role": "server", "version": 1}, "role"),
        ({"type": "hello", "name": "cam1", "role": "client", "version": True}, "version"),
        ({"type": "hello", "name": "cam1", "role": "client", "version": "1"}, "version"),
        ({"type": "hello", "name": "cam1", "role": "client", "version": 1, "state": []}, "state"),
        ({**GOOD_START, "session_id": "a..b"}, "session_id"),
        ({**GOOD_START, "session_id": "../etc"}, "session_id"),
        ({**GOOD_START, "session_id": ".hidden"}, "session_id"),
        ({**GOOD_START, "session_id": "a/b"}, "session_id"),
        ({**GOOD_START, "period_ns": 999_999}, "period_ns"),
        ({**GOOD_START, "period_ns": 10_000_000_001}, "period_ns"),
        ({**GOOD_START, "period_ns": True}, "period_ns"),
        ({**GOOD_START, "period_ns": 33_333_333.0}, "period_ns"),
        ({**GOOD_START, "t0_ns": -1}, "t0_ns"),
        ({**GOOD_START, "files": {"cam0": "../x"}}, "files"),
        ({**GOOD_START, "files": {"cam0": "x.mp4"}}, "files"),
        ({**GOOD_START, "files": ["cam0"]}, "files"),
        ({**GOOD_START, "fps": 0}, "fps"),
        ({**GOOD_START, "fps": True}, "fps"),
        ({**GOOD_START, "stop_ns": "soon"}, "stop_ns"),
        ({**GOOD_START, "t0_ns": 100, "stop_ns": 100}, "stop_ns"),
        ({k: v for k, v in GOOD_START.items() if k != "files"}, "files"),
        ({"type": "stop", "at_ns": -5}, "at_ns"),
        ({"type": "stop", "at_ns": False}, "at_ns"),
    ],
)
def test_validate_rejects_bad_field(msg: dict[str, Any], field: str) -> None:
    with pytest.raises(RequestError) as info:
        validate_request(msg)
    assert info.value.code == "bad_field"
    assert repr(field) in info.value.message


@pytest.mark.parametrize("mtype", ["frobnicate", "reply", "auth", "challenge", "error", 5, None])
def test_validate_unknown_command(mtype: Any) -> None:
    with pytest.raises(RequestError) as info:
        validate_request({"type": mtype})
    assert info.value.code == "unknown_command"


def test_validate_from_server_requires_t0() -> None:
    validate_request(GOOD_START)
    with pytest.raises(RequestError, match="t0_ns"):
        validate_request(GOOD_START, from_server=True)
    validate_request({**GOOD_START, "t0_ns": 123}, from_server=True)
