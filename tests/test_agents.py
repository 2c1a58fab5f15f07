"""Agents as real processes on loopback: start/stop, bad commands, authentication, duplicate
names, heartbeat auto-stop, reconnect after a server restart, no overwrite."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest

from controller.rig.simulated import SimCamera
from syncrig_agent.contract.grid import period_ns_for_fps
from syncrig_agent.contract.protocol import AuthenticationFailed, RemoteError
from syncrig_agent.contract.protocol.links import connect_peer

from session_checks import assert_slots_accounted, check_camera, wait_for

FPS = 30.0
PERIOD = period_ns_for_fps(FPS)


def files_of(rig, camera: str, session: str) -> Path:
    return rig.data_dir(camera) / session / "raw"


def test_start_stop_on_shared_grid(make_rig) -> None:
    rig = make_rig(3)
    with rig.link() as link:
        started = link.start("s1", PERIOD, FPS, {n: n for n in rig.camera_names})
        assert started["lead_ns"] <= 500_000_000
        assert set(started["cameras"]) == set(rig.camera_names)
        t0 = started["t0_ns"]
        time.sleep(1.0)
        status = link.status()
        assert status["session"]["session_id"] == "s1"
        assert status["server"]["state"] == "recording"
        stopped = link.stop()
    ends = set()
    for name in rig.camera_names:
        summary = stopped["cameras"][name]["summary"]
        assert summary["error"] is None, summary
        assert summary["end_index"] is not None
        ends.add(summary["end_index"])
        cam = check_camera(rig.data_dir(name) / "s1", name)
        assert cam.decoded == cam.pts_lines == summary["frames"] > 20
        assert (cam.grid < summary["end_index"]).all()
        assert abs(int(cam.wall_ns[0]) - t0) < 1_000_000  # the first frame is frame 0 at T0
    assert len(ends) == 1, f"cameras stopped at different grid indices: {ends}"


def test_bad_commands_get_clear_errors_and_link_survives(make_rig) -> None:
    rig = make_rig(2)
    with rig.link() as link:
        with pytest.raises(RemoteError) as err:
            link.request({"type": "explode"})
        assert err.value.code == "unknown_command"
        with pytest.raises(RemoteError) as err:
            link.start("../../etc", PERIOD, FPS, {"cam0": "cam0"})
        assert err.value.code == "bad_field" and "session_id" in str(err.value)
        with pytest.raises(RemoteError) as err:
            link.start("s2", PERIOD, FPS, {"cam0": "cam0", "cam9": "cam9"})
        assert err.value.code == "cameras_missing" and "cam9" in str(err.value)
        with pytest.raises(RemoteError) as err:
            link.start("s2", PERIOD, FPS, {"cam0": "../x"})
        assert err.value.code == "bad_field"
        with pytest.raises(RemoteError) as err:
            link.request({"type": "start", "session_id": "s2", "period_ns": True, "files": {}})
        assert err.value.code == "bad_field" and "period_ns" in str(err.value)
        # Nothing was recorded by any of those, and the link still works.
        assert link.status()["server"]["state"] == "idle"
        assert not any((rig.data_dir(n) / "s2").exists() for n in rig.camera_names)


def test_wrong_secret_is_refused(make_rig) -> None:
    rig = make_rig(1)
    with pytest.raises(AuthenticationFailed):
        connect_peer(
            rig.control_address, b"not-the-secret-at-all-0123456789", {"name": "x", "role": "controller"}
        )
    with pytest.raises(AuthenticationFailed):
        connect_peer(
            ("127.0.0.1", rig.fanout_port),
            b"not-the-secret-at-all-0123456789",
            {"name": "cam7", "role": "client"},
        )
    with rig.link() as link:
        assert link.status()["clients"] == {}


def test_duplicate_camera_name_is_refused(make_rig) -> None:
    rig = make_rig(2)
    with pytest.raises(RemoteError) as err:
        connect_peer(("127.0.0.1", rig.fanout_port), rig.secret, {"name": "cam1", "role": "client"})
    assert err.value.code == "duplicate_name"
    with pytest.raises(RemoteError) as err:
        connect_peer(("127.0.0.1", rig.fanout_port), rig.secret, {"name": "cam0", "role": "client"})
    assert err.value.code == "duplicate_name"
    # A controller may not pose as a camera on the fan-out port, nor a camera on the control port.
    with pytest.raises(RemoteError) as err:
        connect_peer(rig.control_address, rig.secret, {"name": "cam5", "role": "client"})
    assert err.value.code == "wrong_role"
    with rig.link() as link:
        status = link.status()
        assert status["clients"]["cam1"]["connected"]


def test_no_overwrite_of_an_existing_session(make_rig) -> None:
    rig = make_rig(2)
    with rig.link() as link:
        link.start("keep", PERIOD, FPS, {n: n for n in rig.camera_names}, frames=10)
        time.sleep(0.8)
        link.stop()
        digests = {
            p: hashlib.sha256(p.read_bytes()).hexdigest()
            for n in rig.camera_names
            for p in files_of(rig, n, "keep").iterdir()
        }
        with pytest.raises(RemoteError) as err:
            link.start("keep", PERIOD, FPS, {n: n for n in rig.camera_names}, frames=10)
        assert err.value.code == "start_failed" and "overwrite" in str(err.value)
        time.sleep(0.3)
        assert link.status()["server"]["state"] == "idle"
    after = {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for n in rig.camera_names
        for p in files_of(rig, n, "keep").iterdir()
    }
    assert after == digests


def test_client_stops_cleanly_when_server_goes_silent(make_rig) -> None:
    rig = make_rig(2, heartbeat_interval_s=0.2, heartbeat_timeout_s=1.0)
    server = rig.processes["cam0"]
    with rig.link() as link:
        link.start("silent", PERIOD, FPS, {n: n for n in rig.camera_names})
    time.sleep(0.5)
    os.kill(server.pid, signal.SIGSTOP)  # the server hangs: no heartbeats, no STOP
    try:
        report = rig.data_dir("cam1") / "silent" / "cam1.capture.json"
        wait_for(report.exists, 10.0, "cam1 to stop on its own")
    finally:
        os.kill(server.pid, signal.SIGCONT)
    import json

    summary = json.loads(report.read_text())
    assert "heard nothing from the server" in summary["error"]
    cam = check_camera(rig.data_dir("cam1") / "silent", "cam1")
    # Intact: every frame decodes, sidecars agree with the video.
    assert cam.decoded == cam.pts_lines == cam.table_rows == summary["frames"] > 10
    with rig.link() as link:
        link.stop()


def test_client_reconnects_after_server_restart(make_rig) -> None:
    rig = make_rig(3)
    port = rig.fanout_port
    rig.terminate("cam0")
    rig.spawn_server(fanout_port=port)
    rig.wait_connected(timeout=30)
    with rig.link() as link:
        status = link.status()
        assert all(status["clients"][n]["connected"] for n in ("cam1", "cam2"))
        link.start("after", PERIOD, FPS, {n: n for n in rig.camera_names}, frames=15)
        time.sleep(1.0)
        result = link.stop()
    for name in rig.camera_names:
        assert_slots_accounted(result["cameras"][name]["summary"], 15)


def test_stop_at_fixed_frame_count_and_late_stop_does_not_extend(make_rig) -> None:
    rig = make_rig(2)
    with rig.link() as link:
        started = link.start("fixed", PERIOD, FPS, {n: n for n in rig.camera_names}, frames=12)
        assert started["stop_ns"] == started["t0_ns"] + 12 * PERIOD
        time.sleep(1.2)
        result = link.stop()  # arrives after the planned end
        assert result["stop_ns"] == started["stop_ns"]
    for name in rig.camera_names:
        cam = check_camera(rig.data_dir(name) / "fixed", name)
        assert cam.grid.tolist() == list(range(12))


def test_dead_client_does_not_block_start_forever(make_rig) -> None:
    rig = make_rig(3, heartbeat_interval_s=0.2, heartbeat_timeout_s=1.0)
    rig.processes["cam2"].kill()
    with rig.link() as link:
        wait_for(lambda: not link.status()["clients"]["cam2"]["connected"], 5.0, "cam0 to notice cam2 died")
        with pytest.raises(RemoteError) as err:
            link.start("partial", PERIOD, FPS, {n: n for n in rig.camera_names})
        assert err.value.code == "cameras_missing" and "cam2" in str(err.value)
        # The rest of the rig still records.
        link.start("partial", PERIOD, FPS, {"cam0": "cam0", "cam1": "cam1"}, frames=6)
        time.sleep(0.6)
        result = link.stop()
    assert_slots_accounted(result["cameras"]["cam1"]["summary"], 6)


def test_sigterm_during_recording_closes_files_cleanly(make_rig) -> None:
    rig = make_rig(1, cameras=[SimCamera("cam0")])
    with rig.link() as link:
        link.start("term", PERIOD, FPS, {"cam0": "cam0"})
    time.sleep(0.7)
    assert rig.terminate("cam0") == 0
    cam = check_camera(rig.data_dir("cam0") / "term", "cam0")
    assert cam.decoded == cam.pts_lines == cam.table_rows > 5


def test_garbage_on_agent_ports_is_dropped_and_agent_keeps_working(make_rig) -> None:
    import socket
    import struct

    rig = make_rig(2)
    payloads = [
        struct.pack("!I", 0x7FFFFFFF),  # claims 2 GiB
        struct.pack("!I", 100) + b"{",  # truncated body, then EOF
        b"\x00\x00",  # truncated header
        struct.pack("!I", 2) + b"{}",  # a message before any handshake: no type
        struct.pack("!I", 60) + b'{"type":"start","session_id":"evil","period_ns":1000000000}'[:60],
    ]
    for port in (rig.control_port, rig.fanout_port):
        for payload in payloads:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.recv(4096)  # the challenge
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(6)
                try:
                    while sock.recv(4096):
                        pass  # the agent answers with an error and/or closes
                except (ConnectionResetError, TimeoutError):
                    pass
    with rig.link() as link:
        status = link.status()
        assert status["server"]["state"] == "idle" and status["clients"]["cam1"]["connected"]
        assert set(status["clients"]) == {"cam1"}
    assert not any(p.name == "evil" for n in rig.camera_names for p in rig.data_dir(n).glob("*"))


def test_server_notices_a_silent_client(make_rig) -> None:
    rig = make_rig(2, heartbeat_interval_s=0.2, heartbeat_timeout_s=1.0)
    client = rig.processes["cam1"]
    os.kill(client.pid, signal.SIGSTOP)
    try:
        with rig.link() as link:
            wait_for(lambda: not link.status()["clients"]["cam1"]["connected"], 10.0, "cam0 to drop cam1")
            reason = link.status()["clients"]["cam1"]["close_reason"]
            assert "heartbeat" in reason
    finally:
        os.kill(client.pid, signal.SIGCONT)
    # Once it runs again it notices the dead link and reconnects by itself.
    rig.wait_connected(timeout=20)


def test_refused_start_leaves_no_session_directory(make_rig, tmp_path: Path) -> None:
    from controller.rig.cameras import CameraInfo
    from controller.rig.recording import RecordingError, RecordingRequest, record

    rig = make_rig(1, cameras=[SimCamera("cam0")])
    ghost = [*rig.camera_infos(), CameraInfo("cam5", "localhost", "client", 320, 240)]
    with rig.link() as link, pytest.raises(RecordingError, match="cam5"):
        record(link, tmp_path / "sessions", ghost, RecordingRequest(fps=FPS, seconds=1.0))
    # Only the session-number bookkeeping (dotfiles) remains: the number stays used, never reissued.
    assert [p.name for p in (tmp_path / "sessions").iterdir() if not p.name.startswith(".")] == []


def test_fps_must_match_the_period(make_rig) -> None:
    rig = make_rig(1, cameras=[SimCamera("cam0")])
    with rig.link() as link, pytest.raises(RemoteError) as err:
        link.start("mismatch", PERIOD, 1e-300, {"cam0": "cam0"})
    assert err.value.code == "bad_field" and "fps" in str(err.value)
    assert not (rig.data_dir("cam0") / "mismatch").exists()
