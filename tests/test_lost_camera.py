"""A lost camera keeps everything it produced: its torn files on the Pi and the live stream are
reconciled into whole frames (transfer/reconcile.py), the cut is recorded, and the session still
syncs and trims. The unit half builds torn recordings by hand; the rig half kills and freezes a real
client agent mid-recording."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from controller.pipeline.sync import SyncRequest, sync_session
from controller.pipeline.trim import trim_session
from controller.receivers.sidecar import STREAM_TABLE_COLUMNS
from controller.rig.recording import RecordingRequest, begin_recording, finish_recording
from controller.transfer import LocalTransport, delete_pi_copy, footage_safe, pull_session
from controller.transfer.collect import Collection
from controller.transfer.ledger import read_ledger
from syncrig_agent.contract.formats import FrameRow, read_frame_table, read_manifest, read_pts
from syncrig_agent.contract.formats.frame_table import write_frame_header, write_frame_row

SESSION = "20260101-120000-0001"
PERIOD = 33_333_333
T0 = 1_000_000_000_000


def _frames(n: int, seed: int = 3) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(500, 4000)) for _ in range(n)]


def _row(i: int, data: bytes) -> FrameRow:
    t = T0 + i * PERIOD
    return FrameRow(i, i, t, t, t, int(i % 30 == 0), len(data), t)


def torn_pi(root: Path, frames: list[bytes], rows: int, video_bytes: int, torn_tail: str = "") -> Path:
    """A killed agent's files: `rows` whole rows (+ half a line), the first `video_bytes` bytes of
    the video, a .pts as far as it got, and no capture report (it never closed the recording)."""
    raw = root / SESSION / "raw"
    raw.mkdir(parents=True)
    (raw / "cam1.h264").write_bytes(b"".join(frames)[:video_bytes])
    with open(raw / "cam1.frames.csv", "w", encoding="ascii") as fh:
        write_frame_header(fh)
        for i in range(rows):
            write_frame_row(fh, _row(i, frames[i]))
        fh.write(torn_tail)
    (raw / "cam1.pts").write_text("# timestamp format v2\n0.000000\n33.3")
    return root


def stream_copy(session: Path, frames: list[bytes], have: range, damage: int | None = None) -> None:
    """What the live receiver wrote: the frames in `have`, with their rows and spool offsets."""
    stream = session / "stream"
    stream.mkdir(exist_ok=True)
    offset = 0
    with open(stream / "cam1.h264", "wb") as spool, open(stream / "cam1.frames.csv", "w") as table:
        table.write(",".join(STREAM_TABLE_COLUMNS) + "\n")
        for i in have:
            data = frames[i] if i != damage else bytes(len(frames[i]))
            spool.write(data)
            r = _row(i, frames[i])
            table.write(",".join(map(str, [*r.__dict__.values(), offset, 0, 1])) + "\n")
            offset += len(data)


def desktop(tmp_path: Path) -> Path:
    session = tmp_path / "desktop" / SESSION
    (session / "raw").mkdir(parents=True)
    return session


def pull(session: Path, pi: Path) -> dict:
    result = pull_session(session, {"cam1": lambda: LocalTransport(pi)}, t0_ns=T0)
    assert result["ok"], result
    return read_ledger(session)["cameras"]["cam1"]


def test_stream_extends_a_torn_pi_copy_and_the_cut_is_recorded(tmp_path: Path) -> None:
    frames = _frames(60)
    # The Pi flushed rows 0..29 (+ half of row 30) and the bytes of 0..34 + part of 35.
    pi = torn_pi(tmp_path / "pi", frames, 30, sum(map(len, frames[:35])) + 100, torn_tail="30,30,10")
    session = desktop(tmp_path)
    stream_copy(session, frames, range(0, 50))
    entry = pull(session, pi)
    rec = entry["reconciled"]
    assert rec["frames"] == 50 and rec["frames_from_pi"] == 35 and rec["frames_from_stream"] == 15
    assert rec["pi_torn_row"] and rec["pi_rows"] == 30 and rec["mismatches"] == 0
    assert rec["pi_bytes_cut"] == 100  # the Pi's half frame, superseded by the stream's whole one
    assert (session / "raw" / "cam1.h264").read_bytes() == b"".join(frames[:50])
    table = read_frame_table(session / "raw" / "cam1.frames.csv")
    assert table["frame"].tolist() == list(range(50))
    assert read_pts(session / "raw" / "cam1.pts").times_ns.tolist() == [i * PERIOD for i in range(50)]
    assert entry["files"]["cam1.h264"]["source"] == "stream+pi"
    assert footage_safe(session, rehash=True)["safe"]  # the desktop copy is what the ledger says
    # The Pi's torn originals are what a delete compares with: the desktop copy differs from them.
    assert entry["files"]["cam1.h264"]["pi"]["size"] == sum(map(len, frames[:35])) + 100
    deleted = delete_pi_copy(session, "cam1", LocalTransport(pi), confirm=True)
    assert len(deleted["deleted"]) == 3 and not (pi / SESSION).exists()


def test_bytes_without_rows_and_rows_without_bytes_are_cut(tmp_path: Path) -> None:
    frames = _frames(40)
    # No stream at all. Bytes of 0..24 + 30 bytes of 25, rows 0..19: bytes without rows are cut.
    pi = torn_pi(tmp_path / "pi1", frames, 20, sum(map(len, frames[:25])) + 30)
    session = desktop(tmp_path / "a")
    rec = pull(session, pi)["reconciled"]
    assert rec["frames"] == 20 and rec["pi_bytes_cut"] == sum(map(len, frames[20:25])) + 30
    assert rec["rows_without_bytes"] == 0
    # Rows 0..29 but the bytes of only 0..14 (+ 5 bytes): rows without bytes are cut.
    pi = torn_pi(tmp_path / "pi2", frames, 30, sum(map(len, frames[:15])) + 5)
    session = desktop(tmp_path / "b")
    rec = pull(session, pi)["reconciled"]
    assert rec["frames"] == 15 and rec["rows_without_bytes"] == 15 and rec["pi_bytes_cut"] == 5
    assert (session / "raw" / "cam1.h264").read_bytes() == b"".join(frames[:15])


def test_where_both_hold_a_frame_the_bytes_are_checked_and_the_pi_wins(tmp_path: Path) -> None:
    frames = _frames(30)
    pi = torn_pi(tmp_path / "pi", frames, 20, sum(map(len, frames[:20])))
    session = desktop(tmp_path)
    stream_copy(session, frames, range(0, 25), damage=7)
    rec = pull(session, pi)["reconciled"]
    assert rec["mismatches"] == 1 and rec["frames"] == 25
    assert (session / "raw" / "cam1.h264").read_bytes() == b"".join(frames[:25])


def _record_and_lose_cam2(rig, tmp_path: Path, how: signal.Signals) -> tuple[Path, float]:
    collection = Collection(stream=True, secret_file=rig.secret_file)
    with rig.link() as link:
        request = RecordingRequest(fps=30.0, seconds=None, subject="lost")
        cameras = rig.camera_infos()
        active = begin_recording(link, tmp_path / "sessions", cameras, request, collection=collection)
        time.sleep(2.0)
        os.kill(rig.processes["cam2"].pid, how)
        time.sleep(1.5)
        started = time.monotonic()
        try:
            session = finish_recording(link, active, stop_now=True, collection=collection)
        finally:
            if how == signal.SIGSTOP:
                os.kill(rig.processes["cam2"].pid, signal.SIGCONT)
        return session, time.monotonic() - started


def _check_usable(session: Path, rig_log: Path) -> None:
    manifest = read_manifest(session)
    for cam in manifest.cameras:
        rows = read_frame_table(session / "raw" / f"{cam['name']}.frames.csv")["frame"].size
        assert cam["frames"] == rows, cam  # the manifest counts what exists
        assert cam["dropped"] == sum(cam["drops"].values()), cam
    cam2 = manifest.camera("cam2")
    assert cam2["frames"] > 30, cam2  # ~2 s at 30 fps reached the desktop
    assert cam2["lost"]["at_s"] > 1.0 and cam2["lost"]["reason"], cam2
    assert cam2["drops"]["camera_lost"] == cam2["expected_frames"] - cam2["last_grid_index"] - 1
    assert cam2["error"].startswith("camera lost: ")
    report = sync_session(session, SyncRequest()).report
    assert report["cameras"]["cam2"]["matched"] == cam2["frames"]
    assert report["cameras"]["cam0"]["dropped"] == 0
    assert report["cameras"]["cam2"]["lost"] == cam2["lost"]
    assert report["verdict_reasons"][0].startswith("cam2 was lost")
    trim = trim_session(session, 5, cam2["frames"] + 10)
    assert trim["rows"] == cam2["frames"] + 6
    assert "WARNING: lost camera cam2" in rig_log.read_text()  # cam0 says so, at WARNING


def test_a_killed_client_keeps_its_frames_and_the_session_syncs(make_rig, tmp_path: Path) -> None:
    rig = make_rig(3)
    session, stop_s = _record_and_lose_cam2(rig, tmp_path, signal.SIGKILL)
    assert stop_s < 6.0, f"stop + collect took {stop_s:.1f} s with a camera gone"
    _check_usable(session, rig.log_file("cam0"))
    ledger = json.loads((session / "transfer.json").read_text())
    kept = ledger["cameras"]["cam2"]["reconciled"]["frames"]
    assert kept == read_manifest(session).camera("cam2")["frames"]
    assert footage_safe(session)["safe"]


@pytest.mark.slow
def test_a_frozen_client_does_not_hold_the_stop(make_rig, tmp_path: Path) -> None:
    rig = make_rig(3)
    session, stop_s = _record_and_lose_cam2(rig, tmp_path, signal.SIGSTOP)
    assert stop_s < 8.0, f"stop + collect took {stop_s:.1f} s with a frozen camera"
    _check_usable(session, rig.log_file("cam0"))
    assert "silent for" in read_manifest(session).camera("cam2")["lost"]["reason"]
