"""Host keys: every connection is checked against known_hosts. An unknown host is refused until
someone who saw its fingerprint confirmed it (CLI prompt, UI button, or --accept-new-host-keys);
a key that differs from the remembered one is always refused (StrictHostKeyChecking=yes, where
SqueakShot's installer had =no)."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from controller.deploy.errors import DeployError


class HostKeyUnknown(DeployError):
    pass


class HostKeyChanged(DeployError):
    pass


def known_hosts_name(host: str, port: int) -> str:
    host = host.strip("[]")
    return host if port == 22 else f"[{host}]:{port}"


def fingerprint(key) -> str:  # noqa: ANN001 (a paramiko PKey)
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -lf` and the ssh prompt show it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


@dataclass
class HostKeyInfo:
    camera: str
    host: str
    port: int
    status: str  # "known" | "unknown" | "changed" | "unreachable"
    key_type: str = ""
    fingerprint: str = ""
    message: str = ""
    key: object = None  # the paramiko PKey the host presented (kept to remember it)

    def to_dict(self) -> dict:
        return {
            "camera": self.camera,
            "host": self.host,
            "port": self.port,
            "status": self.status,
            "key_type": self.key_type,
            "fingerprint": self.fingerprint,
            "message": self.message,
        }


def load_known_hosts(path: Path):  # noqa: ANN201 (paramiko.HostKeys)
    import paramiko

    keys = paramiko.HostKeys()
    if path.exists():
        keys.load(str(path))
    return keys


def changed_message(name: str, offered_type: str, offered_fp: str, known: dict, path: Path) -> str:
    remembered = ", ".join(f"{t} {fingerprint(k)}" for t, k in known.items())
    return (
        f"HOST KEY CHANGED for {name}: it presented {offered_type} {offered_fp}, but {path} remembers "
        f"{remembered}. This can be a reinstalled Pi or someone in the middle; refusing. If the Pi was "
        f"reinstalled, remove the old key (ssh-keygen -R '{name}' -f {path}) and deploy again."
    )


def unknown_message(name: str, key_type: str, fp: str, path: Path) -> str:
    return (
        f"host key of {name} is not in {path}: {key_type} {fp}. Compare it with the Pi's own "
        f"(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub on the Pi), then confirm it when deploying: at the "
        f"prompt, in the UI, or with --accept-new-host-keys"
    )


def classify(camera: str, host: str, port: int, key, path: Path) -> HostKeyInfo:  # noqa: ANN001
    """Compare a presented key with known_hosts."""
    name = known_hosts_name(host, port)
    known = load_known_hosts(path).lookup(name) or {}
    info = HostKeyInfo(camera, host, port, "known", key.get_name(), fingerprint(key), key=key)
    if not known:
        info.status = "unknown"
        info.message = unknown_message(name, info.key_type, info.fingerprint, path)
    elif known.get(key.get_name()) != key:
        # A different key, or a key type known_hosts has nothing for while it has another one:
        # both are refused, so a server cannot dodge the check by offering another algorithm.
        info.status = "changed"
        info.message = changed_message(name, info.key_type, info.fingerprint, dict(known), path)
    return info


def scan_host_key(camera: str, host: str, port: int, path: Path, timeout: float = 10.0) -> HostKeyInfo:
    """Fetch the key the host presents (key exchange only, no authentication) and classify it.
    Offers the remembered key type first, as paramiko's connect does, so both see the same key."""
    import paramiko

    name = known_hosts_name(host, port)
    known = load_known_hosts(path).lookup(name) or {}
    try:
        sock = socket.create_connection((host.strip("[]"), port), timeout=timeout)
    except OSError as exc:
        return HostKeyInfo(camera, host, port, "unreachable", message=f"cannot connect to {name}: {exc}")
    transport = paramiko.Transport(sock)
    try:
        if known:
            opts = transport.get_security_options()
            first = list(known.keys())[0]
            opts.key_types = [first] + [t for t in opts.key_types if t != first]
        transport.start_client(timeout=timeout)
        key = transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        return HostKeyInfo(camera, host, port, "unreachable", message=f"{name}: SSH handshake failed: {exc}")
    finally:
        transport.close()
    return classify(camera, host, port, key, path)


def remember_host_key(path: Path, info: HostKeyInfo) -> None:
    """Append the confirmed key to known_hosts (created 0600 in a 0700 directory if missing)."""
    if info.key is None or info.status != "unknown":
        raise DeployError(f"{info.camera}: only an unknown, confirmed host key can be remembered")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{known_hosts_name(info.host, info.port)} {info.key.get_name()} {info.key.get_base64()}\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0), 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as fh:
        fh.write(line)


class StrictHostKeyPolicy:
    """paramiko policy for every SSH connection to a Pi (deploy/ssh.py, for deploy and pull): a host
    missing from known_hosts is refused with its fingerprint; one known under another key type
    counts as changed."""

    def __init__(self, camera: str, path: Path) -> None:
        self.camera = camera
        self.path = path

    def missing_host_key(self, client, hostname: str, key) -> None:  # noqa: ANN001
        known = client.get_host_keys().lookup(hostname) or {}
        fp = fingerprint(key)
        if known:
            raise HostKeyChanged(changed_message(hostname, key.get_name(), fp, dict(known), self.path))
        raise HostKeyUnknown(unknown_message(hostname, key.get_name(), fp, self.path))


def scan_host_keys(cameras: list, port: int, path: Path, timeout: float = 10.0) -> list[HostKeyInfo]:
    """`scan_host_key` for every camera (CameraEntry-like: .name, .host) in parallel, in order."""
    with ThreadPoolExecutor(max_workers=max(1, len(cameras))) as pool:
        return list(pool.map(lambda c: scan_host_key(c.name, c.host, port, path, timeout), cameras))
