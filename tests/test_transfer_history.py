"""The transfer ledger is history: every pull's record is appended (source, gap fill, verified_at
survive a re-pull), and every "verified" a page shows is derived from the files as they are now:
after "delete camera copies" the summary says the desktop holds the only copy, and a re-pull of
such a session succeeds on the intact desktop copy instead of failing on the missing Pi files."""

from __future__ import annotations

import json
from pathlib import Path

from test_pull import FRAMES, SESSION, make_pi, write_stream_copy

from controller.rig.cameras import CameraInfo
from controller.session.store import delete_camera_copies, session_details
from controller.transfer import LocalTransport, pull_session
from controller.transfer.ledger import read_ledger


def _session(tmp_path: Path) -> tuple[Path, Path, list[CameraInfo]]:
    pi = tmp_path / "pi"
    frames = make_pi(pi, "cam0")["frames"]
    root = tmp_path / "sessions"
    session = root / SESSION
    (session / "raw").mkdir(parents=True)
    (session / "session.json").write_text(
        json.dumps({"id": SESSION, "cameras": [{"name": "cam0", "frames": FRAMES}]})
    )
    write_stream_copy(session, frames, set(range(FRAMES)) - {5, 6, 7})
    return root, pi, [CameraInfo("cam0", "localhost", "server", 8, 8, pi)]


def test_a_re_pull_appends_and_keeps_how_the_footage_arrived(tmp_path: Path) -> None:
    root, pi, _cameras = _session(tmp_path)
    sources = {"cam0": lambda: LocalTransport(pi)}
    assert pull_session(root / SESSION, sources)["ok"]
    first = read_ledger(root / SESSION)["cameras"]["cam0"]
    video = first["files"]["cam0.h264"]
    assert video["source"] == "stream+pi" and video["gap_fill"]["frames_from_pi"] == 3
    assert pull_session(root / SESSION, sources)["ok"]  # "Pull & verify again"
    again = read_ledger(root / SESSION)["cameras"]["cam0"]
    kept = again["files"]["cam0.h264"]
    assert kept["source"] == "stream+pi" and kept["gap_fill"] == video["gap_fill"]
    assert kept["verified_at"] == video["verified_at"] and kept["reverified_at"] > video["verified_at"]
    assert [p["files"]["cam0.h264"]["source"] for p in again["pulls"]] == ["stream+pi", "already present"]
    assert again["pulls"][0] == first["pulls"][0]  # the first pull's record is untouched


def test_verified_is_derived_from_the_files_now(tmp_path: Path) -> None:
    root, pi, cameras = _session(tmp_path)
    sources = {"cam0": lambda: LocalTransport(pi)}
    assert pull_session(root / SESSION, sources)["ok"]
    details = session_details(root, SESSION, cameras)
    assert details["footage_summary"].startswith("verified on the desktop")

    delete_camera_copies(root, SESSION, sources, SESSION)
    details = session_details(root, SESSION, cameras)
    assert details["on_cameras"]["cam0"] is False
    assert details["footage_summary"].startswith("on the desktop only: camera copies deleted (cam0)")
    assert not details["footage_summary"].startswith("verified")

    result = pull_session(root / SESSION, sources)  # a re-pull after the delete works
    assert result["ok"], result
    assert (
        result["cameras"]["cam0"]["files"]["cam0.h264"]["source"] == "already present (camera copy deleted)"
    )
    ledger = read_ledger(root / SESSION)["cameras"]["cam0"]
    assert len(ledger["pulls"]) == 2 and "error" not in ledger
    assert ledger["files"]["cam0.h264"]["source"] == "stream+pi"  # how it arrived, still

    video = root / SESSION / "raw" / "cam0.h264"
    video.write_bytes(video.read_bytes()[:-10])  # the desktop copy damaged: no longer verified
    details = session_details(root, SESSION, cameras)
    assert details["footage_summary"].startswith("NOT verified on the desktop: cam0: cam0.h264: size changed")
    result = pull_session(root / SESSION, sources)  # nothing to pull from: fails, and says so
    assert not result["ok"]
    assert read_ledger(root / SESSION)["cameras"]["cam0"]["error"]
    assert len(read_ledger(root / SESSION)["cameras"]["cam0"]["pulls"]) == 3
