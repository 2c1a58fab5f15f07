"""Shared fixtures: simulated rigs as real agent processes on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from controller.simrig import SimCamera, SimulatedRig

# Small frames keep the suite fast on 2 cores; the timing path is the same at any size.
TEST_WIDTH = 320
TEST_HEIGHT = 240


@pytest.fixture
def make_rig(tmp_path: Path):
    rigs: list[SimulatedRig] = []

    def factory(n: int = 3, *, cameras: list[SimCamera] | None = None, **kwargs) -> SimulatedRig:
        cams = cameras or [SimCamera(f"cam{i}") for i in range(n)]
        kwargs.setdefault("width", TEST_WIDTH)
        kwargs.setdefault("height", TEST_HEIGHT)
        kwargs.setdefault("bitrate", 1_000_000)
        rig = SimulatedRig(tmp_path / f"rig{len(rigs)}", cams, **kwargs)
        rigs.append(rig)
        rig.start()
        return rig

    yield factory
    for rig in rigs:
        rig.stop()


SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("SSH tests (deploy, SFTP pull) NOT RUN: needs root to run a real sshd on loopback")
    if not Path(SSHD).exists() or shutil.which("ssh-keygen") is None:
        pytest.skip(
            "SSH tests (deploy, SFTP pull) NOT RUN: openssh-server missing "
            "(tools/run-tests installs it as root)"
        )
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    port = free_port()
    config = d / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host_key'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        f"PubkeyAuthentication yes\nStrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
        f"PidFile {d / 'sshd.pid'}\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    proc = subprocess.Popen(
        [SSHD, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=open(d / "sshd.log", "wb")
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()}")
                time.sleep(0.1)
        host_pub = (d / "host_key.pub").read_text().split()
        (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
        yield {"port": port, "key": str(d / "client_key"), "known_hosts": str(d / "known_hosts"), "dir": d}
    finally:
        proc.terminate()
        proc.wait(10)


def pytest_report_header(config):
    return [f"syncrig tests: running as uid {os.getuid()}"]
