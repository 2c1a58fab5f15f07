"""Synced outputs, trims and verification on real simulated sessions (agent processes, PyAV
encoding), checked with a real FFmpeg process and against the capture time drawn into the pixels."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from controller.media import ffmpeg_exe
from controller.pipeline import (
    EMPTY,
    SessionError,
    TrimError,
    current_match,
    describe_row,
    load_session,
    preview_frame,
    preview_jpeg,
    trim_session,
    verify_session,
    write_synced_outputs,
)
from controller.pipeline.packets import annexb_nal_units, iter_packets, length_prefixed_nal_units
from syncrig_agent.contract.formats import read_frame_table, read_manifest, read_pts
from syncrig_agent.sim.timecode import read_timecode

FPS = 30.0


def run_cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args], capture_output=True, text=True, timeout=timeout
    )


def record(out: Path, seconds: float = 4.0, *extra: str) -> Path:
    result = run_cli(
        "record", "--sim", "3", "--fps", str(FPS), "--seconds", str(seconds), "--out", str(out),
        "--width", "320", "--height", "240", "--bitrate", "1000000", "--quiet", *extra,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr + result.stdout
    (session,) = [p for p in out.iterdir() if p.is_dir()]
    return session


def probe_frames(video: Path) -> list[float]:
    """Frame timestamps (s) as FFmpeg's own tools read them: ffprobe when installed, else the
    ffmpeg binary's showinfo filter (imageio-ffmpeg ships no ffprobe)."""
    ffprobe = shutil.which("ffprobe")
    if ffprobe:
        out = subprocess.run(
            [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
             "-of", "csv=p=0", str(video)],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return [float(x) for x in out.split()]
    err = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostats", "-copyts", "-i", str(video),
         "-vf", "showinfo", "-f", "null", "-"],
        capture_output=True, text=True, check=True,
    ).stderr  # fmt: skip
    return [float(x) for x in re.findall(r"n:\s*\d+\s+pts:\s*-?\d+\s+pts_time:(-?[\d.]+)", err)]


def read_map(path: Path) -> dict[str, np.ndarray]:
    header = path.read_text().splitlines()[0].split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    return {h: data[:, i] for i, h in enumerate(header)}


def decoded_times(video: Path) -> list[int | None]:
    with av.open(str(video)) as c:
        return [read_timecode(f.to_ndarray(format="gray")) for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """A 3-camera session with drops (so there are gaps), synced through the CLI."""
    s = record(tmp_path_factory.mktemp("sessions"), 4.0, "--sim-drop-prob", "0.05", "--sim-jitter-us", "30")
    result = run_cli("sync", str(s), "--quiet")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "verdict:" in result.stdout
    return s


def test_sync_writes_match_table_report_and_plots(session: Path) -> None:
    manifest = read_manifest(session)
    synced = session / "synced"
    lines = (synced / "match.csv").read_text().splitlines()
    assert lines[0].split(",") == manifest.camera_names
    report = json.loads((synced / "report.json").read_text())
    assert report["matching"]["mode"] == "grid"
    assert report["matching"]["rows"] == len(lines) - 1 == manifest.cameras[0]["expected_frames"]
    assert report["verdict"] in ("excellent", "good", "poor") and report["thresholds"]
    assert report["absolute_time"] is True
    for entry in manifest.cameras:
        cam = report["cameras"][entry["name"]]
        assert cam["frames"] == entry["frames"]
        # Every dropped slot is an empty cell, at the grid index the manifest names.
        assert cam["dropped"] == entry["dropped"]
        rows = [r for first, n in cam["drop_runs"] for r in range(first, first + n)]
        assert rows == entry["missing_grid_indices"]
        for key in ("mean", "p99", "max"):
            assert cam["residual_us"][key] is not None
    for plot in ("offsets", "drops"):
        png = session / report["plots"][plot]["png"]
        svg = session / report["plots"][plot]["svg"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<svg" in svg.read_text()[:2000]


def test_synced_outputs_have_exactly_the_matched_frames_at_their_true_times(session: Path) -> None:
    source = load_session(session)
    table, report = current_match(source)
    t0 = source.manifest.t0_ns
    offset = report["outputs"]["timestamp_offset_ns"]
    assert offset % 1_000_000 == 0 and 0 <= offset <= 1_000_000  # only a frame just before T0 shifts
    for track in source.tracks:
        out = session / "synced" / f"{track.name}.mp4"
        column = table.column(track.name)
        matched = column[column != EMPTY]
        mapping = read_map(session / "synced" / f"{track.name}.map.csv")
        pts = read_pts(session / "synced" / f"{track.name}.pts").times_ns
        # Right frame count and timestamps as FFmpeg reads them (µs), equal to the .pts.
        probed = np.asarray(probe_frames(out))
        assert probed.size == matched.size == pts.size
        assert np.abs(probed * 1e9 - pts).max() <= 1000
        assert np.array_equal(pts - offset, track.times_ns[matched])  # each frame's own capture time
        # No duplicated source frame; each output frame shows its recorded frame (pixels).
        assert np.all(np.diff(mapping["source_frame"]) > 0)
        pixels = np.asarray(decoded_times(out), dtype=np.int64)
        raw_pixels = np.asarray(decoded_times(track.video), dtype=np.int64)
        assert np.array_equal(pixels, raw_pixels[matched])
        assert np.unique(pixels).size == pixels.size
        # A drop is a timestamp gap, not a shift: frames after it keep their own instants.
        assert np.abs((pixels - t0) - table.instants_ns[mapping["row"]]).max() < 1_000_000


def test_copied_packets_are_bit_identical(session: Path) -> None:
    source = load_session(session)
    for track in source.tracks:
        mapping = read_map(session / "synced" / f"{track.name}.map.csv")
        recorded = {p.index: p.data for p in iter_packets(track)}
        with av.open(str(session / "synced" / f"{track.name}.mp4")) as c:
            samples = [bytes(p) for p in c.demux(video=0) if p.size]
        assert len(samples) == mapping["row"].size
        assert mapping["reencoded"].sum() == 0  # gaps mode on a P-only stream: nothing to re-encode
        for k, sample in enumerate(samples):
            assert length_prefixed_nal_units(sample) == annexb_nal_units(recorded[mapping["source_frame"][k]])


def test_verify_synced_outputs_true_offset_within_1ms(session: Path) -> None:
    result = run_cli("verify", str(session), "--quiet", "--json")
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    synced = report["outputs"]["synced"]
    assert synced["ok"]
    assert synced["rows_compared"] > 100
    assert synced["cross_camera_offset_us"]["max"] <= 1000
    for cam in synced["cameras"].values():
        assert cam["disagreeing_frames"] == 0 and cam["unreadable_timecodes"] == 0
    assert (session / "synced" / "verify.json").is_file()


def _keyframes(session: Path, cam: str) -> np.ndarray:
    return np.flatnonzero(read_frame_table(session / "raw" / f"{cam}.frames.csv")["keyframe"])


def test_trim_cuts_every_camera_to_the_same_instants(session: Path) -> None:
    source = load_session(session)
    table, _ = current_match(source)
    complete = table.complete_rows()
    # A start that is not on a keyframe (frames 1..29 of each 30-frame GOP): partial re-encode.
    start = int(complete[(complete % 30 > 3) & (complete % 30 < 20)][0])
    end = int(complete[complete < table.rows - 10][-1])
    result = run_cli(
        "trim",
        str(session),
        "--start-frame",
        str(start),
        "--end-frame",
        str(end),
        "--fill",
        "gaps",
        "--quiet",
    )
    assert result.returncode == 0, result.stderr
    assert "re-encoded" in result.stdout
    folder = session / "trimmed" / f"{start}-{end}"
    description = json.loads((folder / "trim.json").read_text())
    firsts = []
    for cam in source.cameras:
        mapping = read_map(folder / f"{cam}.map.csv")
        assert mapping["row"][0] == start and mapping["row"][-1] == end
        pixels = np.asarray(decoded_times(folder / f"{cam}.mp4"), dtype=np.int64)
        firsts.append(int(pixels[0]))
        # Output frame k carries row k's instant (timestamps), pixels agree within 1 ms.
        rows = mapping["row"]
        assert np.abs((pixels - source.manifest.t0_ns) - table.instants_ns[rows]).max() < 1_000_000
        # Only the partial GOP up to the next recorded keyframe is re-encoded, and the report says so.
        keys = _keyframes(session, cam)
        next_key = keys[keys > mapping["source_frame"][0]][0]
        expected = int((mapping["source_frame"] < next_key).sum())
        out = description["cameras"][cam]
        assert out["reencoded"] == expected == mapping["reencoded"].sum() > 0
        assert out["reencoded_runs"][0]["reason"] == "cut on a non-keyframe"
        assert np.all(mapping["reencoded"][:expected] == 1) and np.all(mapping["reencoded"][expected:] == 0)
        assert len(probe_frames(folder / f"{cam}.mp4")) == rows.size == len(read_pts(folder / f"{cam}.pts"))
    assert max(firsts) - min(firsts) < 1_000_000  # the first frame is the same instant everywhere
    assert any("re-encoded" in flag for flag in description["flags"])
    verified = verify_session(session)
    trimmed = verified["outputs"][f"trimmed/{start}-{end}"]
    assert trimmed["ok"] and trimmed["first_frame_offset_us"] <= 1000
    assert trimmed["cross_camera_offset_us"]["max"] <= 1000


def test_default_trim_is_index_aligned_across_cameras(session: Path) -> None:
    """Default fill: output frame k of every camera is match row start+k, drops included (as
    flagged repeats), so frame-indexed tools see the same instant at the same index."""
    source = load_session(session)
    table, _ = current_match(source)
    complete = table.complete_rows()
    gaps = np.flatnonzero(np.any(table.cells == -1, axis=1))
    # a range around the first drop that has a complete row (every camera) on both sides
    inner = [g for g in gaps if complete[complete < g].size and complete[complete > g].size]
    assert inner, "the fixture must have a drop between two complete rows"
    start = int(complete[complete < inner[0]][-1])
    end = int(complete[complete > inner[0]][0]) + 5
    end = int(complete[complete >= end][0]) if complete[complete >= end].size else int(complete[-1])
    result = run_cli("trim", str(session), "--start-frame", str(start), "--end-frame", str(end), "--quiet")
    assert result.returncode == 0, result.stderr
    folder = session / "trimmed" / f"{start}-{end}"
    filled_total = 0
    for cam in source.cameras:
        mapping = read_map(folder / f"{cam}.map.csv")
        assert np.array_equal(mapping["row"], np.arange(start, end + 1))
        missing = int((table.column(cam)[start : end + 1] == -1).sum())
        assert int(mapping["filled"].sum()) == missing
        filled_total += missing
        assert len(probe_frames(folder / f"{cam}.mp4")) == end - start + 1
    assert filled_total > 0
    description = json.loads((folder / "trim.json").read_text())
    assert any("repeat" in flag or "fill" in flag for flag in description["flags"]), description["flags"]


def test_trimmed_pts_round_trips_through_mkvmerge(session: Path, tmp_path: Path) -> None:
    mkvmerge = shutil.which("mkvmerge")
    if mkvmerge is None:
        pytest.skip(
            "mkvmerge NOT RUN: Debian package mkvtoolnix missing (tools/run-tests installs it as root)"
        )
    table, _ = current_match(load_session(session))
    complete = table.complete_rows()
    start, end = int(complete[0]), int(complete[len(complete) // 2])
    trim_session(session, start, end, overwrite=True)
    folder = session / "trimmed" / f"{start}-{end}"
    pts = read_pts(folder / "cam1.pts").times_ns
    mkv = tmp_path / "cam1.mkv"
    subprocess.run(
        [mkvmerge, "-q", "-o", str(mkv), "--timestamps", f"0:{folder / 'cam1.pts'}",
         str(folder / "cam1.mp4")],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    with av.open(str(mkv)) as c:
        s = c.streams.video[0]
        times_ms = sorted(float(p.pts * s.time_base) * 1000 for p in c.demux(s) if p.pts is not None)
    assert len(times_ms) == pts.size
    # Matroska keeps milliseconds: every frame within 1 ms of its .pts line.
    assert np.abs(np.asarray(times_ms) - pts / 1e6).max() <= 1.0


def test_trim_refuses_bad_ranges_and_never_overwrites(session: Path) -> None:
    table, _ = current_match(load_session(session))
    empty_rows = np.flatnonzero(np.any(table.cells == EMPTY, axis=1))
    assert empty_rows.size  # drops were simulated
    with pytest.raises(TrimError, match="no frame at that instant.*nearest rows"):
        trim_session(session, int(empty_rows[0]), table.rows - 1)
    with pytest.raises(TrimError, match="outside the match table"):
        trim_session(session, 5, table.rows + 3)
    with pytest.raises(TrimError, match="outside the match table"):
        trim_session(session, 10, 5)
    complete = table.complete_rows()
    a, b = int(complete[1]), int(complete[5])
    trim_session(session, a, b)
    before = (session / "trimmed" / f"{a}-{b}" / "cam0.mp4").read_bytes()
    with pytest.raises(TrimError, match="already exists"):
        trim_session(session, a, b)
    assert (session / "trimmed" / f"{a}-{b}" / "cam0.mp4").read_bytes() == before
    result = run_cli("trim", str(session), "--start-frame", str(a), "--end-frame", str(b), "--quiet")
    assert result.returncode == 2 and "already exists" in result.stderr


def test_repeat_fill_gives_constant_frame_rate_and_is_flagged(session: Path, tmp_path: Path) -> None:
    copy = tmp_path / session.name
    shutil.copytree(session, copy, ignore=shutil.ignore_patterns("synced", "trimmed"))
    section = write_synced_outputs(copy, fill="repeat")
    source = load_session(copy)
    table, report = current_match(source)
    assert section["fill"] == "repeat"
    assert report["outputs"]["fill"] == "repeat"
    for track in source.tracks:
        empty = int((table.column(track.name) == EMPTY).sum())
        out = section["cameras"][track.name]
        assert out["frames"] == table.rows and out["filled"] == empty
        if empty:
            assert any(
                f.startswith(f"synced outputs: {track.name}: {empty} repeated") for f in report["flags"]
            )
        pts = read_pts(copy / "synced" / f"{track.name}.pts").times_ns
        offset = section["timestamp_offset_ns"]
        assert np.array_equal(pts - offset, table.instants_ns)  # constant frame rate on the grid instants
        assert np.allclose(
            np.asarray(probe_frames(copy / "synced" / f"{track.name}.mp4")) * 1e9, pts, atol=1000
        )
    verified = verify_session(copy)["outputs"]["synced"]
    assert verified["ok"] and verified["cross_camera_offset_us"]["max"] <= 1000
    assert sum(c["filled"] for c in verified["cameras"].values()) == sum(
        o["filled"] for o in section["cameras"].values()
    )


def test_preview_frame_is_the_matched_frame(session: Path) -> None:
    source = load_session(session)
    table, _ = current_match(source)
    t0 = source.manifest.t0_ns
    for cam in source.cameras:
        col = table.column(cam)
        row = int(np.flatnonzero(col != EMPTY)[len(col) // 2])
        rgb = preview_frame(session, cam, row)
        assert rgb.shape == (240, 320, 3) and rgb.dtype == np.uint8
        luma = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]).astype(np.uint8)
        assert abs(read_timecode(luma) - t0 - int(table.instants_ns[row])) < 1_000_000
        jpeg = preview_jpeg(session, cam, row, max_width=160)
        assert jpeg[:2] == b"\xff\xd8"
        info = describe_row(session, row)
        assert info["frames"][cam] == int(col[row]) and info["instant_ns"] == int(table.instants_ns[row])
        empty = np.flatnonzero(col == EMPTY)
        if empty.size:
            assert preview_frame(session, cam, int(empty[0])) is None
    with pytest.raises(SessionError, match="no camera named"):
        preview_frame(session, "../cam0", 0)
    with pytest.raises(SessionError, match="outside the match table"):
        preview_frame(session, "cam0", table.rows)


def test_verify_reveals_clock_offsets_that_timestamps_hide(tmp_path: Path) -> None:
    # cam1's clock 2 ms ahead, cam2's 1.5 ms behind: their own timestamps look perfect, so the
    # report's residuals are ~0, but the pictures show the true 3.5 ms spread.
    s = record(tmp_path, 2.0, "--sim-offsets-us", "0,2000,-1500")
    assert run_cli("sync", str(s), "--quiet").returncode == 0
    report = json.loads((s / "synced" / "report.json").read_text())
    assert all(abs(c["residual_us"]["max_abs"]) < 100 for c in report["cameras"].values())
    result = run_cli("verify", str(s), "--quiet", "--json")
    assert result.returncode == 1  # problems found
    synced = json.loads(result.stdout)["outputs"]["synced"]
    assert synced["cross_camera_offset_us"]["p50"] == pytest.approx(3500, abs=100)
    assert synced["cameras"]["cam1"]["disagreeing_frames"] == synced["cameras"]["cam1"]["frames"]
    assert synced["cameras"]["cam0"]["disagreeing_frames"] == 0


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    result = run_cli("sync", str(tmp_path / "nope"))
    assert result.returncode == 2 and "not a directory" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_cli("sync", str(tmp_path / "empty"))
    assert result.returncode == 2 and "not a SyncRig session" in result.stderr
    result = run_cli("verify", str(tmp_path / "empty"))
    assert result.returncode == 2
    result = run_cli("trim", str(tmp_path / "empty"), "--start-frame", "-1", "--end-frame", "3")
    assert result.returncode == 2 and "must be >= 0" in result.stderr


def test_session_api_reports_progress_and_returns_json(session: Path, tmp_path: Path) -> None:
    # What the controller's job runner calls: progress(fraction, label), JSON-ready results.
    from controller.pipeline import analyze_session

    copy = tmp_path / session.name
    shutil.copytree(session, copy, ignore=shutil.ignore_patterns("synced", "trimmed"))
    calls: dict[str, list[tuple[float, str]]] = {}

    def recorder(name: str):
        calls[name] = []
        return lambda fraction, label: calls[name].append((fraction, label))

    results = [
        analyze_session(copy, progress=recorder("analyze")),
        write_synced_outputs(copy, progress=recorder("synced")),
    ]
    table, _ = current_match(load_session(copy))
    complete = table.complete_rows()
    results.append(trim_session(copy, int(complete[2]), int(complete[40]), progress=recorder("trim")))
    results.append(verify_session(copy, progress=recorder("verify")))
    for result in results:
        json.dumps(result)
    for name, seen in calls.items():
        fractions = [f for f, _ in seen]
        assert fractions and all(0.0 <= f <= 1.0 for f in fractions), name
        assert fractions == sorted(fractions) and fractions[-1] == 1.0, name
        assert all(isinstance(label, str) and label for _, label in seen), name


def test_camera_without_frames_gets_no_output_and_a_flag(session: Path, tmp_path: Path) -> None:
    copy = tmp_path / session.name
    shutil.copytree(session, copy, ignore=shutil.ignore_patterns("synced", "trimmed"))
    raw = copy / "raw"
    (raw / "cam2.h264").write_bytes(b"")
    (raw / "cam2.pts").write_text("# timestamp format v2\n")
    header = (raw / "cam2.frames.csv").read_text().splitlines()[0]
    (raw / "cam2.frames.csv").write_text(header + "\n")
    section = write_synced_outputs(copy)
    assert set(section["cameras"]) == {"cam0", "cam1"}
    assert "cam2: no matched frames; no output written" in section["flags"]
    report = json.loads((copy / "synced" / "report.json").read_text())
    assert report["cameras"]["cam2"]["frames"] == 0 and report["verdict"] == "poor"
    with pytest.raises(TrimError, match="cam2 has no frame"):
        trim_session(copy, 5, 20)
