"""Wire framing for the control protocol.

Every message is a 4-byte big-endian unsigned length followed by that many bytes of a UTF-8
JSON object with a non-empty string ``"type"``. A length prefix (rather than newline-delimited
JSON) lets a reader reject an oversized message from its header alone and keeps framing intact
when a body is garbage, so one malformed message costs an error reply, not the connection.
"""

from __future__ import annotations

import json
import math
import re
import socket
import struct
import time
from typing import Any

__all__ = [
    "HEADER",
    "MAX_MESSAGE_BYTES",
    "MAX_NESTING_DEPTH",
    "AuthenticationFailed",
    "ConnectionClosed",
    "MalformedMessage",
    "MessageTooLarge",
    "ProtocolError",
    "TruncatedMessage",
    "decode_body",
    "encode_message",
    "read_message",
    "write_message",
]

# Control messages are small (a start command with a few dozen cameras is a few KiB); 1 MiB is
# generous headroom while keeping what one peer can make another allocate bounded.
MAX_MESSAGE_BYTES = 1 << 20

# Real messages nest two or three levels. Bounding depth keeps hostile input from driving the
# JSON parser (or any code that later walks the message recursively) into deep recursion.
MAX_NESTING_DEPTH = 32

HEADER = struct.Struct("!I")


class ProtocolError(Exception):
    """Base of every protocol failure; ``code`` is the machine-readable reason sent on the wire."""

    code: str = "protocol_error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class MessageTooLarge(ProtocolError):
    """A frame (received header or message being encoded) exceeds MAX_MESSAGE_BYTES."""

    code = "too_large"


class TruncatedMessage(ProtocolError):
    """The peer closed the stream in the middle of a frame."""

    code = "truncated"


class MalformedMessage(ProtocolError):
    """A complete frame whose body is not a valid message; framing is still in sync."""

    code = "bad_json"


class ConnectionClosed(ProtocolError):
    """The peer closed the stream cleanly between frames, or the connection was closed locally."""

    code = "closed"


class AuthenticationFailed(ProtocolError):
    """The shared-secret handshake failed (wrong secret, bad peer, timeout, garbage)."""

    code = "auth_failed"


def encode_message(msg: dict[str, Any]) -> bytes:
    """Serialize ``msg`` into one frame (header + body).

    Raises MessageTooLarge if the body exceeds MAX_MESSAGE_BYTES, TypeError if ``msg`` is not a
    dict or holds non-JSON values, ValueError for NaN/infinity or a missing/empty ``"type"``
    (the peer would reject such a message, so fail on the sending side where the bug is).
    """
    if not isinstance(msg, dict):
        raise TypeError(f"message must be a dict, not {type(msg).__name__}")
    mtype = msg.get("type")
    if not isinstance(mtype, str) or not mtype:
        raise ValueError("message needs a non-empty string 'type'")
    # allow_nan=False: NaN/Infinity are not JSON and our own decoder refuses them.
    text = json.dumps(msg, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    body = text.encode("utf-8")  # lone surrogates raise UnicodeEncodeError (a ValueError)
    if len(body) > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"message body is {len(body)} bytes, limit is {MAX_MESSAGE_BYTES}")
    return HEADER.pack(len(body)) + body


# Tokens that matter for nesting depth: whole JSON strings (so brackets inside them are skipped)
# and the bracket characters themselves. Valid JSON strings never contain a raw newline, but
# DOTALL keeps the scan honest on arbitrary bytes.
_DEPTH_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def _too_deep(body: bytes) -> bool:
    # Cheap gate first: a body with few brackets cannot be deep, so ordinary messages never pay
    # for the scan below.
    if body.count(b"[") + body.count(b"{") <= MAX_NESTING_DEPTH:
        return False
    depth = 0
    for match in _DEPTH_TOKENS.finditer(body):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                return True
        elif token in (b"]", b"}"):
            depth -= 1
    return False


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    # '1e999' parses to inf without going through parse_constant; refuse it the same way.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:32]!r} is out of range")
    return value


def decode_body(body: bytes) -> dict[str, Any]:
    """Parse a frame body into a message dict.

    The body must be UTF-8 JSON encoding an object whose ``"type"`` is a non-empty string.
    Raises MalformedMessage (code "bad_json", "not_object" or "missing_type") and never any
    other exception: the reader treats MalformedMessage as recoverable, so anything else
    escaping from here would turn a bad message into a dead connection.
    """
    try:
        raw = bytes(body)
        if _too_deep(raw):
            raise MalformedMessage(f"JSON nesting deeper than {MAX_NESTING_DEPTH} levels")
        text = raw.decode("utf-8")
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except MalformedMessage:
        raise
    except UnicodeDecodeError as exc:
        raise MalformedMessage(f"body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise MalformedMessage("JSON nesting too deep") from None
    except ValueError as exc:
        # JSONDecodeError, NaN/Infinity, out-of-range floats, integers beyond the digit limit.
        raise MalformedMessage(f"body is not valid JSON: {str(exc)[:200]}") from None
    except Exception as exc:  # noqa: BLE001 - the contract is "only MalformedMessage escapes"
        raise MalformedMessage(f"body could not be parsed: {type(exc).__name__}") from None
    if not isinstance(value, dict):
        raise MalformedMessage(
            f"message must be a JSON object, not {type(value).__name__}", code="not_object"
        )
    mtype = value.get("type")
    if not isinstance(mtype, str) or not mtype:
        raise MalformedMessage("message has no non-empty string 'type'", code="missing_type")
    return value


def _recv_exactly(sock: socket.socket, n: int, deadline: float | None, what: str, *, first: bool) -> bytes:
    """Read exactly ``n`` bytes. EOF before the first byte of a frame is a clean close."""
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out")
            sock.settimeout(remaining)
        count = sock.recv_into(view[got:], n - got)
        if count == 0:
            if first and got == 0:
                raise ConnectionClosed("peer closed the connection")
            raise TruncatedMessage(f"connection closed after {got} of {n} {what} bytes")
        got += count
    return bytes(buf)


def read_message(sock: socket.socket, *, deadline: float | None = None) -> dict[str, Any]:
    """Read exactly one message from ``sock``.

    Raises ConnectionClosed on EOF before any byte, TruncatedMessage on EOF inside a frame,
    MessageTooLarge when the header claims more than MAX_MESSAGE_BYTES (before reading or
    allocating the body), MalformedMessage for a bad body (the stream stays in sync).
    A socket timeout propagates unchanged; note that a timeout in the middle of a frame leaves
    the stream out of sync, so after one the caller should only close the socket.

    ``deadline`` (a time.monotonic() value) bounds the whole read even against a peer that
    trickles bytes; it sets the socket timeout before each recv, so callers using it restore
    the timeout themselves afterwards.
    """
    header = _recv_exactly(sock, HEADER.size, deadline, "header", first=True)
    (length,) = HEADER.unpack(header)
    if length > MAX_MESSAGE_BYTES:
        raise MessageTooLarge(f"peer announced a {length}-byte message, limit is {MAX_MESSAGE_BYTES}")
    body = _recv_exactly(sock, length, deadline, "body", first=False)
    return decode_body(body)


def write_message(sock: socket.socket, msg: dict[str, Any], *, deadline: float | None = None) -> None:
    """Encode ``msg`` and send it whole with sendall (``deadline`` as in read_message)."""
    data = encode_message(msg)
    if deadline is not None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("timed out")
        sock.settimeout(remaining)  # since 3.5 this bounds the whole sendall, not each chunk
    sock.sendall(data)
