"""End to end after 2D pose, no model needed: a synthetic synced session (known cameras, a moving
skeleton projected with noise, missing points, outliers and dropped frames, small synced videos)
→ `syncrig triangulate` → `syncrig export` in every format, each read back by its reader
(TRC header, anipose CSV columns, pynwb, ezc3d). Plus the clear errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from controller.cli.main import main
from controller.dataset.cameras import load_calibration_toml, save_calibration_toml
from controller.dataset.export import export_session
from controller.dataset.export.trc import read_trc_header
from controller.dataset.pose.keypoints import KEYPOINT_NAMES
from controller.dataset.pose.pose3d import load_pose3d
from controller.dataset.pose.synthetic import ring_cameras, skeleton_motion, write_synthetic_session
from syncrig_agent.contract.layout import SessionLayout

FPS = 30.0
FRAMES = 45


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    path = tmp_path_factory.mktemp("dataset") / "20260101T000000Z-1_synthetic_s1"
    cams = ring_cameras(4, seed=5)
    truth = skeleton_motion(FRAMES, FPS, seed=5)
    write_synthetic_session(
        path, cams, truth, fps=FPS, noise_px=1.0, outlier_frac=0.05, missing_frac=0.1, seed=5
    )
    return path, truth


def test_triangulate_export_and_read_back(session, capsys):
    path, truth = session
    assert main(["triangulate", str(path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "labelled samples" in out and "per hour" not in out.split("labelled samples")[0]
    assert "(sequence)" in out and "dropped:" in out
    pose = load_pose3d(path)
    assert pose.points.shape == (FRAMES, len(KEYPOINT_NAMES), 3)
    err = np.linalg.norm(pose.points - truth, axis=-1)
    assert np.nanmedian(err) < 5.0  # mm, 1 px noise at ~3 m
    assert np.isfinite(err).mean() > 0.9
    report = json.loads(SessionLayout(path).pose3d_report.read_text())
    samples = report["samples"]
    assert samples["rows"] == FRAMES
    assert samples["recording_hours"] == pytest.approx(FRAMES / FPS / 3600, rel=1e-3)
    body = samples["groups"]["body"]
    assert body["labelled_rows"] > 0.8 * FRAMES
    assert body["per_hour"] == pytest.approx(body["labelled_rows"] / samples["recording_hours"], rel=1e-3)
    assert all(0 < c["outlier_rate"] < 0.15 for c in report["cameras"].values())
    # Quality per joint, bones, drop causes, views, plots.
    wrist = report["joints"]["left_wrist"]
    assert wrist["coverage"] > 0.9 and wrist["reprojection_px"]["p90"] < 10 and wrist["jumps"] == 0
    assert set(wrist["cameras"]) == {c.name for c in ring_cameras(4, seed=5)}
    assert report["bones"]["left_shoulder-left_elbow"]["length_mm_median"] == pytest.approx(290, abs=30)
    assert not report["drop_causes"]["body"]["never_seen"] and report["drop_causes"]["body"]["coverage"] > 0.9
    assert all(v["frames_excluded"] == 0 for v in report["views"].values())
    plots = SessionLayout(path).pose3d_plots
    assert {"bone_lengths", "coverage"} <= set(report["plots"])
    assert (plots / "bone_lengths.png").stat().st_size > 1000 and (plots / "coverage.svg").is_file()
    # Row times: the shared clock, one period apart.
    assert np.allclose(np.diff(pose.time_ns), 1e9 / FPS, atol=5e5)

    # TRC
    assert main(["export", str(path), "--format", "trc", "--quiet"]) == 0
    trc = SessionLayout(path).exports_dir / f"{path.name}.trc"
    h = read_trc_header(trc)
    assert (h["DataRate"], h["CameraRate"], h["OrigDataRate"]) == ("30", "30", "30")
    assert int(h["NumFrames"]) == FRAMES and int(h["NumMarkers"]) == len(KEYPOINT_NAMES)
    assert h["Units"] == "mm" and h["markers"] == list(KEYPOINT_NAMES)
    assert h["coordinate_row"][2:5] == ["X1", "Y1", "Z1"]
    lines = trc.read_text().split("\n")
    assert lines[5] == "" and lines[6].split("\t")[0] == "1"
    first = lines[6].split("\t")
    assert len(first) == 2 + 3 * len(KEYPOINT_NAMES)
    nose = pose.points[0, 0]
    if np.isfinite(nose).all():  # Y-up: (x, z, -y)
        assert [float(v) for v in first[2:5]] == pytest.approx([nose[0], nose[2], -nose[1]], abs=1e-3)

    # anipose CSV
    assert main(["export", str(path), "--format", "csv", "--quiet"]) == 0
    with open(SessionLayout(path).exports_dir / f"{path.name}.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == FRAMES
    cols = rows[0].keys()
    for suffix in ("x", "y", "z", "error", "ncams", "score"):
        assert f"left_wrist_{suffix}" in cols
    assert {"M_00", "M_22", "center_0", "center_2", "fnum"} <= set(cols)
    assert [int(r["fnum"]) for r in rows] == list(range(FRAMES))
    k = KEYPOINT_NAMES.index("left_wrist")
    r0 = rows[3]
    if r0["left_wrist_x"]:
        assert float(r0["left_wrist_x"]) == pytest.approx(pose.points[3, k, 0], rel=1e-5)
        assert int(r0["left_wrist_ncams"]) == pose.ncams[3, k]

    # C3D, read back with ezc3d
    ezc3d = pytest.importorskip("ezc3d", reason="C3D export needs ezc3d (the c3d/test extras)")
    assert main(["export", str(path), "--format", "c3d", "--quiet"]) == 0
    back = ezc3d.c3d(str(SessionLayout(path).exports_dir / f"{path.name}.c3d"))
    point = back["parameters"]["POINT"]
    labels = [
        *point["LABELS"]["value"],
        *point.get("LABELS2", {}).get("value", []),
        *point.get("LABELS3", {}).get("value", []),
    ]
    assert labels == list(KEYPOINT_NAMES) and point["RATE"]["value"][0] == FPS
    assert point["UNITS"]["value"] == ["mm"]
    xyz = back["data"]["points"][:3].transpose(2, 1, 0)  # (frames, points, 3)
    assert xyz.shape == pose.points.shape
    assert np.array_equal(np.isnan(xyz).any(-1), ~pose.valid)
    assert np.allclose(xyz[pose.valid], pose.points[pose.valid], atol=1e-3)


def test_nwb_export_reads_back_with_pynwb(session):
    pynwb = pytest.importorskip("pynwb", reason="NWB export needs the nwb extra (pynwb, ndx-pose)")
    pytest.importorskip("ndx_pose")
    path, _ = session
    if not SessionLayout(path).pose3d_file.is_file():
        assert main(["triangulate", str(path), "--quiet"]) == 0
    pose = load_pose3d(path)
    # Body and hands (75 keypoints, 3D + each camera's 2D); the face's 478 series per camera would
    # make this test take a minute (pynwb builds one object per series), which the CLI default does
    # not write either.
    out = export_session(path, "nwb", only_groups=("body", "left_hand", "right_hand"))
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert nwb.session_id == path.name
        behavior = nwb.processing["behavior"]
        assert set(behavior["Skeletons"].skeletons) == {"body", "left_hand", "right_hand"}
        assert list(behavior["Skeletons"].skeletons["body"].nodes[:3]) == [
            "nose",
            "left_eye_inner",
            "left_eye",
        ]
        multi = behavior["pose3d_body"]
        nose = multi.pose_estimation_series["nose"]
        assert nose.data.shape == (FRAMES, 3) and nose.unit == "meters"
        assert np.allclose(nose.timestamps[:], pose.time_ns / 1e9)
        assert np.allclose(np.asarray(nose.data[:]) * 1000, pose.points[:, 0], equal_nan=True, atol=1e-3)
        per_cam = multi.pose_estimations["body_cam1"]
        assert per_cam.device.name == "cam1"
        cal = {c.name: c for c in load_calibration_toml(SessionLayout(path).calibration_toml)[0]}
        assert np.allclose(per_cam.device.intrinsic_matrix[:], cal["cam1"].matrix)
        video = per_cam.source_video
        assert video.external_file[0] == "../synced/cam1.mp4"
        assert (out.parent / video.external_file[0]).is_file()
        map_rows = np.loadtxt(path / "synced" / "cam1.map.csv", delimiter=",", skiprows=1, ndmin=2)
        assert np.allclose(video.timestamps[:], map_rows[:, 4] / 1e9)  # pts_ns, shared clock
        wrist2d = per_cam.pose_estimation_series["left_wrist"]
        assert wrist2d.unit == "pixels" and wrist2d.data.shape[1] == 2
        assert "video_cam0" in nwb.acquisition


def test_clear_errors(session, tmp_path, capsys):
    path, _ = session
    # Not synced.
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["triangulate", str(empty), "--quiet"]) == 1
    assert "not synced" in capsys.readouterr().err
    # No calibration.
    assert main(["triangulate", str(path), "--calibration", str(tmp_path / "none.toml"), "--quiet"]) == 1
    assert "no calibration" in capsys.readouterr().err
    # A calibration without the session's cameras.
    cams, _ = load_calibration_toml(SessionLayout(path).calibration_toml)
    for i, c in enumerate(cams):
        c.name = f"other{i}"
    other = tmp_path / "other.toml"
    save_calibration_toml(other, cams)
    assert main(["triangulate", str(path), "--calibration", str(other), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "cam0" in err and "not in the calibration" in err
    # Export before triangulation; pose without synced outputs; unknown camera.
    assert main(["export", str(empty), "--format", "csv", "--quiet"]) == 1
    assert "syncrig triangulate" in capsys.readouterr().err
    assert main(["pose", str(empty), "--quiet"]) == 1
    assert "not synced" in capsys.readouterr().err
    assert main(["pose", str(path), "--cameras", "camX", "--quiet"]) == 1
    assert "unknown camera" in capsys.readouterr().err
