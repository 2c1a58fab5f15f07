"""Shared fixtures: simulated rigs as real agent processes on loopback; sockets and authenticated
connection pairs for the protocol tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.rig.simulated import SimCamera, SimulatedRig

from loopback_sshd import SshdUnavailable, check_sshd_available, loopback_sshd
from protocol_support import Pairs

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


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """A real sshd on loopback (tests/loopback_sshd.py); skipped loudly where it cannot run."""
    try:
        check_sshd_available()
    except SshdUnavailable as exc:
        pytest.skip(f"SSH tests (deploy, SFTP pull) NOT RUN: {exc}")
    with loopback_sshd(tmp_path_factory.mktemp("sshd")) as info:
        yield info


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


@pytest.fixture
def pairs() -> Iterator[Pairs]:
    p = Pairs()
    yield p
    p.close()


def pytest_report_header(config):
    return [f"syncrig tests: running as uid {os.getuid()}"]


@pytest.fixture(scope="session")
def pose2sim_demo_dir():
    """Pose2Sim's real 4-camera demo (controller/dataset/sample_data.py); skipped loudly offline."""
    from controller.dataset.sample_data import SampleDataUnavailable, pose2sim_demo

    def get(name: str = "Demo_SinglePerson") -> Path:
        try:
            return pose2sim_demo(name)
        except SampleDataUnavailable as exc:
            pytest.skip(f"REAL-FOOTAGE TEST NOT RUN: {exc}")

    return get
