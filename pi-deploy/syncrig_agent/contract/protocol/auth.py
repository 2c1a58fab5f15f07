"""Mutual shared-secret handshake and secret-file handling.

Run right after the TCP connect and before anything else on the socket is interpreted:

    acceptor  -> {"type": "challenge", "proto": 1, "nonce": Ns}
    connector -> {"type": "auth", "nonce": Nc, "mac": HMAC(secret, "syncrig-v1|connector|" Ns "|" Nc)}
    acceptor  -> {"type": "auth_ok", "mac": HMAC(secret, "syncrig-v1|acceptor|" Ns "|" Nc)}
             or {"type": "error", "code": "auth_failed", "error": "authentication failed"}

Both sides contribute a fresh nonce, so a recorded exchange cannot be replayed, and the role
label in each MAC means one side's proof can never be reflected back as the other's. The
connector checks the acceptor's MAC too, so a client never obeys an impostor server.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import socket
import stat
import time
from typing import Any

from syncrig_agent.contract.protocol.framing import (
    AuthenticationFailed,
    ProtocolError,
    encode_message,
    read_message,
    write_message,
)
from syncrig_agent.contract.protocol.messages import AUTH, AUTH_OK, CHALLENGE, ERROR

__all__ = [
    "AUTH_PROTOCOL_VERSION",
    "MIN_SECRET_BYTES",
    "accept_handshake",
    "connect_handshake",
    "load_secret",
    "write_secret",
]

AUTH_PROTOCOL_VERSION = 1
MIN_SECRET_BYTES = 16
_NONCE_BYTES = 32
_MAC_PREFIX = b"syncrig-v1|"
# Nonces must be lowercase hex: that keeps the '|'-joined MAC input unambiguous and bounds size.
_NONCE_RE = re.compile(r"[0-9a-f]{32,128}")
_MAC_RE = re.compile(r"[0-9a-f]{64}")


def _mac(secret: bytes, role: bytes, server_nonce: str, client_nonce: str) -> str:
    data = _MAC_PREFIX + role + b"|" + server_nonce.encode("ascii") + b"|" + client_nonce.encode("ascii")
    return hmac.new(secret, data, hashlib.sha256).hexdigest()


def _valid_nonce(value: Any) -> bool:
    return isinstance(value, str) and _NONCE_RE.fullmatch(value) is not None


def _mac_matches(expected: str, received: Any) -> bool:
    # Shape check first: compare_digest raises TypeError on non-ASCII str, and a wrong length
    # is not a secret worth hiding.
    if not isinstance(received, str) or _MAC_RE.fullmatch(received) is None:
        return False
    return hmac.compare_digest(expected, received)


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, (bytes, bytearray)) or not secret:
        raise ValueError("shared secret must be non-empty bytes")


def _send_refusal(sock: socket.socket) -> None:
    """Best-effort auth_failed notice; never blocks, since the peer may not be reading."""
    try:
        sock.settimeout(0.0)
        sock.send(encode_message({"type": ERROR, "code": "auth_failed", "error": "authentication failed"}))
    except OSError:
        pass


def accept_handshake(sock: socket.socket, secret: bytes, timeout: float = 5.0) -> None:
    """Authenticate a freshly accepted connection (server side).

    The whole exchange must complete within ``timeout`` seconds, so a silent or trickling peer
    cannot hold an accept slot. On any failure (wrong MAC, unexpected or malformed message,
    timeout, disconnect) an auth_failed error is sent when possible and AuthenticationFailed is
    raised; the caller should then close the socket without reading anything else from it.
    The socket's previous timeout is restored either way.
    """
    _check_secret(secret)
    deadline = time.monotonic() + timeout
    previous = sock.gettimeout()
    try:
        server_nonce = secrets.token_hex(_NONCE_BYTES)
        try:
            write_message(
                sock,
                {"type": CHALLENGE, "proto": AUTH_PROTOCOL_VERSION, "nonce": server_nonce},
                deadline=deadline,
            )
            reply = read_message(sock, deadline=deadline)
        except (ProtocolError, OSError) as exc:  # OSError includes socket timeouts
            _send_refusal(sock)
            raise AuthenticationFailed(f"handshake failed: {str(exc) or type(exc).__name__}") from exc
        client_nonce = reply.get("nonce")
        if reply.get("type") != AUTH or not _valid_nonce(client_nonce):
            _send_refusal(sock)
            raise AuthenticationFailed(f"expected an auth message, got {str(reply.get('type'))[:40]!r}")
        if not _mac_matches(_mac(secret, b"connector", server_nonce, client_nonce), reply.get("mac")):
            _send_refusal(sock)
            raise AuthenticationFailed("peer's MAC does not match: wrong shared secret")
        try:
            write_message(
                sock,
                {"type": AUTH_OK, "mac": _mac(secret, b"acceptor", server_nonce, client_nonce)},
                deadline=deadline,
            )
        except (ProtocolError, OSError) as exc:
            raise AuthenticationFailed(f"handshake failed sending auth_ok: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(previous)


def connect_handshake(sock: socket.socket, secret: bytes, timeout: float = 5.0) -> None:
    """Authenticate to the acceptor and verify that it knows the secret too (client side).

    Raises AuthenticationFailed if the acceptor refuses us, proves nothing, sends something
    unexpected, or the exchange does not finish within ``timeout`` seconds. The socket's
    previous timeout is restored either way.
    """
    _check_secret(secret)
    deadline = time.monotonic() + timeout
    previous = sock.gettimeout()
    try:
        try:
            challenge = read_message(sock, deadline=deadline)
            server_nonce = challenge.get("nonce")
            proto = challenge.get("proto")
            if challenge.get("type") != CHALLENGE or not _valid_nonce(server_nonce):
                raise AuthenticationFailed(f"expected a challenge, got {str(challenge.get('type'))[:40]!r}")
            if type(proto) is not int or proto != AUTH_PROTOCOL_VERSION:
                raise AuthenticationFailed(f"unsupported handshake protocol {str(proto)[:20]!r}")
            client_nonce = secrets.token_hex(_NONCE_BYTES)
            write_message(
                sock,
                {
                    "type": AUTH,
                    "nonce": client_nonce,
                    "mac": _mac(secret, b"connector", server_nonce, client_nonce),
                },
                deadline=deadline,
            )
            answer = read_message(sock, deadline=deadline)
        except AuthenticationFailed:
            raise
        except (ProtocolError, OSError) as exc:
            raise AuthenticationFailed(f"handshake failed: {str(exc) or type(exc).__name__}") from exc
        if answer.get("type") == ERROR:
            raise AuthenticationFailed("acceptor refused our credentials (wrong shared secret?)")
        if answer.get("type") != AUTH_OK:
            raise AuthenticationFailed(f"expected auth_ok, got {str(answer.get('type'))[:40]!r}")
        if not _mac_matches(_mac(secret, b"acceptor", server_nonce, client_nonce), answer.get("mac")):
            raise AuthenticationFailed("acceptor's MAC does not match: it does not know the shared secret")
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(previous)


def load_secret(path: str | os.PathLike[str]) -> bytes:
    """Read the shared secret from ``path`` (surrounding whitespace stripped).

    Refuses (ValueError) a file that group or others can access, or a secret shorter than
    MIN_SECRET_BYTES: a readable or guessable secret would let anyone on the network drive the
    cameras. The mode is checked on the opened descriptor so a swapped file cannot slip by.
    """
    # O_NONBLOCK: opening a FIFO planted at the path must not hang the agent (no-op for files).
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"secret file {os.fspath(path)!r} is not a regular file")
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077:
            raise ValueError(
                f"secret file {os.fspath(path)!r} has mode {mode:04o} and is accessible to group/others; "
                f"run: chmod 600 {os.fspath(path)}"
            )
        secret = f.read(64 * 1024).strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(
            f"secret in {os.fspath(path)!r} is {len(secret)} bytes; at least {MIN_SECRET_BYTES} are required"
        )
    return secret


def write_secret(path: str | os.PathLike[str]) -> bytes:
    """Create ``path`` holding a new random secret (32 random bytes, hex) with mode 0600.

    Never overwrites: an existing file raises FileExistsError (replacing a deployed secret by
    accident would lock every agent out). Returns the secret exactly as load_secret returns it.
    """
    secret = secrets.token_hex(32).encode("ascii")
    # O_EXCL makes creation atomic and refuses to follow a planted symlink.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask can only remove bits, but be explicit about the result
        os.write(fd, secret + b"\n")
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)
    return secret
