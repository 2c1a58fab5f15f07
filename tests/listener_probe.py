"""Every listening socket of a process tree, and what an unauthenticated peer gets from each.

`listening_sockets(pid)` reads the sockets a process (and its children) holds from /proc: TCP
sockets in LISTEN state, bound UDP sockets and listening Unix sockets. `probe_unauthenticated`
connects as a stranger and says what the port speaks ("handshake": SyncRig's HMAC challenge;
"http": an HTTP server); it fails when the port sends anything beyond a bare challenge, answers
an unauthenticated request, or speaks neither -- so a port added later without authentication
makes the security test fail instead of going unnoticed."""

from __future__ import annotations

import json
import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

_TCP_LISTEN = "0A"
_UNIX_ACCEPTCON = 0x10000


@dataclass(frozen=True)
class Listener:
    proto: str  # "tcp", "tcp6", "udp", "udp6", "unix"
    host: str
    port: int
    pid: int

    def __str__(self) -> str:
        return f"{self.proto} {self.host}:{self.port} (pid {self.pid})"


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (from /proc/*/stat)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _decode_address(text: str, v6: bool) -> tuple[str, int]:
    addr_hex, port_hex = text.split(":")
    raw = bytes.fromhex(addr_hex)
    if v6:
        # /proc prints IPv6 addresses as four host-order 32-bit words.
        raw = b"".join(struct.pack("<I", struct.unpack(">I", raw[i : i + 4])[0]) for i in range(0, 16, 4))
        host = socket.inet_ntop(socket.AF_INET6, raw)
    else:
        host = socket.inet_ntop(socket.AF_INET, struct.pack("<I", int(addr_hex, 16)))
    return host, int(port_hex, 16)


def listening_sockets(pid: int) -> list[Listener]:
    """Listening TCP, bound UDP and listening Unix sockets held by `pid` or any descendant."""
    found: set[Listener] = set()
    for p in process_tree(pid):
        try:
            inodes = _socket_inodes(p)
        except OSError:
            continue  # exited meanwhile
        for proto in ("tcp", "tcp6", "udp", "udp6"):
            try:
                lines = Path(f"/proc/{p}/net/{proto}").read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                cols = line.split()
                local, state, inode = cols[1], cols[3], cols[9]
                if inode not in inodes:
                    continue
                if proto.startswith("tcp") and state != _TCP_LISTEN:
                    continue
                host, port = _decode_address(local, proto.endswith("6"))
                if proto.startswith("udp") and port == 0:
                    continue
                found.add(Listener(proto, host, port, p))
        try:
            unix = Path(f"/proc/{p}/net/unix").read_text().splitlines()[1:]
        except OSError:
            unix = []
        for line in unix:
            cols = line.split()
            if cols[6] in inodes and int(cols[3], 16) & _UNIX_ACCEPTCON:
                found.add(Listener("unix", cols[7] if len(cols) > 7 else "(unnamed)", 0, p))
    return sorted(found, key=lambda x: (x.proto, x.host, x.port))


def _recv_all(sock: socket.socket, timeout: float, limit: int = 1 << 16) -> bytes:
    sock.settimeout(timeout)
    data = b""
    try:
        while len(data) < limit:
            chunk = sock.recv(limit - len(data))
            if not chunk:
                break
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def _frames(data: bytes) -> list[dict]:
    out = []
    while len(data) >= 4:
        (n,) = struct.unpack("!I", data[:4])
        out.append(json.loads(data[4 : 4 + n]))
        data = data[4 + n :]
    assert not data, f"bytes that are not a frame: {data[:80]!r}"
    return out


def _connect(host: str, port: int) -> socket.socket:
    return socket.create_connection((host, port), timeout=5.0)


def _expect_bare_challenge(sock: socket.socket, where: str) -> None:
    head = _recv_all_exact(sock, 4, where)
    (n,) = struct.unpack("!I", head)
    assert n < 512, f"{where}: first frame of {n} bytes is more than a challenge"
    challenge = json.loads(_recv_all_exact(sock, n, where))
    assert set(challenge) == {"type", "proto", "nonce"} and challenge["type"] == "challenge", (
        f"{where}: an unauthenticated peer got more than a bare challenge: {challenge}"
    )


def _recv_all_exact(sock: socket.socket, n: int, where: str) -> bytes:
    sock.settimeout(5.0)
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, f"{where}: closed after {len(data)} of {n} bytes"
        data += chunk
    return data


def _assert_refused(rest: bytes, where: str) -> None:
    frames = _frames(rest)
    assert all(f.get("type") == "error" and f.get("code") == "auth_failed" for f in frames), (
        f"{where}: an unauthenticated peer got {frames}"
    )


# Requests a stranger sends right after the challenge: a forged command without any handshake,
# an auth message with a wrong MAC, an HTTP request, and bytes that are no protocol at all.
def _frame(msg: dict) -> bytes:
    body = json.dumps(msg).encode()
    return struct.pack("!I", len(body)) + body


HANDSHAKE_ATTACKS = {
    "forged status": _frame({"type": "status", "id": 1}),
    "forged start": _frame({"type": "start", "id": 1, "session_id": "evil", "period_ns": 33333333,
                            "files": {"cam0": "cam0"}}),
    "wrong mac": _frame({"type": "auth", "nonce": "ab" * 32, "mac": "00" * 32}),
    "http": b"GET / HTTP/1.0\r\n\r\n",
    "garbage": b"\xff" * 64,
}  # fmt: skip

HTTP_PATHS = [
    "/",
    "/stream.mjpg",
    "/snapshot.jpg",
    "/api/status",
    "/api/sessions",
    "/api/config",
    "/stream.mjpg?expires=9999999999&token=" + "0" * 64,
    "/static/syncrig.js",
    "/../../etc/passwd",
]


def http_status(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One raw HTTP/1.0 GET; returns (status, body start)."""
    with _connect(host, port) as sock:
        fields = {"Host": f"{host}:{port}", **(headers or {})}
        lines = [f"GET {path} HTTP/1.0"] + [f"{k}: {v}" for k, v in fields.items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = _recv_all(sock, 5.0, limit=1 << 15)
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].decode(errors="replace")
    assert status_line.startswith("HTTP/"), f"{host}:{port}{path}: not HTTP: {data[:80]!r}"
    return int(status_line.split()[1]), body


def probe_unauthenticated(host: str, port: int) -> str:
    """Connect as a stranger; return "handshake" or "http" once the port has refused every attempt."""
    with _connect(host, port) as sock:
        sock.settimeout(1.0)
        try:
            first = sock.recv(4, socket.MSG_PEEK)
        except TimeoutError:
            first = b""
    where = f"{host}:{port}"
    if first:
        for name, attack in HANDSHAKE_ATTACKS.items():
            with _connect(host, port) as sock:
                _expect_bare_challenge(sock, f"{where} ({name})")
                sock.sendall(attack)
                with_suppressed = _recv_all(sock, 6.0)
                _assert_refused(with_suppressed, f"{where} ({name})")
        return "handshake"
    for path in HTTP_PATHS:
        status, body = http_status(host, port, path)
        assert status in (400, 403, 404, 405), (
            f"{where}{path}: HTTP {status} without credentials: {body[:200]!r}"
        )
    return "http"


__all__ = ["Listener", "http_status", "listening_sockets", "probe_unauthenticated", "process_tree"]
