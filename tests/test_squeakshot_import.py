"""`tools/sync_videos.py` on a folder of SqueakShot-style recordings (`<cam>_<rec>.pts` holding
integer µs since each camera's own first frame, next to `.h264` or `.mp4`): imported, matched,
written out, and marked relative-time only instead of being given a verdict."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from controller.pipeline import SessionError, import_squeakshot, verify_session
from syncrig_agent.contract.formats import read_manifest
from syncrig_agent.contract.grid import period_ns_for_fps
from syncrig_agent.sim.timecode import draw_timecode

REPO = Path(__file__).resolve().parent.parent
P = period_ns_for_fps(56)


def encode(path: Path, times_ns: np.ndarray, container_format: str) -> None:
    """H.264 frames carrying their capture time, as SqueakShot's Pi service would record them."""
    rate = Fraction(56)
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "keyint=28:scenecut=0"}
        for i, t in enumerate(times_ns):
            img = np.full((360, 320), 128, dtype=np.uint8)
            draw_timecode(img[:240], int(t))
            frame = av.VideoFrame.from_ndarray(img, format="yuv420p")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.fixture(scope="module")
def squeakshot_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("squeakshot")
    base = 1_700_000_000_000_000_000
    starts = {"cam0": 0, "cam1": 11_200_000, "cam2": 3_000_000}  # unknown to SqueakShot's files
    for cam, start in starts.items():
        true = base + start + np.arange(120) * P
        if cam == "cam2":
            true = np.delete(true, [40, 41])  # two dropped frames
        rel_us = (true - true[0]) // 1000  # SqueakShot: µs since this camera's own first frame
        (folder / f"{cam}_rec7.pts").write_text("".join(f"{v}\n" for v in rel_us))
        if cam == "cam1":
            encode(folder / f"{cam}_rec7.mp4", true, "mp4")
        else:
            encode(folder / f"{cam}_rec7.h264", true, "h264")
    return folder


def test_sync_videos_imports_and_marks_relative_time(squeakshot_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "imported"
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "sync_videos.py"), str(squeakshot_folder), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr + result.stdout
    assert "RELATIVE TIME ONLY" in result.stdout
    assert "importing" in result.stderr and "synced outputs" in result.stderr  # progress bars
    (session,) = [p for p in out.iterdir() if p.is_dir()]
    manifest = read_manifest(session)
    assert manifest.absolute_time is False and manifest.software["imported_from"] == "squeakshot"
    assert manifest.period_ns == pytest.approx(P, abs=1000)
    report = json.loads((session / "synced" / "report.json").read_text())
    assert report["relative_time_only"] is True and report["absolute_time"] is False
    assert report["verdict"] == "relative-time-only"
    assert report["matching"]["mode"] == "time"
    # The two drops are empty cells; nothing is shifted after them.
    assert report["cameras"]["cam2"]["dropped"] == 2
    assert report["cameras"]["cam2"]["drop_runs"] == [[40, 2]]
    for cam, frames in (("cam0", 120), ("cam1", 120), ("cam2", 118)):
        assert report["outputs"]["cameras"][cam]["frames"] == frames
        with av.open(str(session / "synced" / f"{cam}.mp4")) as c:
            assert sum(1 for _ in c.decode(video=0)) == frames
    with pytest.raises(SessionError, match="absolute timestamps"):
        verify_session(session)


def test_several_recordings_need_a_choice(squeakshot_folder: Path, tmp_path: Path) -> None:
    for suffix in (".pts", ".h264"):
        data = (squeakshot_folder / f"cam0_rec7{suffix}").read_bytes()
        (tmp_path / f"cam0_rec7{suffix}").write_bytes(data)
        (tmp_path / f"cam0_rec8{suffix}").write_bytes(data)
    with pytest.raises(SessionError, match="several recordings.*--recording"):
        import_squeakshot(tmp_path, tmp_path / "out")
    session = import_squeakshot(tmp_path, tmp_path / "out", recording="rec8")
    assert read_manifest(session).software["recording"] == "rec8"


def test_frame_count_mismatch_is_refused_and_leaves_nothing(squeakshot_folder: Path, tmp_path: Path) -> None:
    (tmp_path / "cam0_r1.h264").write_bytes((squeakshot_folder / "cam0_rec7.h264").read_bytes())
    (tmp_path / "cam0_r1.pts").write_text("".join(f"{i * 17857}\n" for i in range(50)))
    with pytest.raises(SessionError, match="120 frames but cam0_r1.pts has 50"):
        import_squeakshot(tmp_path, tmp_path / "out")
    # No session directory; only the session-number bookkeeping (dotfiles: a number is never reissued).
    assert [p for p in (tmp_path / "out").iterdir() if not p.name.startswith(".")] == []
