"""The shared-secret handshake of syncrig_agent.contract.protocol over real sockets (socketpair and
loopback TCP, no mocks), and the secret file it reads."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from typing import Any

import pytest

from syncrig_agent.contract.protocol import (
    AuthenticationFailed,
    Connection,
    ConnectionClosed,
    accept_handshake,
    connect_handshake,
    encode_message,
    load_secret,
    read_message,
    write_message,
    write_secret,
)
from syncrig_agent.contract.protocol.auth import _mac

from protocol_support import SECRET, WRONG, Pairs

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
