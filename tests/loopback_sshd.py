"""A real OpenSSH server on 127.0.0.1 with throw-away host and client keys: the "Pi" for the deploy
and SFTP pull tests and for the pull benchmark (one launcher for all of them)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SSHD = "/usr/sbin/sshd"


class SshdUnavailable(RuntimeError):
    """Why a real sshd cannot run here (the caller skips, loudly)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_sshd_available() -> None:
    if os.geteuid() != 0:
        raise SshdUnavailable("needs root to run a real sshd on loopback")
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        raise SshdUnavailable("openssh-server missing (tools/run-tests installs it as root)")


@contextlib.contextmanager
def loopback_sshd(
    d: Path,
    address: str = "127.0.0.1",
    port: int | None = None,
    env: dict[str, str] | None = None,
    sftp_start_dir: Path | None = None,
) -> Iterator[dict]:
    """Run sshd until the block ends; yields port, client key, known_hosts file and the dir.

    `address` may be any 127.x.y.z (one machine, several "Pis"); `env` is set in every session
    (sshd SetEnv, e.g. a PATH with shims first); `sftp_start_dir` is where SFTP sessions start,
    i.e. the "home directory" the deploy sees."""
    check_sshd_available()
    d.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        if not (d / name).exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = port or free_port()
    config = d / "sshd_config"
    set_env = "".join(f" {k}={v}" for k, v in (env or {}).items())
    sftp = "internal-sftp" + (f" -d {sftp_start_dir}" if sftp_start_dir else "")
    config.write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PubkeyAuthentication yes\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        f"PidFile {d / 'sshd.pid'}\nSubsystem sftp {sftp}\n" + (f"SetEnv{set_env}\n" if set_env else "")
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    with open(d / "sshd.log", "wb") as log:
        proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((address, port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {(d / 'sshd.log').read_text()}") from None
                time.sleep(0.1)
        host_pub = (d / "host_key.pub").read_text().split()
        (d / "known_hosts").write_text(f"[{address}]:{port} {host_pub[0]} {host_pub[1]}\n")
        yield {
            "port": port,
            "address": address,
            "key": str(d / "client_key"),
            "known_hosts": str(d / "known_hosts"),
            "dir": d,
        }
    finally:
        proc.terminate()
        proc.wait(10)
