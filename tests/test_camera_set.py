"""CameraSet, the calibrated cameras as one object: project and triangulate are inverse to each
other, subsets keep the order asked for, and both calibration files round-trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from controller.dataset.cameras import CalibrationFileError, CameraSet
from controller.dataset.pose.synthetic import ring_cameras, skeleton_motion


def test_project_then_triangulate_gives_the_points_back() -> None:
    cameras = CameraSet(ring_cameras(4, seed=1))
    truth = skeleton_motion(5, 30.0, seed=1)  # (T, K, 3)
    pixels = cameras.project(truth)
    assert pixels.shape == (*truth.shape[:-1], 4, 2)
    pixels[0, 0, 2] = np.nan  # one camera missed one keypoint: the other three still place it
    tri = cameras.triangulate(pixels)
    assert np.abs(tri.points - truth).max() < 1e-6
    assert tri.ncams[0, 0] == 3 and tri.ncams[1, 0] == 4


def test_subset_by_names_keeps_the_order_asked_for() -> None:
    cameras = CameraSet(ring_cameras(4), {"units": "mm"})
    sub = cameras.subset(["cam3", "cam1"])
    assert sub.names == ("cam3", "cam1") and sub.metadata == {"units": "mm"}
    assert sub["cam1"] is cameras[1] and sub.get("cam0") is None and "cam3" in sub
    with pytest.raises(KeyError, match="cam9.*cam0, cam1, cam2, cam3"):
        cameras.subset(["cam9"])
    with pytest.raises(CalibrationFileError, match="repeat"):
        CameraSet([cameras[0], cameras[0]])


def test_calibration_and_pose2sim_files_round_trip(tmp_path: Path) -> None:
    cameras = CameraSet(ring_cameras(3, seed=2), {"units": "mm", "error": 0.25})
    cameras.save(tmp_path / "calibration.toml")
    cameras.save_pose2sim(tmp_path / "Calib.toml", error_px=0.25)
    anipose, pose2sim = tmp_path / "calibration.toml", tmp_path / "Calib.toml"
    for loaded in (CameraSet.load(anipose), CameraSet.load_pose2sim(pose2sim)):
        assert loaded.names == cameras.names
        for a, b in zip(loaded, cameras, strict=True):
            assert a.size == b.size and np.allclose(a.matrix, b.matrix)
            assert np.allclose(a.translation, b.translation)  # Calib.toml's metres back to mm
            assert np.allclose(a.rotation, b.rotation)
    assert CameraSet.load(tmp_path / "calibration.toml").metadata == {"units": "mm", "error": 0.25}
    assert CameraSet.load_pose2sim(tmp_path / "Calib.toml").metadata == {"adjusted": True, "error": 0.25}
    (tmp_path / "empty.toml").write_text("[metadata]\n")
    with pytest.raises(CalibrationFileError, match="no cameras"):
        CameraSet.load(tmp_path / "empty.toml")
