"""Multi-host tests with a real network in between: cam0 and two clients as real agent processes,
each in its own network namespace, joined by veth pairs through a router namespace, with delay,
jitter and loss on the links (tests/netns_support.py says how).

- a recording started with delay on the fan-out links starts on the same grid index everywhere;
- a client partitioned mid-recording stops on its own after the heartbeat timeout with intact
  files, while cam0 and the other client keep recording, stop cleanly and report the lost client;
- once the partition heals the client rejoins and records the next session normally.

Each test runs with `tc netem` when the kernel has it and with the userspace link emulator
always; needs root and `ip netns` (skipped with the reason otherwise). Figures go to
tests/output/netns_figures.json and stdout (-s)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from controller.rig.recording import RecordingRequest, begin_recording, finish_recording
from controller.rig.simulated import SimCamera

from netns_support import (
    RELAY_CONTROL_PORT,
    RELAY_FANOUT_BASE,
    Impairment,
    LinkEmulator,
    NetnsRig,
    Topology,
    cleanup_leftovers,
    netem_available,
    netns_unavailable_reason,
)
from session_checks import assert_slots_accounted, check_session, wait_for

UNAVAILABLE = netns_unavailable_reason()
pytestmark = pytest.mark.skipif(
    UNAVAILABLE is not None, reason=f"MULTI-HOST NETNS TESTS NOT RUN: {UNAVAILABLE}"
)

FPS = 30.0
HEARTBEAT_INTERVAL_S = 0.2
HEARTBEAT_TIMEOUT_S = 1.0
CAMERAS = ["cam0", "cam1", "cam2"]
# Client ↔ cam0 (fan-out) links: one way 25 ms ± 8 ms, and loss. The controller ↔ cam0 link: 5 ms.
FANOUT = Impairment(delay_ms=25.0, jitter_ms=8.0, loss=0.02)
CONTROL = Impairment(delay_ms=5.0, jitter_ms=1.0)
FIGURES = Path(__file__).parent / "output" / "netns_figures.json"


@dataclass
class Network:
    mode: str  # "netem" or "relay"
    topology: Topology
    rig: NetnsRig
    emulator: LinkEmulator | None
    sessions: Path


def _record_figures(mode: str, key: str, values: dict) -> None:
    print(f"[netns {mode}] {key}: {json.dumps(values)}")
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data.setdefault(mode, {})[key] = values
    FIGURES.write_text(json.dumps(data, indent=1))


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_namespaces():
    """Safety net: namespaces/veths of earlier, killed runs go (only those whose pid is gone)."""
    if UNAVAILABLE is None:
        cleanup_leftovers()
    yield
    if UNAVAILABLE is None:
        cleanup_leftovers()


@pytest.fixture(scope="module", params=["netem", "relay"])
def network(request, tmp_path_factory) -> Network:
    mode = request.param
    if mode == "netem":
        ok, why = netem_available()
        if not ok:
            pytest.skip(f"tc netem NOT RUN on this kernel ({why}); the relay variant covers the impairment")
    workdir = tmp_path_factory.mktemp(f"netns-{mode}")
    topology = Topology(CAMERAS).up()
    emulator = None
    rig = None
    try:
        relay_ports: dict[str, int] = {}
        if mode == "netem":
            topology.netem("cam0", CONTROL)  # every path to cam0 crosses this link
            for name in CAMERAS[1:]:
                topology.netem(name, FANOUT)
        else:
            for name in CAMERAS:
                topology.rate_limit(name)
            cam0 = topology.addresses["cam0"]
            routes = [
                {"name": "control", "listen": f"{topology.router_address}:{RELAY_CONTROL_PORT}",
                 "target": f"{cam0}:5006", "delay_ms": CONTROL.delay_ms, "jitter_ms": CONTROL.jitter_ms},
            ] + [
                {"name": name, "listen": f"{topology.router_address}:{RELAY_FANOUT_BASE + i}",
                 "target": f"{cam0}:5005", "delay_ms": FANOUT.delay_ms, "jitter_ms": FANOUT.jitter_ms,
                 "loss": FANOUT.loss, "stall_ms": 200.0}
                for i, name in enumerate(CAMERAS[1:], start=1)
            ]  # fmt: skip
            emulator = LinkEmulator(topology, workdir / "emulator", routes).start()
            relay_ports = dict(emulator.ports)
        rig = NetnsRig(
            workdir / "rig",
            [SimCamera(n) for n in CAMERAS],
            topology,
            relay_ports=relay_ports,
            width=160,
            height=128,
            bitrate=500_000,
            heartbeat_interval_s=HEARTBEAT_INTERVAL_S,
            heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S,
        )
        rig.start(timeout=60.0)
        yield Network(mode, topology, rig, emulator, workdir / "sessions")
    finally:
        if rig is not None:
            rig.stop()
        if emulator is not None:
            stats = emulator.stop()
            if stats:
                _record_figures(mode, "emulator", stats)
        topology.close()


def _wait_rtts(rig: NetnsRig, names: list[str]) -> dict[str, float]:
    """cam0's median heartbeat RTT to each client (ms), once it has samples."""

    def measured() -> dict | None:
        with rig.link() as link:
            clients = link.status()["clients"]
        rtts = {n: clients[n]["rtt_ns"] for n in names if clients.get(n, {}).get("connected")}
        return rtts if len(rtts) == len(names) and all(rtts.values()) else None

    return {n: v / 1e6 for n, v in wait_for(measured, 20.0, "RTT samples on every fan-out link").items()}


def test_start_on_the_same_grid_index_despite_link_delay(network: Network) -> None:
    rig = network.rig
    rtts = _wait_rtts(rig, CAMERAS[1:])
    # The impairment is really in the path: each fan-out RTT holds two one-way delays.
    for name, rtt in rtts.items():
        assert rtt > FANOUT.delay_ms, f"{name}: RTT {rtt:.1f} ms, the delay is not on the link"
    with rig.link() as link:
        active = begin_recording(
            link, network.sessions, rig.camera_infos(), RecordingRequest(fps=FPS, seconds=2.0)
        )
        session = finish_recording(link, active)
    lead_ms = active.start_info["lead_ns"] / 1e6
    # START reaches every client long before T0: one-way delay (≈ RTT/2) ≪ lead.
    assert max(rtts.values()) / 2 < lead_ms / 3, (rtts, lead_ms)
    manifest, cams = check_session(session)
    firsts, first_pixels = {}, {}
    for entry in manifest.cameras:
        cam = cams[entry["name"]]
        assert entry["error"] is None, entry
        assert cam.decoded == cam.pts_lines == cam.table_rows == entry["frames"] > 0
        firsts[cam.name] = int(cam.grid[0])
        first_pixels[cam.name] = int(cam.pixel_ns[0])
        # Frame n is at T0 + n·P by the pixels' true capture time, and the .pts says so too.
        assert np.abs(cam.pixel_ns - (manifest.t0_ns + cam.grid * manifest.period_ns)).max() < 1_000_000
        assert np.abs(manifest.t0_ns + cam.pts_ns - cam.pixel_ns).max() < 1_000_000
        assert entry["frames"] + entry["drops"]["late_skips"] == entry["expected_frames"] == 60
    assert set(firsts.values()) == {0}, f"first grid index per camera: {firsts}"
    spread_us = (max(first_pixels.values()) - min(first_pixels.values())) / 1e3
    assert spread_us < 1000, f"first frames' true capture times {spread_us:.0f} µs apart"
    _record_figures(
        network.mode,
        "start",
        {"rtt_ms": rtts, "lead_ms": lead_ms, "first_grid_index": firsts, "first_frame_spread_us": spread_us},
    )


def test_partitioned_client_stops_cleanly_then_rejoins(network: Network) -> None:
    rig, topology = network.rig, network.topology
    rig.wait_connected(timeout=30.0)
    with rig.link() as link:
        active = begin_recording(
            link, network.sessions, rig.camera_infos(), RecordingRequest(fps=FPS, seconds=None)
        )
        time.sleep(max(0.0, (active.t0_ns - time.time_ns()) / 1e9) + 1.0)
        cut_ns, cut = time.time_ns(), time.monotonic()
        topology.set_link("cam2", up=False)
        try:
            lost = wait_for(
                lambda: (c := link.status()["clients"]["cam2"]) and not c["connected"] and c,
                HEARTBEAT_TIMEOUT_S + 10.0,
                "cam0 to report cam2 lost",
            )
            noticed_s = time.monotonic() - cut
            report = rig.data_dir("cam2") / active.session_id / "cam2.capture.json"
            wait_for(report.exists, HEARTBEAT_TIMEOUT_S + 10.0, "cam2 to stop on its own")
            time.sleep(0.5)  # cam0 and cam1 keep recording without it
            status = link.status()
            assert status["server"]["state"] == "recording"
            assert status["clients"]["cam1"]["status"]["state"] == "recording"
            session = finish_recording(link, active, stop_now=True)
        finally:
            healed = time.monotonic()
            topology.set_link("cam2", up=True)
    assert "heartbeat" in (lost["close_reason"] or ""), lost
    manifest, cams = check_session(session)
    entries = {e["name"]: e for e in manifest.cameras}
    lost_entry, lost_cam = entries["cam2"], cams["cam2"]
    assert "heard nothing from the server" in (lost_entry["error"] or ""), lost_entry
    # Intact: every frame decodes; .pts and frames.csv agree with the video frame for frame.
    assert lost_cam.decoded == lost_cam.pts_lines == lost_cam.table_rows == lost_entry["frames"] > 10
    stopped_after_s = (int(lost_cam.wall_ns[-1]) - cut_ns) / 1e9
    # It went on recording until the heartbeat timeout, then stopped by itself.
    assert HEARTBEAT_TIMEOUT_S * 0.5 < stopped_after_s < HEARTBEAT_TIMEOUT_S + 5.0, stopped_after_s
    for name in ("cam0", "cam1"):
        entry, cam = entries[name], cams[name]
        assert entry["error"] is None, entry
        assert cam.decoded == cam.pts_lines == cam.table_rows == entry["frames"]
        assert entry["frames"] + entry["drops"]["late_skips"] == entry["expected_frames"], entry
        assert int(cam.grid[-1]) > int(lost_cam.grid[-1]) + FPS * 0.5  # it outlived the lost client
    # The lost client is reported in the manifest (its own summary says why it stopped early): the
    # slots after its last frame are camera_lost, and `lost` says why STOP did not reach it.
    assert lost_entry["drops"]["camera_lost"] > 0 and lost_entry["lost"]["reason"], lost_entry

    # (c) The partition heals: cam2 reconnects by itself and records the next session normally.
    rig.wait_connected(timeout=30.0, names=["cam2"])
    rejoin_s = time.monotonic() - healed
    with rig.link() as link:
        active = begin_recording(
            link, network.sessions, rig.camera_infos(), RecordingRequest(fps=FPS, seconds=1.5)
        )
        session = finish_recording(link, active)
    manifest, cams = check_session(session)
    for entry in manifest.cameras:
        cam = cams[entry["name"]]
        summary = json.loads((session / "raw" / f"{cam.name}.capture.json").read_text())
        assert_slots_accounted(summary, 45)
        assert cam.decoded == cam.pts_lines == cam.table_rows == entry["frames"]
        assert int(cam.grid[0]) == 0
    _record_figures(
        network.mode,
        "partition",
        {
            "heartbeat_timeout_s": HEARTBEAT_TIMEOUT_S,
            "cam0_noticed_after_s": round(noticed_s, 3),
            "cam2_last_frame_after_cut_s": round(stopped_after_s, 3),
            "cam2_frames": lost_entry["frames"],
            "rejoined_after_heal_s": round(rejoin_s, 3),
        },
    )
