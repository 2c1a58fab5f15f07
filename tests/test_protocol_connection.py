"""syncrig_agent.contract.protocol.Connection over authenticated loopback TCP: request/reply ids,
handler errors, deferred replies, closing, heartbeats, send stalls and the link's clock statistics."""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from typing import Any

import pytest

from syncrig_agent.contract.protocol import (
    Connection,
    ConnectionClosed,
    RemoteError,
    RequestError,
    RequestTimeout,
    measure_clock_offset,
    validate_request,
    write_message,
)

from protocol_support import Pairs, frame, read_skipping_pings

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
