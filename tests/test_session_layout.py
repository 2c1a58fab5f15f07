"""The session directory's one layout, the one manifest reader and the synced-cameras question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.session import SessionLayout
from controller.session.store import list_sessions
from controller.session.synced import NotSynced, synced_cameras
from syncrig_agent.contract.formats import ManifestError, SessionManifest, read_manifest, write_manifest
from syncrig_agent.contract.ids import InvalidName


def test_layout_paths(tmp_path: Path) -> None:
    layout = SessionLayout(tmp_path)
    assert layout.manifest == tmp_path / "session.json"
    assert layout.raw.files("cam0") == {
        "h264": tmp_path / "raw" / "cam0.h264",
        "pts": tmp_path / "raw" / "cam0.pts",
        "frames": tmp_path / "raw" / "cam0.frames.csv",
    }
    assert layout.synced.match_csv == tmp_path / "synced" / "match.csv"
    assert layout.synced.map("cam1") == tmp_path / "synced" / "cam1.map.csv"
    assert layout.trim(3, 40).files("cam0")["mp4"] == tmp_path / "trimmed" / "3-40" / "cam0.mp4"
    assert layout.output_label(layout.trim(3, 40)) == "trimmed/3-40"
    assert layout.stream.segment_template("cam2") == tmp_path / "stream" / "cam2_%03d.mkv"
    # The Pi's copy, relative to its data directory, as the transports name it.
    assert SessionLayout("s1").raw.video("cam0").as_posix() == "s1/raw/cam0.h264"
    for bad in ("../x", "a/b", ""):
        with pytest.raises(InvalidName):
            layout.synced.video(bad)


def test_stream_segments_are_numbered(tmp_path: Path) -> None:
    stream = SessionLayout(tmp_path).stream
    stream.path.mkdir()
    for name in ("cam0_002.mkv", "cam0_010.mkv", "cam0_x.mkv", "cam01_001.mkv"):
        (stream.path / name).write_bytes(b"")
    assert list(stream.segments("cam0")) == [2, 10]


def _manifest() -> SessionManifest:
    return SessionManifest(
        id="s1",
        subject=None,
        project=None,
        created="2026-01-01T00:00:00Z",
        fps=30.0,
        period_ns=33_333_333,
        t0_ns=1,
    )


def test_manifest_missing_field_names_the_field_and_the_file(tmp_path: Path) -> None:
    write_manifest(tmp_path, _manifest())
    assert read_manifest(tmp_path).created == "2026-01-01T00:00:00Z"
    data = json.loads((tmp_path / "session.json").read_text())
    del data["created"], data["t0_ns"]
    (tmp_path / "session.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError) as err:
        read_manifest(tmp_path)
    assert "created" in str(err.value) and "t0_ns" in str(err.value)
    assert str(tmp_path / "session.json") in str(err.value)
    assert isinstance(err.value, ValueError)


def test_manifest_that_is_not_an_object_or_not_json(tmp_path: Path) -> None:
    (tmp_path / "session.json").write_text("[1, 2]")
    with pytest.raises(ManifestError, match="not a JSON object"):
        read_manifest(tmp_path)
    (tmp_path / "session.json").write_text("{")
    with pytest.raises(ManifestError, match="session.json"):
        read_manifest(tmp_path)


def test_session_list_still_shows_partial_and_broken_manifests(tmp_path: Path) -> None:
    (tmp_path / "a-partial").mkdir()
    (tmp_path / "a-partial" / "session.json").write_text(
        json.dumps({"id": "a-partial", "cameras": [{"name": "c"}]})
    )
    (tmp_path / "b-broken").mkdir()
    (tmp_path / "b-broken" / "session.json").write_text("{")
    listed = {e["id"]: e for e in list_sessions(tmp_path)}
    assert listed["a-partial"]["cameras"] == ["c"] and listed["a-partial"]["created"] is None
    assert listed["b-broken"]["error"].startswith("unreadable manifest")


def test_synced_cameras(tmp_path: Path) -> None:
    with pytest.raises(NotSynced, match=r"not synced yet .*match\.csv.*run `syncrig sync"):
        synced_cameras(tmp_path)
    synced = SessionLayout(tmp_path).synced
    synced.path.mkdir()
    synced.match_csv.write_text("")
    with pytest.raises(NotSynced, match="cannot read"):
        synced_cameras(tmp_path)
    synced.match_csv.write_text("cam0,cam1\n0,\n1,0\n")
    assert synced_cameras(tmp_path) == ["cam0", "cam1"]
    synced.match_csv.write_text("cam0,../up\n0,0\n")
    with pytest.raises(NotSynced, match="bad camera name"):
        synced_cameras(tmp_path)
