"""Opening authenticated links: listening sockets, the handshake, HELLO — shared by both roles and
by the desktop's cluster link, so every port authenticates the same way."""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from syncrig_agent.contract.protocol import (
    HELLO,
    PROTOCOL_VERSION,
    REPLY,
    AuthenticationFailed,
    Connection,
    ProtocolError,
    RemoteError,
    RequestError,
    accept_handshake,
    connect_handshake,
    read_message,
    validate_request,
    write_message,
)
from syncrig_agent.contract.validation import parse_address

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 5.0
# Connections still in their handshake, per port. Each is bounded in time (HANDSHAKE_TIMEOUT_S);
# this bounds their number, so a flood of strangers costs at most this many short-lived threads
# instead of one thread per connection until the agent can start no more (a real rig has a
# handful of cameras and one or two controllers).
MAX_PENDING_HANDSHAKES = 32


def listen(address: str, default_port: int, field_name: str) -> socket.socket:
    host, port = parse_address(address, default_port, field_name)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(16)
    return sock


def _tune(sock: socket.socket) -> None:
    # Control messages are small and latency matters more than throughput.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)


def accept_peer(
    sock: socket.socket,
    secret: bytes,
    allowed_roles: set[str],
    admit: Callable[[dict], dict],
) -> tuple[dict, Callable[[dict], None]]:
    """Server side of a new connection: handshake, then HELLO. `admit(hello)` returns the WELCOME
    fields or raises RequestError (e.g. duplicate name); returns (hello, send_welcome)."""
    _tune(sock)
    accept_handshake(sock, secret, timeout=HANDSHAKE_TIMEOUT_S)
    sock.settimeout(HANDSHAKE_TIMEOUT_S)
    hello = read_message(sock)
    try:
        if hello.get("type") != HELLO:
            raise RequestError("expected_hello", f"first message must be hello, got {hello.get('type')!r}")
        validate_request(hello)
        if hello["role"] not in allowed_roles:
            raise RequestError("wrong_role", f"role {hello['role']!r} does not connect to this port")
        welcome = admit(hello)
    except RequestError as exc:
        write_message(
            sock,
            {"type": REPLY, "re": hello.get("id"), "ok": False, "code": exc.code, "error": exc.message},
        )
        raise
    sock.settimeout(None)

    def send_welcome(extra: dict) -> None:
        write_message(sock, {"type": REPLY, "re": hello.get("id"), "ok": True, **welcome, **extra})

    return hello, send_welcome


def connect_peer(
    address: tuple[str, int], secret: bytes, hello: dict, timeout: float = 5.0
) -> tuple[socket.socket, dict]:
    """Client side: connect, handshake, HELLO; returns the socket and the WELCOME reply."""
    sock = socket.create_connection(address, timeout=timeout)
    try:
        _tune(sock)
        connect_handshake(sock, secret, timeout=timeout)
        sock.settimeout(timeout)
        write_message(sock, {"id": 0, "version": PROTOCOL_VERSION, **hello, "type": HELLO})
        reply = read_message(sock)
        if reply.get("type") != REPLY or reply.get("re") != 0:
            raise ProtocolError(f"unexpected answer to hello: {reply}", code="bad_reply")
        if not reply.get("ok"):
            raise RemoteError(reply.get("code", "refused"), reply.get("error", "refused"), reply)
        sock.settimeout(None)
        return sock, reply
    except BaseException:
        sock.close()
        raise


def serve_forever(
    listener: socket.socket,
    handle: Callable[[socket.socket, tuple], None],
    stopping: threading.Event,
    name: str,
) -> threading.Thread:
    """Accept loop on its own thread; each peer's handshake runs on a thread of its own so a
    silent or slow peer cannot hold up the next one."""

    slots = threading.BoundedSemaphore(MAX_PENDING_HANDSHAKES)

    def loop() -> None:
        refused = 0
        while not stopping.is_set():
            try:
                conn, addr = listener.accept()
            except OSError:
                if stopping.is_set():
                    return
                log.exception("accept failed on %s", name)
                stopping.wait(0.5)  # a persistent accept error must not become a busy loop
                continue
            if not slots.acquire(blocking=False):
                refused += 1
                if refused == 1 or refused % 100 == 0:
                    log.warning("%s: %d handshakes pending; refused %d connection(s), latest from %s",
                                name, MAX_PENDING_HANDSHAKES, refused, addr)  # fmt: skip
                conn.close()
                continue
            start_peer_thread(_guarded, (handle, conn, addr, slots), f"{name}-peer", conn, addr, slots)

    thread = threading.Thread(target=loop, name=f"{name}-accept", daemon=True)
    thread.start()
    return thread


def start_peer_thread(
    target: Callable[..., None],
    args: tuple,
    name: str,
    conn: socket.socket,
    addr: tuple,
    slots: threading.BoundedSemaphore,
) -> bool:
    """Serve one accepted peer on a thread of its own (which releases its slot in `slots`). When no
    thread can be had, only this peer is dropped and its slot freed: an exception here would end
    the accept loop, and with it every later connection."""
    try:
        threading.Thread(target=target, args=args, name=name, daemon=True).start()
        return True
    except RuntimeError as exc:
        slots.release()
        log.error("%s: cannot serve %s: %s", name, addr, exc)
        conn.close()
        return False


def _guarded(
    handle: Callable[[socket.socket, tuple], None],
    conn: socket.socket,
    addr: tuple,
    slots: threading.BoundedSemaphore,
) -> None:
    try:
        handle(conn, addr)
    except AuthenticationFailed:
        log.warning("peer %s failed authentication", addr)
        conn.close()
    except RequestError as exc:
        log.warning("peer %s refused: %s", addr, exc)
        conn.close()
    except (ProtocolError, OSError) as exc:
        log.warning("peer %s dropped during handshake: %s", addr, exc)
        conn.close()
    except Exception:  # a bug here must cost this peer only, never the descriptor or the slot
        log.exception("peer %s: handshake failed unexpectedly", addr)
        conn.close()
    finally:
        slots.release()


def write_ready_file(path: str, info: dict) -> None:
    """Tell whoever started us (a local rig, a test) that we are up, and on which ports."""
    if not path:
        return
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), **info}), encoding="utf-8")
    os.replace(tmp, target)


__all__ = [
    "Connection",
    "accept_peer",
    "connect_peer",
    "listen",
    "serve_forever",
    "write_ready_file",
]
