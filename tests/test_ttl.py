"""TTL out and in: settings, the edge plan, the barcode shape, the line backends (simulated pins and
wires for real; gpiod only as far as this kernel allows: it has no GPIO chip), and a simulated rig
whose cam0 sends TTL out on the shared clock over a wire into cam1's input, then `syncrig align`
on recordings made from that session's own out table."""

from __future__ import annotations

import itertools
import json
import random
import socket
import time

import numpy as np
import pytest

from controller.align.barcodes import decode_barcodes
from syncrig_agent.contract.grid import FrameGrid
from syncrig_agent.contract.ttl import BARCODE, START_MARKER_NS
from syncrig_agent.settings import AgentSettings, SettingsError
from syncrig_agent.timing.camera_clock import SystemClock
from syncrig_agent.ttl.base import InputLine, TtlLineError
from syncrig_agent.ttl.schedule import plan_edges
from syncrig_agent.ttl.simulated import SimulatedLines, sign

WIRE_SECRET = b"a shared secret of the simulated rig"


def _settings(ttl: dict) -> AgentSettings:
    return AgentSettings.from_dict(
        {"name": "cam0", "role": "server", "data_dir": "/tmp/x", "secret_file": "s", "ttl": ttl}
    )


@pytest.mark.parametrize(
    "ttl,message",
    [
        ({"backend": "simulated", "outputs": {"trigger": 5}}, "unknown role 'trigger'"),
        ({"backend": "simulated", "outputs": {"strobe": 5, "barcode": 5}}, "line 5 is already"),
        ({"backend": "simulated", "outputs": {"strobe": 600}}, "0..511"),
        ({"backend": "simulated", "outputs": {"strobe": 5}, "strobe_width_us": 1000}, "boards drop shorter"),
        ({"backend": "gpio"}, "ttl.backend: must be one of none, simulated, gpiod"),
        ({"backend": "gpiod", "chip": "/tmp/chip"}, "/dev/gpiochipN"),
        (
            {
                "backend": "gpiod",
                "outputs": {"strobe": 5},
                "wires": [{"line": 5, "to": "127.0.0.1:9", "to_line": 1}],
            },
            "only simulated pins have wires",
        ),  # fmt: skip
        ({"backend": "simulated", "inputs": [{"line": 3, "name": "a b"}]}, "ttl.inputs[0].name"),
        ({"backend": "simulated", "inputs": [{"line": 3, "edges": "up"}]}, "ttl.inputs[0].edges"),
        ({"backend": "simulated", "pins": {}}, "unknown setting(s): ttl.pins"),
    ],
)
def test_bad_ttl_settings_are_named(ttl, message):
    with pytest.raises(SettingsError) as err:
        _settings(ttl)
    assert message in str(err.value)


def test_the_plan_follows_the_grid():
    grid = FrameGrid(1_000_000_000_000, 33_333_333)
    edges = list(
        itertools.islice(
            plan_edges(grid, {"start": 1, "strobe": 2, "barcode": 3}, 5_000_000, random.Random(1)), 400
        )
    )
    assert [e.target_ns for e in edges] == sorted(e.target_ns for e in edges)
    strobe = [e for e in edges if e.role == "strobe"]
    assert [e.target_ns for e in strobe[0:4]] == [grid.target(0), grid.target(0) + 5_000_000, grid.target(1),
                                                    grid.target(1) + 5_000_000]  # fmt: skip
    start = [e for e in edges if e.role == "start"]
    assert [(e.target_ns - grid.t0_ns, e.level) for e in start] == [(0, 1), (START_MARKER_NS, 0)]
    code = [e for e in edges if e.role == "barcode"]
    assert code[0].target_ns == BARCODE.start_ns(grid.t0_ns, 0) and code[0].level == 1


def test_barcodes_decode_to_what_was_sent():
    rng = random.Random(5)
    values = [rng.getrandbits(BARCODE.bits) for _ in range(20)] + [0, (1 << BARCODE.bits) - 1]
    times, levels = [], []
    for k, value in enumerate(values):
        for offset, level in BARCODE.levels(value):
            times.append(BARCODE.start_ns(0, k) + offset)
            levels.append(level)
    starts, decoded = decode_barcodes(np.array(times), np.array(levels), np.inf)
    assert decoded.tolist() == values
    assert starts.tolist() == [BARCODE.start_ns(0, k) for k in range(len(values))]
    # A code cut by the end of the recording is not a code.
    _, cut = decode_barcodes(
        np.array(times), np.array(levels), BARCODE.start_ns(0, 21) + BARCODE.header_ns + 1
    )
    assert cut.tolist() == values[:21]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_simulated_wire_carries_edges_with_its_latency():
    port = _free_udp_port()
    clock = SystemClock()
    receiver = SimulatedLines(clock, WIRE_SECRET, f"127.0.0.1:{port}")
    receiver.open([], [InputLine(20, "lick", "both")])
    wire = {"line": 6, "to": f"127.0.0.1:{port}", "to_line": 20, "latency_us": 800.0, "jitter_us": 20.0}
    sender = SimulatedLines(clock, WIRE_SECRET, wires=[wire], seed=3)
    sender.open([6], [])
    try:
        sent = []
        for i in range(40):
            sent.append(sender.set(6, 1 - i % 2))
            time.sleep(0.002)
        got = []
        deadline = time.monotonic() + 5
        while len(got) < 40 and time.monotonic() < deadline:
            got += receiver.read_edges(0.2)
        assert [e.level for e in got] == [1 - i % 2 for i in range(40)]
        delay_us = (np.array([e.wall_ns for e in got]) - np.array(sent)) / 1e3
        assert np.all(np.abs(delay_us - 800.0) <= 100.0), delay_us
        with pytest.raises(TtlLineError, match="not an output"):
            sender.set(7, 1)
    finally:
        sender.close()
        receiver.close()


def test_a_simulated_wire_accepts_only_signed_edges_on_loopback():
    """The wire's socket is a listener like any other: a datagram not signed with the rig's shared
    secret (or signed with another), or an edge claiming to arrive far in the future, is dropped;
    a wire to or from a non-loopback address is refused."""
    port = _free_udp_port()
    clock = SystemClock()
    receiver = SimulatedLines(clock, WIRE_SECRET, f"127.0.0.1:{port}")
    receiver.open([], [InputLine(20, "lick", "both")])
    try:
        now = time.time_ns()
        payload = json.dumps({"line": 20, "level": 1, "realtime_ns": now}).encode()
        far = json.dumps({"line": 20, "level": 1, "realtime_ns": now + 3_600 * 10**9}).encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for datagram in (
                payload,
                sign(b"another rig's secret 0123456789", payload),
                sign(WIRE_SECRET, far),
            ):
                s.sendto(datagram, ("127.0.0.1", port))
            time.sleep(0.3)
            assert receiver.read_edges(0.3) == []
            s.sendto(sign(WIRE_SECRET, payload), ("127.0.0.1", port))
            got = receiver.read_edges(2.0)
        assert [(e.line, e.level) for e in got] == [(20, 1)]
    finally:
        receiver.close()
    with pytest.raises(TtlLineError, match="not a loopback address"):
        SimulatedLines(clock, WIRE_SECRET, "0.0.0.0:0").open([], [InputLine(20, "lick", "both")])
    wire = {"line": 6, "to": "192.0.2.1:9", "to_line": 20}
    with pytest.raises(TtlLineError, match="not a loopback address"):
        SimulatedLines(clock, WIRE_SECRET, wires=[wire]).open([6], [])
    with pytest.raises(TtlLineError, match="shared secret"):
        SimulatedLines(clock, b"", wires=[{"line": 6, "to": "127.0.0.1:9", "to_line": 20}]).open([6], [])


def test_gpiod_backend_imports_and_refuses_a_missing_chip():
    """This kernel has no GPIO character device: only the import, the request's configuration and
    the refusal can be tested here; on a Pi, a jumper from an output to an input line is the check."""
    gpiod = pytest.importorskip(
        "gpiod", reason="gpiod (libgpiod 2.x bindings) not installed: pip install gpiod"
    )
    from gpiod.line import Clock, Direction, Edge

    from syncrig_agent.ttl.gpiod_lines import GpiodLines

    assert Clock.MONOTONIC and Direction.OUTPUT and Edge.BOTH and gpiod.api_version
    lines = GpiodLines(SystemClock(), "/dev/gpiochip99")
    with pytest.raises(TtlLineError, match="/dev/gpiochip99 does not exist"):
        lines.open([17], [InputLine(27, "trigger")])
    settings = _settings(
        {"backend": "gpiod", "outputs": {"strobe": 17}, "inputs": [{"line": 27, "name": "laser"}]}
    )
    assert settings.ttl.enabled and settings.ttl.chip == "/dev/gpiochip0"


def test_deploy_gives_the_agent_its_gpio_lines_without_root(tmp_path):
    from test_deploy_sshd import stand_in_templates

    from controller.deploy import DeployOptions, plan_rig
    from controller.rig.config import CameraEntry, ConfigError, RigConfig

    ttl = {"outputs": {"strobe": 17, "barcode": 27}, "inputs": [{"line": 22, "name": "laser"}]}
    cams = [CameraEntry("cam0", "10.0.0.10", "server", ttl=ttl), CameraEntry("cam1", "10.0.0.11")]
    plans = plan_rig(RigConfig(cameras=cams), DeployOptions(templates=stand_in_templates(tmp_path / "t")))
    with_ttl, without = plans
    dests = {f.dest: f for f in with_ttl.files}
    rule = dests["/etc/udev/rules.d/60-syncrig-gpio.rules"].content
    assert 'KERNEL=="gpiochip[0-9]*", GROUP="gpio", MODE="0660"' in rule
    assert "g gpio -" in dests["/etc/sysusers.d/syncrig-gpio.conf"].content
    assert "SupplementaryGroups=systemd-journal gpio" in with_ttl.unit("syncrig-agent.service")
    assert "SupplementaryGroups=systemd-journal\n" in without.unit("syncrig-agent.service")
    assert "User=" in with_ttl.unit("syncrig-agent.service")  # the agent's own user, never root
    assert with_ttl.agent_settings["ttl"]["backend"] == "gpiod"
    assert with_ttl.agent_settings["ttl"]["outputs"] == {"strobe": 17, "barcode": 27}
    assert without.agent_settings["ttl"]["backend"] == "none"
    assert AgentSettings.from_dict(with_ttl.agent_settings).ttl.enabled  # what the Pi will load
    bad = [CameraEntry("cam0", "10.0.0.10", "server", ttl={"outputs": {"strobe": 17}, "wires": []})]
    with pytest.raises(ConfigError, match=r"cameras\[0\]\.ttl"):
        RigConfig(cameras=bad).validate()
    bad = [CameraEntry("cam0", "10.0.0.10", "server", ttl={"outputs": {"strobe": 17, "start": 17}})]
    with pytest.raises(ConfigError, match=r"cameras\[0\]\.ttl\.outputs\.start: line 17 is already"):
        RigConfig(cameras=bad).validate()


def test_a_strobe_wider_than_half_a_period_is_refused_at_start(tmp_path):
    from syncrig_agent.camera_agent import CameraAgent
    from syncrig_agent.contract.protocol import RequestError

    settings = AgentSettings.from_dict(
        {"name": "cam0", "role": "server", "data_dir": str(tmp_path), "secret_file": "s", "width": 320,
         "height": 240, "ttl": {"backend": "simulated", "outputs": {"strobe": 6}, "strobe_width_us": 10000}}
    )  # fmt: skip
    agent = CameraAgent(settings)
    try:
        with pytest.raises(
            RequestError, match=r"strobe_width_us: 10000 µs is more than half the frame period"
        ):
            agent.start("20260101-000000-0001", time.time_ns() + 10**9, 16_666_667, 60.0, None)
        assert not (tmp_path / "20260101-000000-0001").exists()  # refused before anything was created
    finally:
        agent.close()
