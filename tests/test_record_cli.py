"""`syncrig record --sim` end to end: real agent processes, real sockets, real PyAV encoding,
checked frame by frame against the capture time drawn into the pixels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from session_checks import check_session, ffmpeg_frame_count

FPS = 30.0
SECONDS = 2.0


def run_record(out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "controller",
        "record",
        "--sim",
        "3",
        "--fps",
        str(FPS),
        "--seconds",
        str(SECONDS),
        "--out",
        str(out),
        "--width",
        "320",
        "--height",
        "240",
        "--bitrate",
        "1000000",
        "--quiet",
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sessions")
    result = run_record(out, "--subject", "mouse-17", "--project", "gait.v2")
    assert result.returncode == 0, result.stderr + result.stdout
    sessions = [p for p in out.iterdir() if p.is_dir()]
    assert len(sessions) == 1
    return sessions[0]


def test_session_layout_and_manifest(recorded: Path) -> None:
    manifest = json.loads((recorded / "session.json").read_text())
    assert manifest["id"] == recorded.name
    assert manifest["subject"] == "mouse-17" and manifest["project"] == "gait.v2"
    assert manifest["fps"] == FPS
    assert manifest["period_ns"] == round(1e9 / FPS)
    assert isinstance(manifest["t0_ns"], int) and manifest["t0_ns"] > 1.7e18
    assert [c["name"] for c in manifest["cameras"]] == ["cam0", "cam1", "cam2"]
    assert [c["role"] for c in manifest["cameras"]] == ["server", "client", "client"]
    for cam in manifest["cameras"]:
        assert cam["width"] == 320 and cam["height"] == 240
        assert cam["expected_frames"] == round(SECONDS * FPS)
        for suffix in (".h264", ".pts", ".frames.csv"):
            assert (recorded / "raw" / f"{cam['name']}{suffix}").stat().st_size > 0
    assert set(manifest["clock_reports"]) == {"cam0", "cam1", "cam2"}
    assert manifest["software"]["syncrig"]


def test_frames_decode_and_match_sidecars(recorded: Path) -> None:
    manifest, cams = check_session(recorded)
    for entry in manifest.cameras:
        cam = cams[entry["name"]]
        # Every .h264 decodes to exactly as many frames as its .pts and frames.csv have lines.
        assert cam.decoded == cam.pts_lines == cam.table_rows == entry["frames"]
        assert ffmpeg_frame_count(recorded / "raw" / f"{cam.name}.h264") == cam.decoded
        assert entry["frames"] == entry["expected_frames"] - entry["dropped"]
        # .pts (ms since the shared T0) agrees with the pixels' true capture time within 1 ms.
        err = (manifest.t0_ns + cam.pts_ns) - cam.pixel_ns
        assert np.abs(err).max() < 1_000_000, f"{cam.name}: pts vs pixels max {np.abs(err).max()} ns"
        # Grid indices are strictly increasing and within the planned range.
        assert np.all(np.diff(cam.grid) > 0)
        assert cam.grid.min() >= 0 and cam.grid.max() < entry["expected_frames"]


def test_cross_camera_capture_times_agree(recorded: Path) -> None:
    _manifest, cams = check_session(recorded)
    common = set.intersection(*(set(c.grid.tolist()) for c in cams.values()))
    assert len(common) > 0.9 * SECONDS * FPS
    per_index = []
    for n in sorted(common):
        times = [int(c.pixel_ns[np.searchsorted(c.grid, n)]) for c in cams.values()]
        per_index.append(max(times) - min(times))
    spread = np.asarray(per_index)
    assert spread.max() < 1_000_000, f"cross-camera spread up to {spread.max() / 1e3:.0f} µs"


def test_drops_are_visible_in_grid_indices(tmp_path: Path) -> None:
    result = run_record(tmp_path, "--sim-drop-prob", "0.1")
    assert result.returncode == 0, result.stderr
    (session,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest, cams = check_session(session)
    total_drops = 0
    for entry in manifest.cameras:
        cam = cams[entry["name"]]
        expected = entry["expected_frames"]
        missing = sorted(set(range(expected)) - set(cam.grid.tolist()))
        assert len(missing) == entry["dropped"] == expected - cam.decoded
        assert missing[: len(entry["missing_grid_indices"])] == entry["missing_grid_indices"]
        drops = entry["drops"]
        assert sum(drops.values()) == len(missing)
        total_drops += len(missing)
        # The frames around a drop still carry their own capture times (no shift after a drop).
        err = (manifest.t0_ns + cam.pts_ns) - cam.pixel_ns
        assert np.abs(err).max() < 1_000_000
    assert total_drops > 0  # 10 % of 180 frames: the chance of none is ~1e-8


@pytest.mark.parametrize("subject", ["../escape", "a/b", "bad\x01id", "..", "", "-rf", "x" * 65, "a b"])
def test_unsafe_subject_ids_are_rejected(tmp_path: Path, subject: str) -> None:
    result = run_record(tmp_path / "out", f"--subject={subject}")
    assert result.returncode == 2
    assert "subject ID" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing was created


def test_unsafe_project_id_is_rejected(tmp_path: Path) -> None:
    result = run_record(tmp_path / "out", "--project", "proj/../../etc")
    assert result.returncode == 2 and "project ID" in result.stderr


def test_clock_offsets_show_in_the_pixels_not_in_the_pts(tmp_path: Path) -> None:
    # cam1's clock runs 2 ms ahead and cam2's 1.5 ms behind the shared timescale: each camera
    # exposes when *its* clock says Tn, so in true time cam1 is early and cam2 late, while their
    # own timestamps claim perfection. The pixels (ground truth) must show it.
    result = run_record(tmp_path, "--sim-offsets-us", "0,2000,-1500", "--sim-jitter-us", "20")
    assert result.returncode == 0, result.stderr
    (session,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    _manifest, cams = check_session(session)
    ref = cams["cam0"]
    for name, expected_us in (("cam1", -2000), ("cam2", 1500)):
        cam = cams[name]
        common, i_ref, i_cam = np.intersect1d(ref.grid, cam.grid, return_indices=True)
        true_offset = (cam.pixel_ns[i_cam] - ref.pixel_ns[i_ref]) / 1e3
        claimed = (cam.pts_ns[i_cam] - ref.pts_ns[i_ref]) / 1e3
        assert abs(np.median(true_offset) - expected_us) < 50
        assert abs(np.median(claimed)) < 50


def test_software_trigger_model_records_wake_times(tmp_path: Path) -> None:
    result = run_record(tmp_path, "--sim-trigger", "wake")
    assert result.returncode == 0, result.stderr
    (session,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest, cams = check_session(session)
    for entry in manifest.cameras:
        cam = cams[entry["name"]]
        assert cam.decoded == cam.pts_lines == entry["frames"]
        # In this model the exposure *is* the wake: pts, pixels and wake times coincide.
        assert np.array_equal(manifest.t0_ns + cam.pts_ns, cam.pixel_ns)
        assert entry["backend"]["trigger"] == "wake"
