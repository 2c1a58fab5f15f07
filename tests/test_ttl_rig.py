"""A simulated rig with TTL: cam0 (real agent process) sends start, strobe and barcode on its
virtual pins on the shared clock; a simulated wire (latency 500 µs, jitter 20 µs) carries the
strobe into cam1's input. Then `syncrig align` maps recordings made from this session's own out
table (their own clock) in every format, and `syncrig record --ttl-out` works from the command line."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from controller.cli.main import main
from controller.rig.recording import RecordingRequest, record
from controller.rig.simulated import SIM_TTL_LINES, SimCamera
from controller.transfer import Collection
from syncrig_agent.contract.formats import read_manifest
from syncrig_agent.contract.formats.ttl import read_ttl_in, read_ttl_out
from syncrig_agent.contract.layout import SessionLayout

LATENCY_US = 500.0


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sent_count(out: dict, line: int) -> int:
    return int((out["line"] == line).sum())


def test_ttl_out_on_the_grid_over_a_wire_and_aligned(make_rig, tmp_path):
    port = _free_udp_port()
    strobe = SIM_TTL_LINES["strobe"]
    wire = {
        "line": strobe,
        "to": f"127.0.0.1:{port}",
        "to_line": 20,
        "latency_us": LATENCY_US,
        "jitter_us": 20.0,
    }
    cams = [
        SimCamera("cam0", ttl={"backend": "simulated", "outputs": SIM_TTL_LINES, "wires": [wire]}),
        SimCamera(
            "cam1",
            ttl={
                "backend": "simulated",
                "sim_listen": f"127.0.0.1:{port}",
                "inputs": [{"line": 20, "name": "strobe_in"}],
            },
        ),  # fmt: skip
    ]
    rig = make_rig(cameras=cams, spin_us=200)
    with rig.link() as link:
        session = record(
            link,
            tmp_path / "sessions",
            rig.camera_infos(),
            RecordingRequest(fps=30, seconds=7.5),
            collection=Collection(stream=False, secret_file=rig.secret_file),
        )
    manifest = read_manifest(session)
    ttl = SessionLayout(session).ttl
    out = read_ttl_out(ttl.out_csv("cam0"))
    # Every strobe pulse is on a grid slot the cameras recorded, rising at Tn, never early.
    rise = (out["role"] == "strobe") & (out["level"] == 1)
    n = (out["target_ns"][rise] - manifest.t0_ns) / manifest.period_ns
    assert (
        np.array_equal(n, np.arange(rise.sum())) and rise.sum() == manifest.camera("cam0")["expected_frames"]
    )
    assert np.all(out["wall_ns"] >= out["target_ns"])
    assert set(out["role"]) == {"start", "strobe", "barcode"}
    assert out["level"][out["line"] == strobe][-1] == 0  # left low
    report = manifest.camera("cam0")["ttl"]
    assert report["out"]["edges"] == out["edge"].size and report["error"] is None
    assert manifest.camera("cam1")["ttl"]["in"]["edges"] == sent_count(out, strobe)
    # The wire: TTL-in minus TTL-out within the latency ± 100 µs (both clocks are the host's here).
    seen = read_ttl_in(ttl.in_csv("cam1"))
    sent = out["line"] == strobe
    assert seen["wall_ns"].size == sent.sum()
    assert np.array_equal(seen["level"], out["level"][sent])
    delay_us = (seen["wall_ns"] - out["wall_ns"][sent]) / 1e3
    assert np.all(np.abs(delay_us - LATENCY_US) <= 100.0), (delay_us.min(), delay_us.max())

    pytest.importorskip("neo", reason="align's readers need neo (the test extra installs it)")
    pytest.importorskip("soundfile", reason="align's audio reader needs soundfile (the test extra)")
    from controller.align import synthetic as sy
    from controller.align.run import align_session, session_trains

    trains = {t.role: t for t in session_trains(session)}
    rng = np.random.default_rng(11)
    cases = [
        ("barcode", "csv", 30_000, lambda e, d: sy.write_csv(e, d / "daq.csv"), 0),
        ("barcode", "wav", 250_000, lambda e, d: sy.write_wav(e, d / "usv.wav", channels=1), 0),
        ("strobe", "openephys", 30_000, lambda e, d: sy.write_openephys(e, d / "oe", line=3), 3),
        ("strobe", "spikeglx", 30_000, lambda e, d: sy.write_spikeglx(e, d / "sg", line=2), 2),
    ]
    for role, fmt, rate, write, channel in cases:
        clock = sy.ExternalClock(lead_s=2.0, ppm=-100.0 if rate == 30_000 else 100.0, rate_hz=rate)
        # 7.5 s hold two barcodes, both needed: missing pulses only on the strobe here (test_align.py
        # loses pulses from long barcode trains)
        missing = 0 if role == "barcode" else 2
        edges = sy.synthesize(trains[role].times_ns, trains[role].levels, clock, rng, 1000.0, missing, 2)
        folder = tmp_path / f"{fmt}-{role}"
        folder.mkdir()
        summary = align_session(session, write(edges, folder), fmt, channel)
        assert summary["role"] == role
        limit_us = 1e6 / rate if fmt != "csv" else 2.0
        assert summary["residual_us"]["max"] <= limit_us, (fmt, summary["residual_us"])
        assert summary["slope"] == pytest.approx(clock.slope, abs=2e-6)


def test_record_cli_sends_ttl_from_the_named_camera(tmp_path, capsys):
    out = tmp_path / "sessions"
    argv = ["record", "--sim", "2", "--seconds", "2", "--out", str(out), "--quiet", "--no-stream"]
    assert (
        main(
            [*argv, "--ttl-out", "strobe,start", "--ttl-camera", "cam1", "--width", "320", "--height", "240"]
        )
        == 0
    )
    session = next(p for p in out.iterdir() if p.is_dir())
    ttl = SessionLayout(session).ttl
    assert sorted(ttl.out_files()) == ["cam1"]
    table = read_ttl_out(ttl.out_csv("cam1"))
    assert set(table["role"]) == {"strobe", "start"}
    capsys.readouterr()
    assert main([*argv, "--ttl-out", "strobe", "--ttl-camera", "cam7"]) == 2
    assert "--ttl-camera: no camera 'cam7'" in capsys.readouterr().err


def test_a_ttl_input_gates_a_recording(make_rig, tmp_path):
    """An input marked `record` on cam0 (a simulated pin; the "device" sends edges over the wire's
    own protocol): high starts a recording through the controller, low stops it; the falling edge
    is in the session's in table."""
    import json
    import time

    from syncrig_agent.contract.protocol import load_secret
    from syncrig_agent.ttl.simulated import sign

    from web_support import app_client, controller_for

    port = _free_udp_port()
    gate = {"line": 21, "name": "gate", "record": True}
    rig = make_rig(
        cameras=[
            SimCamera(
                "cam0", ttl={"backend": "simulated", "sim_listen": f"127.0.0.1:{port}", "inputs": [gate]}
            )
        ]
    )
    runtime = controller_for(rig, tmp_path / "ctl")

    secret = load_secret(rig.secret_file)  # the wire's datagrams are signed like every rig message

    def edge(level: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            payload = json.dumps({"line": 21, "level": level, "realtime_ns": time.time_ns()}).encode()
            s.sendto(sign(secret, payload), ("127.0.0.1", port))

    def wait_for(state: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while runtime.rig.recording_state != state:
            assert time.monotonic() < deadline, f"still {runtime.rig.recording_state}, wanted {state}"
            time.sleep(0.05)

    try:
        time.sleep(1.0)  # the controller has seen the gate's first status
        edge(1)
        wait_for("recording")
        time.sleep(1.5)
        edge(0)
        wait_for("idle", 60.0)
        # The Record page's card says which line the camera reads, and that it gates recording.
        card = app_client(runtime).get_json("/api/status")["cameras"][0]
        assert card["ttl"]["lines"]["inputs"] == [21] and card["ttl"]["inputs"]["gate"]["record"] is True
    finally:
        runtime.close()
    sessions = [p for p in runtime.sessions_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(sessions) == 1
    seen = read_ttl_in(SessionLayout(sessions[0]).ttl.in_csv("cam0"))
    assert seen["name"].tolist()[-1] == "gate" and seen["level"].tolist()[-1] == 0
    assert read_manifest(sessions[0]).camera("cam0")["frames"] > 0
