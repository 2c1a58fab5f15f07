"""Tests for syncrig_agent.contract.protocol over real sockets (socketpair and loopback TCP, no mocks)."""

from __future__ import annotations

import json
import logging
import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncrig_agent.contract.protocol import (
    MAX_MESSAGE_BYTES,
    AuthenticationFailed,
    Connection,
    ConnectionClosed,
    MalformedMessage,
    MessageTooLarge,
    ProtocolError,
    RemoteError,
    RequestError,
    RequestTimeout,
    TruncatedMessage,
    accept_handshake,
    connect_handshake,
    decode_body,
    encode_message,
    load_secret,
    measure_clock_offset,
    read_message,
    validate_request,
    write_message,
    write_secret,
)
from syncrig_agent.contract.protocol.auth import _mac

SECRET = b"0123456789abcdef0123456789abcdef"
WRONG = b"fedcba9876543210fedcba9876543210"
FUZZ_EXAMPLES = int(os.environ.get("SYNCRIG_FUZZ_EXAMPLES", "200"))


def frame(body: bytes) -> bytes:
    return struct.pack("!I", len(body)) + body


@pytest.fixture
def sockpair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    a.settimeout(5.0)
    b.settimeout(5.0)
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(5.0)
    yield srv
    srv.close()


class Pairs:
    """Builds authenticated Connection pairs over loopback TCP and closes them at teardown."""

    def __init__(self) -> None:
        self.conns: list[Connection] = []
        self.socks: list[socket.socket] = []

    def tcp(self) -> tuple[socket.socket, socket.socket]:
        with socket.create_server(("127.0.0.1", 0)) as srv:
            client = socket.create_connection(srv.getsockname(), timeout=5.0)
            server, _ = srv.accept()
        self.socks += [client, server]
        return server, client

    def authenticated(self) -> tuple[socket.socket, socket.socket]:
        server, client = self.tcp()
        errors: list[BaseException] = []

        def accept() -> None:
            try:
                accept_handshake(server, SECRET, timeout=5.0)
            except BaseException as exc:  # surfaced by the assert below
                errors.append(exc)

        t = threading.Thread(target=accept)
        t.start()
        connect_handshake(client, SECRET, timeout=5.0)
        t.join(5.0)
        assert not errors
        return server, client

    def connections(
        self,
        on_server_request: Callable[[Connection, dict[str, Any]], dict[str, Any] | None] | None = None,
        on_client_request: Callable[[Connection, dict[str, Any]], dict[str, Any] | None] | None = None,
        heartbeat_interval: float = 1.0,
        heartbeat_timeout: float = 5.0,
    ) -> tuple[Connection, Connection]:
        ss, cs = self.authenticated()
        server = Connection(ss, "client-peer", on_server_request, None, heartbeat_interval, heartbeat_timeout)
        client = Connection(cs, "cam0", on_client_request, None, heartbeat_interval, heartbeat_timeout)
        server.start()
        client.start()
        self.conns += [server, client]
        return server, client

    def close(self) -> None:
        for c in self.conns:
            c.close("test teardown")
        for s in self.socks:
            s.close()


@pytest.fixture
def pairs() -> Iterator[Pairs]:
    p = Pairs()
    yield p
    p.close()


def read_skipping_pings(sock: socket.socket) -> dict[str, Any]:
    """Read the next message that is not a heartbeat ping from the Connection under test."""
    while True:
        msg = read_message(sock)
        if msg["type"] != "ping":
            return msg


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


# ---------------------------------------------------------------------------- auth


def test_handshake_success_restores_timeout(pairs: Pairs) -> None:
    server, client = pairs.tcp()
    server.settimeout(7.0)
    client.settimeout(None)
    t = threading.Thread(target=accept_handshake, args=(server, SECRET, 2.0))
    t.start()
    connect_handshake(client, SECRET, 2.0)
    t.join(2.0)
    assert server.gettimeout() == 7.0
    assert client.gettimeout() is None


def test_wrong_secret_client_is_refused_and_nothing_else_processed(listener: socket.socket) -> None:
    handled: list[dict[str, Any]] = []
    outcome: list[BaseException] = []

    def serve() -> None:
        sock, _ = listener.accept()
        with sock:
            try:
                accept_handshake(sock, SECRET, timeout=2.0)
            except AuthenticationFailed as exc:
                outcome.append(exc)
                return
            conn = Connection(sock, on_request=lambda c, m: handled.append(m) or {})
            conn.start()
            conn.wait_closed(2.0)

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(listener.getsockname(), timeout=2.0) as raw:
        challenge = read_message(raw)
        assert challenge["type"] == "challenge" and challenge["proto"] == 1
        assert len(challenge["nonce"]) == 64
        nonce = "ab" * 32
        bad_mac = _mac(WRONG, b"connector", challenge["nonce"], nonce)
        # A request pipelined right behind the bad auth must never reach a handler.
        raw.sendall(
            encode_message({"type": "auth", "nonce": nonce, "mac": bad_mac})
            + encode_message({"type": "stop", "id": 1})
        )
        assert read_message(raw) == {"type": "error", "code": "auth_failed", "error": "authentication failed"}
        with pytest.raises((ConnectionClosed, ConnectionResetError)):
            read_message(raw)
    t.join(3.0)
    assert len(outcome) == 1 and outcome[0].code == "auth_failed"
    assert handled == []


def test_wrong_secret_connector_gets_authentication_failed(listener: socket.socket) -> None:
    refused: list[BaseException] = []

    def serve() -> None:
        sock, _ = listener.accept()
        with sock:
            try:
                accept_handshake(sock, SECRET, timeout=2.0)
            except AuthenticationFailed as exc:
                refused.append(exc)

    t = threading.Thread(target=serve)
    t.start()
    with socket.create_connection(listener.getsockname(), timeout=2.0) as sock:
        with pytest.raises(AuthenticationFailed) as info:
            connect_handshake(sock, WRONG, timeout=2.0)
        assert info.value.code == "auth_failed"
    t.join(3.0)
    assert refused


@pytest.mark.parametrize("forgery", ["wrong_secret", "reflected", "missing_mac", "connector_label"])
def test_impostor_acceptor_is_detected(listener: socket.socket, forgery: str) -> None:
    def impostor() -> None:
        sock, _ = listener.accept()
        with sock:
            server_nonce = "cd" * 32
            write_message(sock, {"type": "challenge", "proto": 1, "nonce": server_nonce})
            auth = read_message(sock)
            client_nonce = auth["nonce"]
            if forgery == "wrong_secret":
                answer = {"type": "auth_ok", "mac": _mac(WRONG, b"acceptor", server_nonce, client_nonce)}
            elif forgery == "reflected":
                answer = {"type": "auth_ok", "mac": auth["mac"]}  # replay the client's own proof
            elif forgery == "missing_mac":
                answer = {"type": "auth_ok"}
            else:  # right secret but the wrong role label: still not an acceptor's proof
                answer = {"type": "auth_ok", "mac": _mac(SECRET, b"connector", server_nonce, client_nonce)}
            write_message(sock, answer)
            time.sleep(0.2)

    t = threading.Thread(target=impostor)
    t.start()
    with (
        socket.create_connection(listener.getsockname(), timeout=2.0) as sock,
        pytest.raises(AuthenticationFailed),
    ):
        connect_handshake(sock, SECRET, timeout=2.0)
    t.join(3.0)


def test_accept_handshake_times_out_on_silent_peer(sockpair: tuple[socket.socket, socket.socket]) -> None:
    a, _b = sockpair
    t0 = time.monotonic()
    with pytest.raises(AuthenticationFailed):
        accept_handshake(a, SECRET, timeout=0.3)
    elapsed = time.monotonic() - t0
    assert 0.25 <= elapsed < 1.0
    assert a.gettimeout() == 5.0  # restored


def test_connect_handshake_times_out_on_silent_acceptor(
    sockpair: tuple[socket.socket, socket.socket],
) -> None:
    a, _b = sockpair
    t0 = time.monotonic()
    with pytest.raises(AuthenticationFailed):
        connect_handshake(a, SECRET, timeout=0.3)
    assert time.monotonic() - t0 < 1.0


def test_handshake_deadline_holds_against_trickling_peer(
    sockpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = sockpair
    stop = threading.Event()

    def trickle() -> None:
        # A plausible auth frame, one byte every 50 ms: each recv succeeds, the total must not.
        data = encode_message({"type": "auth", "nonce": "ab" * 32, "mac": "00" * 32})
        for byte in data:
            if stop.wait(0.05):
                return
            try:
                b.send(bytes([byte]))
            except OSError:
                return

    t = threading.Thread(target=trickle)
    t.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(AuthenticationFailed):
            accept_handshake(a, SECRET, timeout=0.4)
        assert time.monotonic() - t0 < 0.9
    finally:
        stop.set()
        t.join(2.0)


# ---------------------------------------------------------------------------- secrets


def test_write_and_load_secret(tmp_path: Any) -> None:
    path = tmp_path / "secret"
    secret = write_secret(path)
    assert len(secret) == 64 and bytes.fromhex(secret.decode())
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_secret(path) == secret
    with pytest.raises(FileExistsError):
        write_secret(path)
    assert load_secret(path) == secret  # untouched


def test_load_secret_refuses_readable_or_short(tmp_path: Any) -> None:
    path = tmp_path / "open"
    path.write_bytes(b"a-long-enough-secret-value\n")
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        load_secret(path)
    os.chmod(path, 0o600)
    assert load_secret(path) == b"a-long-enough-secret-value"
    short = tmp_path / "short"
    short.write_bytes(b"  tooshort \n")
    os.chmod(short, 0o600)
    with pytest.raises(ValueError, match="at least 16"):
        load_secret(short)


def test_load_secret_refuses_fifo_without_hanging(tmp_path: Any) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path, 0o600)
    with pytest.raises(ValueError, match="not a regular file"):
        load_secret(path)


# ---------------------------------------------------------------------------- connection


def echo(conn: Connection, msg: dict[str, Any]) -> dict[str, Any]:
    validate_request(msg)
    return {"echo": msg["type"], "got_id": msg["id"]}


def test_request_reply_ids(pairs: Pairs) -> None:
    _server, client = pairs.connections(on_server_request=echo)
    first = client.request({"type": "status"}, timeout=2.0)
    second = client.request({"type": "status"}, timeout=2.0)
    assert first["ok"] is True and first["echo"] == "status"
    assert first["re"] == first["got_id"] and second["re"] == second["got_id"]
    assert second["re"] > first["re"]


def test_concurrent_requests_get_their_own_replies(pairs: Pairs) -> None:
    def handler(conn: Connection, msg: dict[str, Any]) -> dict[str, Any]:
        return {"n": msg["n"]}

    _server, client = pairs.connections(on_server_request=handler)
    bad: list[Any] = []

    def worker(k: int) -> None:
        for i in range(25):
            n = k * 1000 + i
            if client.request({"type": "status", "n": n}, timeout=2.0)["n"] != n:
                bad.append(n)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10.0)
    assert bad == []


def test_late_reply_is_not_taken_for_next_request(pairs: Pairs, caplog: pytest.LogCaptureFixture) -> None:
    def handler(conn: Connection, msg: dict[str, Any]) -> dict[str, Any]:
        if msg["n"] == 1:
            time.sleep(0.5)  # blocks the server's reader: the second request queues behind it
        return {"answer": msg["n"]}

    _server, client = pairs.connections(on_server_request=handler)
    with caplog.at_level(logging.WARNING, logger="syncrig_agent.contract.protocol.connection"):
        with pytest.raises(RequestTimeout):
            client.request({"type": "status", "n": 1}, timeout=0.2)
        reply = client.request({"type": "status", "n": 2}, timeout=3.0)
    assert reply["answer"] == 2
    assert any("dropping reply" in r.getMessage() for r in caplog.records)
    assert not client.closed


def test_unknown_command_and_bad_field(pairs: Pairs) -> None:
    _server, client = pairs.connections(on_server_request=echo)
    with pytest.raises(RemoteError) as info:
        client.request({"type": "frobnicate"}, timeout=2.0)
    assert info.value.code == "unknown_command"
    assert info.value.reply["ok"] is False and info.value.reply["type"] == "reply"
    with pytest.raises(RemoteError) as info:
        client.request({"type": "stop", "at_ns": True}, timeout=2.0)
    assert info.value.code == "bad_field" and "at_ns" in info.value.message
    assert client.request({"type": "stop", "at_ns": 5}, timeout=2.0)["ok"] is True


def test_handler_errors_produce_error_replies_and_connection_survives(pairs: Pairs) -> None:
    def handler(conn: Connection, msg: dict[str, Any]) -> dict[str, Any]:
        if msg["what"] == "busy":
            raise RequestError("busy", "already recording")
        if msg["what"] == "boom":
            raise ValueError("boom went the handler")
        if msg["what"] == "unencodable":
            return {"x": object()}
        if msg["what"] == "self_failed":
            return {"ok": False, "code": "nope", "error": "declined"}
        return {"fine": True}

    server, client = pairs.connections(on_server_request=handler)
    with pytest.raises(RemoteError) as info:
        client.request({"type": "start", "what": "busy"}, timeout=2.0)
    assert (info.value.code, info.value.message) == ("busy", "already recording")
    with pytest.raises(RemoteError) as info:
        client.request({"type": "start", "what": "boom"}, timeout=2.0)
    assert info.value.code == "internal" and "boom went the handler" in info.value.message
    with pytest.raises(RemoteError) as info:
        client.request({"type": "start", "what": "unencodable"}, timeout=2.0)
    assert info.value.code == "internal"
    with pytest.raises(RemoteError) as info:
        client.request({"type": "start", "what": "self_failed"}, timeout=2.0)
    assert info.value.code == "nope"
    assert client.request({"type": "start", "what": "ok"}, timeout=2.0)["fine"] is True
    assert not server.closed and not client.closed


def test_deferred_reply_from_another_thread(pairs: Pairs) -> None:
    def handler(conn: Connection, msg: dict[str, Any]) -> None:
        def later() -> None:
            time.sleep(0.05)
            if msg["n"] % 2:
                conn.reply(msg, n=msg["n"])
            else:
                conn.reply_error(msg, "even", "even numbers refused")

        threading.Thread(target=later).start()
        return None

    _server, client = pairs.connections(on_server_request=handler)
    assert client.request({"type": "status", "n": 3}, timeout=2.0)["n"] == 3
    with pytest.raises(RemoteError, match="even"):
        client.request({"type": "status", "n": 4}, timeout=2.0)


def test_missing_id_and_malformed_messages_keep_connection(
    sockpair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = sockpair
    conn = Connection(a, "raw", on_request=echo, heartbeat_interval=5.0, heartbeat_timeout=10.0)
    conn.start()
    try:
        b.sendall(frame(b"{not json"))
        msg = read_skipping_pings(b)
        assert msg["type"] == "error" and msg["code"] == "bad_json" and "re" not in msg
        b.sendall(frame(b'{"id":1}'))
        assert read_skipping_pings(b)["code"] == "missing_type"
        write_message(b, {"type": "status"})
        msg = read_skipping_pings(b)
        assert msg["type"] == "error" and msg["code"] == "missing_id" and "re" not in msg
        write_message(b, {"type": "status", "id": True})  # bool is not an id
        assert read_skipping_pings(b)["code"] == "missing_id"
        write_message(b, {"type": "ping", "id": 41})
        pong = read_skipping_pings(b)
        assert pong["re"] == 41 and pong["ok"] is True
        assert pong["t_send_ns"] >= pong["t_recv_ns"] > 0
        write_message(b, {"type": "status", "id": 42})
        assert read_skipping_pings(b) == {
            "type": "reply",
            "re": 42,
            "ok": True,
            "echo": "status",
            "got_id": 42,
        }
        write_message(b, {"type": "reply", "re": 999, "ok": True})  # unknown reply: dropped
        write_message(b, {"type": "error", "code": "x", "error": "y"})  # never answered
        write_message(b, {"type": "status", "id": 43})
        assert read_skipping_pings(b)["re"] == 43
        assert not conn.closed
    finally:
        conn.close()


def test_oversized_frame_closes_connection(sockpair: tuple[socket.socket, socket.socket]) -> None:
    a, b = sockpair
    closes: list[Connection] = []
    conn = Connection(a, "raw", on_request=echo, on_close=closes.append)
    conn.start()
    b.sendall(struct.pack("!I", 2 << 30))
    assert conn.wait_closed(2.0)
    assert read_skipping_pings(b)["code"] == "too_large"
    assert "protocol error" in conn.close_reason
    assert closes == [conn]


def test_close_fails_pending_and_calls_on_close_once(pairs: Pairs) -> None:
    server, client = pairs.connections(on_server_request=lambda c, m: None)  # never answers
    closed: list[Connection] = []
    client._on_close = closed.append  # set before anything closes it
    threading.Timer(0.2, server.close, args=("server going away",)).start()
    t0 = time.monotonic()
    with pytest.raises(ConnectionClosed):
        client.request({"type": "status"}, timeout=5.0)
    assert time.monotonic() - t0 < 2.0
    assert client.wait_closed(2.0)
    client.close("again")
    client.close("and again")
    assert closed == [client]
    assert client.close_reason == "peer closed the connection"
    with pytest.raises(ConnectionClosed):
        client.request({"type": "status"}, timeout=1.0)
    with pytest.raises(ConnectionClosed):
        client.send({"type": "status"})


def test_heartbeat_timeout_closes_silent_peer(pairs: Pairs) -> None:
    server_sock, raw_client = pairs.authenticated()
    # raw_client completed the handshake and then goes silent: it never sends or reads.
    conn = Connection(server_sock, "silent", heartbeat_interval=0.1, heartbeat_timeout=0.5)
    pairs.conns.append(conn)
    t0 = time.monotonic()
    conn.start()
    assert conn.wait_closed(3.0)
    elapsed = time.monotonic() - t0
    assert conn.close_reason == "heartbeat timeout"
    assert 0.5 <= elapsed < 1.5


def test_heartbeat_keeps_live_connection_open(pairs: Pairs) -> None:
    server, client = pairs.connections(heartbeat_interval=0.05, heartbeat_timeout=0.6)
    time.sleep(0.8)
    assert not server.closed and not client.closed


def test_send_stall_is_detected(pairs: Pairs) -> None:
    server_sock, raw_client = pairs.authenticated()
    server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    raw_client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    conn = Connection(server_sock, "not-reading", heartbeat_interval=0.1, heartbeat_timeout=0.5)
    pairs.conns.append(conn)
    conn.start()
    stop = threading.Event()

    def keep_talking() -> None:
        # The peer keeps pinging (so it is "heard") but never reads anything we send.
        i = 0
        while not stop.wait(0.05):
            i += 1
            try:
                write_message(raw_client, {"type": "ping", "id": i})
            except OSError:
                return

    talker = threading.Thread(target=keep_talking)
    talker.start()

    def flood() -> None:
        blob = "x" * 200_000
        while True:
            try:
                conn.send({"type": "bulk", "blob": blob})
            except ConnectionClosed:
                return

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        assert conn.wait_closed(4.0)
        assert conn.close_reason in ("send stalled: peer is not reading", "heartbeat timeout")
        flooder.join(2.0)
        assert not flooder.is_alive()
    finally:
        stop.set()
        talker.join(2.0)


def test_rtt_and_clock_offset_on_loopback(pairs: Pairs) -> None:
    server, client = pairs.connections(heartbeat_interval=0.03, heartbeat_timeout=2.0)
    deadline = time.monotonic() + 3.0
    while len(client.clock_samples()) < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    samples = client.clock_samples()
    assert len(samples) >= 4
    for t1, t2, t3, t4 in samples:
        assert t1 <= t4 and t2 <= t3
    offset = client.clock_offset_ns()
    assert offset is not None
    # Same clock on both ends, so the true offset is 0 and the NTP estimate is off by at most
    # half the round trip of the sample it used. That bound always holds; the 5 ms target is
    # asserted unless even that best recent round trip was slow (a heavily loaded machine,
    # where both ends also share one GIL in this test).
    used_rtt = min(
        (t4 - t1) - (t3 - t2)
        for t1, t2, t3, t4 in client.clock_samples()
        if ((t2 - t1) + (t3 - t4)) // 2 == offset
    )
    assert abs(offset) <= used_rtt // 2 + 1
    if used_rtt < 10_000_000:
        assert abs(offset) < 5_000_000
    median, worst = client.rtt_ns_median(), client.rtt_ns_max()
    assert median is not None and worst is not None
    assert 0 <= median <= worst < 500_000_000
    assert len(client.rtt_samples) <= 64

    result = measure_clock_offset(server, samples=8, timeout=1.0)
    assert result["samples"] == 8
    assert 0 <= result["rtt_ns"] < 200_000_000
    assert abs(result["offset_ns"]) <= result["rtt_ns"] // 2 + 1
    if result["rtt_ns"] < 10_000_000:
        assert abs(result["offset_ns"]) < 5_000_000


def test_rtt_history_is_bounded(pairs: Pairs) -> None:
    _server, client = pairs.connections()
    for _ in range(70):
        client.ping(timeout=1.0)
    assert len(client.rtt_samples) == 64
    assert len(client.clock_samples()) == 64


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
