"""Honest outputs of triangulation, on a hand-made `pose3d/points.npz` (no triangulation needed):
a group never seen (the face here) is left out of every export and the CLI says so, it does not
zero the "all groups" sample count, and smoothing says what it filtered and what it left."""

from __future__ import annotations

import numpy as np
import pytest

from controller.cli.main import main
from controller.dataset.export import export_session, seen_keypoints
from controller.dataset.export.trc import read_trc_header
from controller.dataset.pose.keypoints import KEYPOINT_NAMES, group_slices
from controller.dataset.pose.pose3d import Pose3D, sample_summary
from controller.dataset.pose.triangulate import smooth_points_report
from syncrig_agent.contract.layout import SessionLayout

FPS = 30.0
ROWS = 20


@pytest.fixture
def faceless(tmp_path):
    """A session whose face was never seen: face points NaN in every row."""
    k = len(KEYPOINT_NAMES)
    rng = np.random.default_rng(0)
    points = rng.normal(0, 300, (ROWS, k, 3)).astype(np.float32)
    points[:, group_slices()["face"]] = np.nan
    valid = np.isfinite(points).all(-1)
    pose = Pose3D(
        points=points,
        error_px=np.where(valid, 2.0, np.nan).astype(np.float32),
        ncams=np.where(valid, 3, 0).astype(np.int8),
        score=np.where(valid, 0.9, np.nan).astype(np.float32),
        inliers=np.where(valid, 7, 0).astype(np.uint32),
        rows=np.arange(ROWS),
        time_ns=np.arange(ROWS) * round(1e9 / FPS),
        names=KEYPOINT_NAMES,
        cameras=("cam0", "cam1", "cam2"),
        meta={"units": "mm", "fps": FPS},
    )
    session = tmp_path / "faceless"
    pose.save(SessionLayout(session).pose3d_file)
    return session, pose


def test_never_seen_group_is_left_out_of_exports_and_said(faceless, capsys):
    session, pose = faceless
    keep, left_out = seen_keypoints(pose)
    assert left_out == ["face"]
    expected = [n for n in KEYPOINT_NAMES if not n.startswith("face_")]
    assert [pose.names[i] for i in keep] == expected
    assert main(["export", str(session), "--format", "trc", "--quiet"]) == 0
    assert "left out (never seen by any camera in 3D): face" in capsys.readouterr().out
    trc = read_trc_header(SessionLayout(session).export_file(".trc"))
    assert trc["markers"] == expected and int(trc["NumMarkers"]) == len(expected)
    header = export_session(session, "csv").read_text().split("\n")[0].split(",")
    assert "face_000_x" not in header and "left_wrist_x" in header
    ezc3d = pytest.importorskip("ezc3d", reason="C3D export needs ezc3d (the c3d/test extras)")
    back = ezc3d.c3d(str(export_session(session, "c3d")))
    assert list(back["parameters"]["POINT"]["LABELS"]["value"]) == expected
    assert np.allclose(back["data"]["points"][:3].transpose(2, 1, 0), pose.points[:, keep], atol=1e-3)


def test_missing_group_does_not_zero_all_groups(faceless):
    _session, pose = faceless
    s = sample_summary(pose, round(1e9 / FPS))
    assert s["groups"]["face"]["labelled_rows"] == 0 and s["groups"]["face"]["never_seen"]
    assert s["all_groups"]["labelled_rows"] == ROWS


def test_smoothing_says_what_it_filtered():
    pts = np.cumsum(np.random.default_rng(1).normal(0, 1, (60, 2, 3)), axis=0)
    pts[10, 0] = np.nan  # keypoint 0: runs of 10 and 49 frames; keypoint 1: one run of 60
    out, info = smooth_points_report(pts, FPS, cutoff_hz=6.0)
    assert info["samples_filtered"] == 49 + 60 and info["samples_left_unfiltered"] == 10
    assert "shorter than 16 frames" in info["why_unfiltered"]
    assert np.array_equal(out[:10, 0], pts[:10, 0]) and not np.allclose(out[11:, 0], pts[11:, 0])
    _out, above = smooth_points_report(pts, FPS, cutoff_hz=20.0)
    assert above["samples_filtered"] == 0 and "Nyquist" in above["why_unfiltered"]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--subject-region", "cam0:10,10,5,20", "x0 < x1"),
        ("--subject-region", "cam0-10,10,50,20", "CAM:x0,y0,x1,y1"),
        ("--subject-volume", "0,0,1000", "x,y,z,radius"),
        ("--subject-volume", "0,0,1000,-5", "radius must be > 0"),
    ],
)
def test_subject_options_say_what_is_wrong(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exc:
        main(["triangulate", str(tmp_path), option, value])
    assert exc.value.code == 2 and message in capsys.readouterr().err
