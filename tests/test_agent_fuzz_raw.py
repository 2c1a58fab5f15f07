"""Fuzzing a live cam0 below the command layer: a stranger's bytes on the control and fan-out ports
(a bare challenge, then a refusal, never more); an authenticated peer's garbage frames as controller
and as client (wrong types, unknown kinds, huge numbers, deep nesting, path tricks, duplicate ids,
broken framing); any HTTP request to the preview port (a refusal, never a picture). The agent never
crashes or hangs (each case has a timeout, STATUS answers after each), and touches no file.

Runs SYNCRIG_FUZZ_EXAMPLES cases (default 200); the slow long run uses at least 10,000."""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncrig_agent.contract.protocol import (
    MAX_MESSAGE_BYTES,
    ConnectionClosed,
    TruncatedMessage,
    read_message,
)

from protocol_support import FUZZ_EXAMPLES, frame, json_value

# --------------------------------------------------------------------------------------------
# Below the command layer: raw bytes on every port of a live cam0, as a stranger and as an
# authenticated peer. Each case is bounded by a timeout; after each one the agent must still
# answer STATUS; at the end no file under its data dir (nor the secret) may have changed.

HANDSHAKE_TIMEOUT_S = 5.0  # syncrig_agent.contract.protocol.links.HANDSHAKE_TIMEOUT_S
CASE_TIMEOUT_S = HANDSHAKE_TIMEOUT_S + 3.0


def _json_bytes(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


hexes = st.text(alphabet="0123456789abcdef", min_size=0, max_size=140)
handshake_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["auth", "auth_ok", "challenge", "hello", "status", "start", "error", "x"])},
    optional={
        "nonce": st.one_of(hexes, json_value),
        "mac": st.one_of(hexes, json_value),
        "proto": json_value,
        "id": json_value,
        "name": st.one_of(st.sampled_from(["cam0", "cam1", "../x"]), json_value),
        "role": st.one_of(st.sampled_from(["client", "controller", "server"]), json_value),
    },
).map(_json_bytes)
# What a stranger can send: noise, frames of any JSON, handshake look-alikes, lying length prefixes.
stranger_bytes = st.one_of(
    st.binary(max_size=300),
    json_value.map(_json_bytes).map(frame),
    handshake_like.map(frame),
    st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=64)).map(
        lambda t: struct.pack("!I", t[0]) + t[1]
    ),
    st.lists(handshake_like.map(frame), min_size=2, max_size=4).map(b"".join),
    st.just(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
)

# Frames an authenticated peer can send: bodies that are not JSON / not UTF-8 / not objects, deep
# nesting, numbers beyond every limit, unknown kinds, wrong field types, hostile ids and names.
_ids = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([7, 0, -1, 2**63]), json_value, st.just(None))
_bad_session = st.one_of(
    st.sampled_from(["../x", "a/b", "..", "", ".", "x" * 200, "a\x00b", "/etc", "c:\\x", "-rf", "a..b"]),
    json_value.filter(lambda v: not isinstance(v, str)),
)
_bad_name_text = st.one_of(
    st.sampled_from(["../cam0", "cam0/x", "..", "", "c;d", "cam0\n", "x" * 40, "cam0"]), st.text(max_size=12)
)
_bad_name = st.one_of(_bad_name_text, json_value)
_kinds = st.one_of(
    st.sampled_from(["start", "stop", "status", "ping", "hello", "logs", "clock_check", "reply", "error"]),
    st.sampled_from(["challenge", "auth", "auth_ok", "STATUS", "", " ", "stream"]),
    st.text(max_size=12),
)
hostile_message = st.fixed_dictionaries(
    {"type": _kinds, "id": _ids},
    optional={
        "session_id": _bad_session,  # never a valid one: no START of this fuzz can record
        "period_ns": st.one_of(st.integers(-(2**70), 2**70), json_value),
        "files": st.one_of(st.dictionaries(_bad_name_text, _bad_name, max_size=3), json_value),
        "streams": st.one_of(st.dictionaries(_bad_name_text, st.text(max_size=30), max_size=3), json_value),
        "frames": st.one_of(st.integers(-(2**70), 2**70), json_value),
        "at_ns": st.one_of(st.integers(-(2**70), 2**70), json_value),
        "stop_ns": json_value,
        "t0_ns": json_value,
        "camera": _bad_name,
        "lines": st.one_of(st.integers(-(2**70), 2**70), json_value),
        "samples": st.one_of(st.integers(-(2**40), 2**40), json_value),
        "re": _ids,
        "ok": json_value,
        "name": _bad_name,
        "role": json_value,
    },
)
deep = st.integers(20, 3000).flatmap(
    lambda d: st.sampled_from(
        [
            b"[" * d + b"]" * d,
            b'{"a":' * d + b"1" + b"}" * d,
            b'{"type":"status","id":1,"x":' + b"[" * d + b"]" * d + b"}",
        ]
    )
)
huge_number = st.sampled_from(
    [b"1" + b"0" * 5000, b"1e999", b"-1e999", b"NaN", b"Infinity", b"1" * 4400]
).map(lambda n: b'{"type":"start","id":3,"session_id":"x","files":{"cam0":"cam0"},"period_ns":' + n + b"}")
peer_frames = st.lists(
    st.one_of(
        hostile_message.map(_json_bytes).map(frame),
        st.binary(max_size=200).map(frame),
        json_value.map(_json_bytes).map(frame),
        deep.map(frame),
        huge_number.map(frame),
        st.just(frame(b'{"type":"status","id":7}') * 2),  # a duplicate request id
        st.text(max_size=40).map(lambda t: frame(t.encode("utf-8", "surrogatepass"))),
    ),
    min_size=1,
    max_size=4,
).map(b"".join)
# Ends a connection on purpose: a header announcing more than the limit, or a frame cut short.
framing_breakers = st.one_of(
    st.integers(MAX_MESSAGE_BYTES + 1, 2**32 - 1).map(lambda n: struct.pack("!I", n)),
    st.tuples(st.integers(1, 4096), st.binary(max_size=64)).map(
        lambda t: struct.pack("!I", t[0] + len(t[1])) + t[1]
    ),
    st.binary(min_size=1, max_size=3),
)


def snapshot(rig) -> dict[str, str]:
    """Every file of cam0's 'SD card' and the secret → SHA-256 + mode."""
    paths = [rig.secret_file, *sorted(p for p in rig.data_dir("cam0").rglob("*") if p.is_file())]
    return {str(p): f"{hashlib.sha256(p.read_bytes()).hexdigest()} {p.stat().st_mode:o}" for p in paths}


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    """Everything the agent sends until it closes; fails if it neither closes nor goes quiet in time."""
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"agent kept the connection open for {timeout:g} s (hang?)")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def split_frames(data: bytes) -> list[dict]:
    out = []
    while data:
        assert len(data) >= 4, f"a partial header from the agent: {data!r}"
        (n,) = struct.unpack("!I", data[:4])
        assert len(data) >= 4 + n, "a partial frame from the agent"
        out.append(json.loads(data[4 : 4 + n]))
        data = data[4 + n :]
    return out


def assert_alive(rig, link) -> None:
    assert rig.processes["cam0"].poll() is None, f"cam0 died:\n{rig.log_tail('cam0')}"
    assert link.status(timeout=CASE_TIMEOUT_S)["server"]["state"] == "idle"


@pytest.fixture
def fuzz_rig(make_rig):
    rig = make_rig(1, heartbeat_interval_s=0.5, heartbeat_timeout_s=10.0)
    link = rig.link()
    link.connect()
    before = snapshot(rig)
    yield rig, link
    assert_alive(rig, link)
    link.close()
    assert snapshot(rig) == before, "a fuzz case touched a file"


def fuzz_strangers(rig, link, examples: int) -> None:
    ports = [rig.control_port, rig.fanout_port]

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=stranger_bytes, port=st.sampled_from(ports), read_challenge=st.booleans())
    def run(payload: bytes, port: int, read_challenge: bool) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
            got = b""
            if read_challenge:
                got = sock.recv(4096)
            try:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the agent may already have hung up on us
            got += read_until_closed(sock, CASE_TIMEOUT_S)
        frames = split_frames(got)
        # No data leaked: the bare challenge, then at most the refusal.
        assert frames and frames[0]["type"] == "challenge" and set(frames[0]) == {"type", "proto", "nonce"}
        assert all(
            f == {"type": "error", "code": "auth_failed", "error": "authentication failed"}
            for f in frames[1:]
        )
        assert_alive(rig, link)

    run()


def test_strangers_bytes_never_break_the_agent(fuzz_rig) -> None:
    fuzz_strangers(*fuzz_rig, FUZZ_EXAMPLES)


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_strangers_bytes_long_run(fuzz_rig) -> None:
    fuzz_strangers(*fuzz_rig, max(FUZZ_EXAMPLES, 10_000))


class RawPeer:
    """An authenticated peer that writes raw bytes: a controller on the control port or a
    client camera on the fan-out port."""

    def __init__(self, rig, role: str) -> None:
        self.rig = rig
        self.role = role
        self.sock: socket.socket | None = None
        self.count = 0
        self.reconnects = 0

    def connect(self) -> socket.socket:
        from syncrig_agent.contract.protocol.links import connect_peer

        self.count += 1
        port = self.rig.control_port if self.role == "controller" else self.rig.fanout_port
        # Client names rotate: the server may not have noticed the last connection close yet, and
        # it keeps a record per name (a name per connection would grow its STATUS without end).
        name = "fuzz" if self.role == "controller" else f"fuzz{self.count % 8}"
        self.sock, _welcome = connect_peer(
            ("127.0.0.1", port), self.rig.secret, {"name": name, "role": self.role}
        )
        return self.sock

    def status_roundtrip(self, rid: int) -> bool:
        """Ask STATUS with id `rid`; True when its reply came (other messages skipped), False if closed."""
        assert self.sock is not None
        try:
            self.sock.settimeout(CASE_TIMEOUT_S)
            self.sock.sendall(frame(json.dumps({"type": "status", "id": rid}).encode()))
            deadline = time.monotonic() + CASE_TIMEOUT_S
            while time.monotonic() < deadline:
                msg = read_message(self.sock, deadline=deadline)
                if msg.get("type") == "ping" and isinstance(msg.get("id"), int):
                    pong = {"type": "reply", "re": msg["id"], "ok": True, "t_recv_ns": 0, "t_send_ns": 0}
                    self.sock.sendall(frame(json.dumps(pong).encode()))
                if msg.get("type") == "reply" and msg.get("re") == rid:
                    assert msg["ok"] is True and "status" in msg, msg
                    return True
            raise AssertionError(f"no STATUS reply within {CASE_TIMEOUT_S} s")
        except (ConnectionClosed, TruncatedMessage, ConnectionResetError, BrokenPipeError):
            return False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def fuzz_peer(rig, link, role: str, examples: int) -> None:
    peer = RawPeer(rig, role)
    peer.connect()
    rids = iter(range(10**9, 2 * 10**9))

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payload=st.one_of(peer_frames, peer_frames, peer_frames, framing_breakers))
    def run(payload: bytes) -> None:
        assert peer.sock is not None
        if _breaks_framing(payload):
            # The link cannot survive this (what follows would be read as the rest of the frame):
            # send it, hang up, and the agent must drop the link and take a new one.
            with contextlib.suppress(OSError):
                peer.sock.sendall(payload)
                peer.sock.shutdown(socket.SHUT_WR)
            read_until_closed(peer.sock, CASE_TIMEOUT_S)
            peer.close()
            peer.reconnects += 1
            peer.connect()
        else:
            peer.sock.sendall(payload)
        # A well-framed payload never costs the connection: STATUS answers on the same link.
        assert peer.status_roundtrip(next(rids)), f"the agent closed the link after {payload[:300]!r}"
        assert_alive(rig, link)

    try:
        run()
    finally:
        peer.close()


def _breaks_framing(payload: bytes) -> bool:
    """Whether `payload` holds an oversized header or ends inside a frame."""
    while payload:
        if len(payload) < 4:
            return True
        (n,) = struct.unpack("!I", payload[:4])
        if n > MAX_MESSAGE_BYTES or len(payload) < 4 + n:
            return True
        payload = payload[4 + n :]
    return False


@pytest.mark.parametrize("role", ["controller", "client"])
def test_authenticated_garbage_never_breaks_the_agent(fuzz_rig, role: str) -> None:
    fuzz_peer(*fuzz_rig, role, FUZZ_EXAMPLES)


@pytest.mark.slow
@pytest.mark.timeout(7200)
@pytest.mark.parametrize("role", ["controller", "client"])
def test_authenticated_garbage_long_run(fuzz_rig, role: str) -> None:
    fuzz_peer(*fuzz_rig, role, max(FUZZ_EXAMPLES, 10_000))


# The preview port: any request a stranger can make gets a refusal (never a picture).
_http_token = st.one_of(st.text(max_size=70), st.just("0" * 64), hexes)
http_request = st.one_of(
    st.builds(
        lambda method, path, query, headers, version: (
            f"{method} {path}{query} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        ).encode("utf-8", "surrogatepass"),
        st.sampled_from(
            ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "get", "BREW"]
        ),
        st.one_of(
            st.sampled_from(["/stream.mjpg", "/snapshot.jpg", "/", "*", "//stream.mjpg", "/../stream.mjpg"]),
            st.text(max_size=60).map(lambda t: "/" + t.replace(" ", "").replace("\r", "").replace("\n", "")),
        ),
        st.one_of(
            st.just(""),
            st.builds(
                lambda e, t: f"?expires={e}&token={t}",
                st.one_of(st.integers(-5, 2**70).map(str), st.text(max_size=14)),
                _http_token,
            ).map(lambda q: q.replace(" ", "").replace("\r", "").replace("\n", "")),
            st.just("?expires=1&expires=2&token=" + "0" * 64),
            st.just("?" + "&".join(f"k{i}=v" for i in range(50))),
        ),
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["Host", "Content-Length", "Transfer-Encoding", "Connection", "X" * 100, "Range"]
                ),
                st.text(max_size=40).map(lambda t: t.replace("\r", "").replace("\n", "")),
            ),
            max_size=5,
        ),
        st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/0.9", "HTTP/2.0", "HTTP/1.1 x", "FTP/1.0"]),
    ),
    st.binary(max_size=300),
    st.integers(1, 5).map(lambda n: b"GET /" + b"a" * (70_000 * n // 5) + b" HTTP/1.1\r\n\r\n"),
    st.just(b"GET /snapshot.jpg HTTP/1.1\r\n" + b"X: y\r\n" * 150 + b"\r\n"),
)
ALLOWED_HTTP = {400, 403, 404, 405, 408, 414, 431, 501, 505}


def fuzz_preview(rig, link, examples: int) -> None:
    port = rig.preview_ports["cam0"]

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(request=http_request)
    def run(request: bytes) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
            try:
                sock.sendall(request)
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            answer = read_until_closed(sock, 15.0)
        if answer:
            status_line = answer.split(b"\r\n", 1)[0]
            assert status_line.startswith(b"HTTP/1."), answer[:200]
            status = int(status_line.split()[1])
            assert status in ALLOWED_HTTP, f"HTTP {status} for {request[:200]!r}: {answer[:300]!r}"
            assert b"image/jpeg" not in answer
        assert_alive(rig, link)

    run()


def test_preview_requests_never_break_the_agent(fuzz_rig) -> None:
    rig, link = fuzz_rig
    fuzz_preview(rig, link, max(FUZZ_EXAMPLES // 2, 50))


@pytest.mark.slow
@pytest.mark.timeout(7200)
def test_preview_requests_long_run(fuzz_rig) -> None:
    fuzz_preview(*fuzz_rig, max(FUZZ_EXAMPLES, 10_000))
