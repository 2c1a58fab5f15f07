"""`syncrig align`: external recordings made from a session's TTL out table with their own clock
(seconds of offset, ±100 ppm, 30 kHz and 250 kHz, edge jitter, missing and spurious pulses), in
each format's real layout, read back through neo/soundfile; the map must come back with every
matched edge within one external sample, and wrong files must be refused with the reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("neo", reason="syncrig align's ephys readers need neo (the test extra installs it)")
pytest.importorskip("soundfile", reason="syncrig align's audio reader needs soundfile (the test extra)")

from controller.align import synthetic as sy  # noqa: E402
from controller.align.edges import AlignError  # noqa: E402
from controller.align.run import align_session, session_trains  # noqa: E402
from controller.cli.main import main  # noqa: E402
from syncrig_agent.contract.layout import SessionLayout  # noqa: E402

WRITERS = {
    "csv": lambda e, d: sy.write_csv(e, d / "events.csv"),
    "wav": lambda e, d: sy.write_wav(e, d / "mic.wav", channels=1),
    "openephys": lambda e, d: sy.write_openephys(e, d / "oe", line=1),
    "spikeglx": lambda e, d: sy.write_spikeglx(e, d / "sglx", line=0),
    "intan": lambda e, d: sy.write_intan(e, d / "rat.rhd", line=2),
}
CHANNEL = {"openephys": 1, "intan": 2}


def _external(session, role, fmt, clock, tmp_path, seed=1, missing=3, spurious=3, session_of=None):
    train = next(t for t in session_trains(session_of or session) if t.role == role)
    edges = sy.synthesize(
        train.times_ns, train.levels, clock, np.random.default_rng(seed), 1000.0, missing, spurious
    )
    folder = tmp_path / f"ext-{fmt}-{role}-{seed}"
    folder.mkdir()
    return WRITERS[fmt](edges, folder)


def _check(summary, clock, seconds):
    sample_us = 1e6 / clock.rate_hz
    if summary["sample_rate_hz"] is not None:
        assert summary["sample_rate_hz"] == pytest.approx(clock.rate_hz)
    limit = sample_us if summary["sample_rate_hz"] else 2.0  # CSV: exact times, ±1 µs jitter
    assert summary["residual_us"]["max"] <= limit, summary["residual_us"]
    # the map itself: an instant anywhere in the session lands within a sample of the truth
    t = np.array([0.0, seconds * 1e9])
    truth = clock.external_s(t)
    got = (t - summary["offset_ns"]) / (summary["slope"] * 1e9)
    assert np.abs(got - truth).max() * 1e6 <= limit


@pytest.mark.parametrize(
    "fmt,role,rate,ppm,seconds",
    [
        ("csv", "barcode", 30_000, 100.0, 600),  # the 10-minute session
        ("csv", "strobe", 30_000, -100.0, 600),
        ("openephys", "barcode", 30_000, -100.0, 120),
        ("spikeglx", "barcode", 30_000, 100.0, 120),
        ("intan", "strobe", 30_000, -100.0, 60),
        ("wav", "barcode", 250_000, 100.0, 40),
        ("wav", "strobe", 250_000, -73.0, 20),
    ],
)
def test_align_recovers_the_map(tmp_path, fmt, role, rate, ppm, seconds):
    session = sy.synthetic_ttl_session(tmp_path, seconds, roles={"barcode": 13, "strobe": 6}, seed=7)
    clock = sy.ExternalClock(lead_s=4.25, ppm=ppm, rate_hz=rate)
    path = _external(session, role, fmt, clock, tmp_path)
    summary = align_session(session, path, fmt, CHANNEL.get(fmt, 0))
    assert summary["role"] == role and summary["format"] == fmt
    assert summary["pulses_matched"] >= 0.9 * (seconds / 3 * 7 if role == "barcode" else seconds * 30)
    _check(summary, clock, seconds)
    stem = path.name.split(".")[0]
    sync = SessionLayout(session).sync
    assert json.loads(sync.map_json(stem).read_text()) == json.loads(json.dumps(summary))
    rows = sync.frames_csv(stem).read_text().splitlines()
    assert rows[0] == "camera,frame,grid_index,session_ns,external_s,sample_index,in_file"
    assert len(rows) == 1 + int(seconds * 30)
    cam, _, _, session_ns, ext_s, sample, inside = rows[len(rows) // 2].split(",")
    assert abs(float(ext_s) - clock.external_s(np.array([float(session_ns)]))[0]) * 1e6 <= 1e6 / rate
    if fmt != "csv":
        assert abs(int(sample) - float(ext_s) * rate) <= 0.5 and inside == "1"


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "wav", "openephys", "spikeglx", "intan"])
@pytest.mark.parametrize("rate", [30_000, 250_000])
@pytest.mark.parametrize("role", ["barcode", "strobe"])
def test_align_ten_minutes_every_format(tmp_path, fmt, rate, role):
    if fmt == "intan" and rate > 30_000:
        pytest.skip("Intan boards sample at most 30 kHz")
    session = sy.synthetic_ttl_session(tmp_path, 600, roles={"barcode": 13, "strobe": 6}, seed=3)
    clock = sy.ExternalClock(lead_s=2.0, ppm=-100.0 if rate == 30_000 else 100.0, rate_hz=rate)
    summary = align_session(session, _external(session, role, fmt, clock, tmp_path), fmt, CHANNEL.get(fmt, 0))
    _check(summary, clock, 600)


def test_another_sessions_barcodes_are_refused(tmp_path):
    mine = sy.synthetic_ttl_session(tmp_path / "a", 30, seed=1)
    other = sy.synthetic_ttl_session(tmp_path / "b", 30, seed=2)
    path = _external(mine, "barcode", "csv", sy.ExternalClock(), tmp_path, session_of=other)
    with pytest.raises(AlignError, match="another session"):
        align_session(mine, path, "csv")
    assert not SessionLayout(mine).sync.path.exists()


def test_a_file_without_pulses_is_refused(tmp_path, capsys):
    import soundfile

    session = sy.synthetic_ttl_session(tmp_path, 20, seed=1)
    silent = tmp_path / "quiet.wav"
    soundfile.write(str(silent), np.random.default_rng(0).normal(0, 100, 48_000).astype(np.int16), 48_000)
    assert main(["align", str(session), str(silent)]) == 1
    err = capsys.readouterr().err
    assert "no pulses in channel 0" in err and "quiet.wav" in err and "Traceback" not in err


def test_a_strobe_already_running_is_refused(tmp_path):
    """A strobe alone cannot say which frame a pulse is unless the recording saw the train start."""
    session = sy.synthetic_ttl_session(tmp_path, 20, roles={"strobe": 6}, seed=1)
    train = session_trains(session)[0]
    late = train.times_ns > 5e9  # the recorder started 5 s into the session
    clock = sy.ExternalClock(lead_s=-5.0, rate_hz=30_000)
    edges = sy.synthesize(train.times_ns[late], train.levels[late], clock, np.random.default_rng(0), 0, 0, 0)
    edges.index -= edges.index.min() - 10
    with pytest.raises(AlignError, match="already running"):
        align_session(session, sy.write_csv(edges, tmp_path / "late.csv"), "csv")


def test_a_glitch_before_the_strobe_train_is_not_the_train_running(tmp_path):
    """A 1 ms glitch 250 ms before the first strobe pulse (a clean-CI run drew one there) must not
    make the strobe look already running; the map still comes back within a sample."""
    session = sy.synthetic_ttl_session(tmp_path, 20, roles={"strobe": 6}, seed=1)
    train = session_trains(session)[0]
    clock = sy.ExternalClock(lead_s=2.0, rate_hz=30_000)
    edges = sy.synthesize(train.times_ns, train.levels, clock, np.random.default_rng(0), 1000.0, 0, 0)
    first = edges.exact_s[np.flatnonzero(edges.levels == 1)[0]]
    glitch = np.array([first - 0.25, first - 0.249])
    order = np.argsort(np.concatenate([edges.exact_s, glitch]), kind="stable")
    edges.exact_s = np.concatenate([edges.exact_s, glitch])[order]
    edges.levels = np.concatenate([edges.levels, [1, 0]]).astype(np.int8)[order]
    edges.index = np.ceil(edges.exact_s * clock.rate_hz).astype(np.int64)
    summary = align_session(session, sy.write_csv(edges, tmp_path / "glitch.csv"), "csv")
    _check(summary, clock, 20)


def test_cli_json_prints_the_map(tmp_path, capsys):
    session = sy.synthetic_ttl_session(tmp_path, 15, seed=4)
    clock = sy.ExternalClock(lead_s=1.5, ppm=20, rate_hz=30_000)
    path = _external(session, "barcode", "spikeglx", clock, tmp_path, missing=0, spurious=1)
    assert main(["align", str(session), str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    for key in ("format", "channel", "slope", "offset_ns", "pulses_matched", "residual_us"):
        assert key in printed
    assert set(printed["residual_us"]) >= {"p50", "p99", "max"} and printed["format"] == "spikeglx"


def test_the_nwb_export_carries_the_map(tmp_path):
    pynwb = pytest.importorskip("pynwb", reason="NWB export needs the nwb extra (pynwb)")
    from datetime import datetime, timezone

    from controller.dataset.export.nwb import add_clock_maps

    session = sy.synthetic_ttl_session(tmp_path, 15, seed=4)
    clock = sy.ExternalClock(lead_s=1.5, ppm=20, rate_hz=30_000)
    summary = align_session(session, _external(session, "barcode", "csv", clock, tmp_path), "csv")
    nwb = pynwb.NWBFile(
        session_description="t", identifier="t", session_start_time=datetime.now(timezone.utc)
    )
    assert add_clock_maps(nwb, session) == 1
    out = tmp_path / "s.nwb"
    with pynwb.NWBHDF5IO(str(out), "w") as io:
        io.write(nwb)
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        table = io.read().processing["sync"]["external_clocks"].to_dataframe()
    assert table["slope"][0] == summary["slope"] and table["offset_ns"][0] == summary["offset_ns"]
    assert table["format"][0] == "csv" and table["role"][0] == "barcode"


def test_an_inverted_channel_is_read_active_low(tmp_path):
    """Audio interfaces often invert: the TTL arrives upside down and still aligns."""
    session = sy.synthetic_ttl_session(tmp_path, 20, seed=6)
    train = session_trains(session)[0]
    clock = sy.ExternalClock(lead_s=0.8, ppm=-40, rate_hz=48_000)
    edges = sy.synthesize(train.times_ns, train.levels, clock, np.random.default_rng(2), 1000.0, 0, 1)
    import soundfile

    trace = ((1 - sy.level_trace(edges).astype(np.int16)) * 20000).astype(np.int16)
    soundfile.write(str(tmp_path / "inv.wav"), trace, 48_000, subtype="PCM_16")
    summary = align_session(session, tmp_path / "inv.wav", "wav", 0)
    assert summary["polarity"] == "low" and summary["role"] == "barcode"
    _check(summary, clock, 20)
