"""What the protocol and agent-fuzz tests share: the test secrets, the length-prefixed framing of a
raw body, authenticated Connection pairs over loopback TCP, the fuzz example count and a strategy
for any JSON value."""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from syncrig_agent.contract.protocol import Connection, accept_handshake, connect_handshake, read_message

SECRET = b"0123456789abcdef0123456789abcdef"
WRONG = b"fedcba9876543210fedcba9876543210"
FUZZ_EXAMPLES = int(os.environ.get("SYNCRIG_FUZZ_EXAMPLES", "200"))

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),  # what JSON can carry
    st.text(max_size=40),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def frame(body: bytes) -> bytes:
    return struct.pack("!I", len(body)) + body


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


def read_skipping_pings(sock: socket.socket) -> dict[str, Any]:
    """Read the next message that is not a heartbeat ping from the Connection under test."""
    while True:
        msg = read_message(sock)
        if msg["type"] != "ping":
            return msg
