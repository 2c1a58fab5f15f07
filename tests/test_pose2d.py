"""2D pose, offline, in the pose side environment (made on first use; needs the package index
once — skipped loudly when it cannot be made). A real photograph shipped by a pip package
(matplotlib's sample grace_hopper.jpg: a head-and-shoulders portrait, no hands in view) must give
the expected landmarks; a synced session's video runs through `syncrig pose`, is interrupted and
resumes from its checkpoint."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from controller.dataset.pose.env import PoseEnvError, ensure_pose_env
from controller.dataset.pose.keypoints import KEYPOINT_NAMES, group_slices
from controller.dataset.pose.pose2d import Pose2D
from controller.dataset.pose.run import estimate_images, pose_camera, pose_session
from controller.dataset.pose.synthetic import ring_cameras, skeleton_motion, write_synthetic_session
from syncrig_agent.contract.layout import SessionLayout


@pytest.fixture(scope="module")
def pose_python():
    try:
        return ensure_pose_env()
    except PoseEnvError as exc:
        pytest.skip(f"POSE SIDE ENVIRONMENT UNAVAILABLE, 2D pose not tested: {exc}")


def _grace_hopper() -> np.ndarray:
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        return np.asarray(Image.open(fh).convert("RGB"))


def _no_network_launcher() -> list[str] | None:
    """`unshare --net` (a new network namespace with nothing but a down loopback) when we may."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return [unshare, "--net"]
    return None


def test_photo_landmarks_offline(pose_python):
    img = _grace_hopper()
    h, w = img.shape[:2]
    launcher = _no_network_launcher()
    if launcher is None:
        print("NOTE: cannot make a network namespace here; the worker ran with the network present")
    kp, info = estimate_images([img], pose_python, launcher=launcher)
    kp = kp[0]
    assert info["unavailable_groups"] == [], info
    assert info["model_version"] == "mediapipe 0.10.21"
    s = group_slices()
    idx = {n: i for i, n in enumerate(KEYPOINT_NAMES)}
    face = kp[s["face"]]
    assert np.isfinite(face[:, :2]).all(), "face mesh not found"
    x0, y0 = face[:, :2].min(axis=0)
    x1, y1 = face[:, :2].max(axis=0)
    # The face box is a plausible face: inside the image, a fair part of a portrait.
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert 0.15 * w < x1 - x0 < 0.7 * w and 0.15 * h < y1 - y0 < 0.7 * h
    nose = kp[idx["nose"]]
    assert nose[2] > 0.9
    assert x0 < nose[0] < x1 and y0 < nose[1] < y1
    for side in ("left", "right"):
        shoulder = kp[idx[f"{side}_shoulder"]]
        assert shoulder[2] > 0.5 and shoulder[1] > y1 - 0.1 * (y1 - y0)  # below the face
        wrist = kp[idx[f"{side}_wrist"]]
        assert wrist[1] > shoulder[1]  # out of the frame in this portrait: below the shoulders
    assert kp[idx["left_shoulder"], 0] > kp[idx["right_shoulder"], 0]  # subject's left on image right
    eyes = kp[[idx["left_eye"], idx["right_eye"]]]
    assert (eyes[:, 1] < nose[1]).all()
    # Face confidence is defined from the pose's face landmarks: high here.
    assert face[:, 2].min() > 0.9
    # No hand is in view: hands are NaN with confidence 0, not invented.
    for g in ("left_hand", "right_hand"):
        hand = kp[s[g]]
        assert (np.isnan(hand[:, 0]) & (hand[:, 2] == 0)).all() or (hand[:, 1] > y1).all()


def test_pose_session_resumes_after_interruption(pose_python, tmp_path):
    session = tmp_path / "sess"
    cams = ring_cameras(2, size=(640, 360))
    write_synthetic_session(session, cams, skeleton_motion(12, 30.0), video_scale=0.5, drop_prob=0.0)
    for cam in cams:
        SessionLayout(session).pose2d_file(cam.name).unlink()  # the synthetic 2D keypoints: estimate instead
    first = pose_camera(session, "cam0", pose_python, checkpoint_every=2, stop_after=5)
    assert first["status"] == "interrupted" and first["frames"] == 5
    partial = Pose2D.load(SessionLayout(session).pose2d_partial("cam0"))
    assert len(partial.rows) == 5
    results = pose_session(session)
    by_cam = {r["camera"]: r for r in results}
    assert by_cam["cam0"]["status"] == "done" and by_cam["cam0"]["estimated_now"] == 7  # resumed
    assert by_cam["cam1"]["estimated_now"] == 12
    assert not SessionLayout(session).pose2d_partial("cam0").exists()
    p = Pose2D.load(SessionLayout(session).pose2d_file("cam0"))
    assert p.keypoints.shape == (12, len(KEYPOINT_NAMES), 3) and p.image_size == (320, 180)
    assert list(p.rows) == list(range(12)) and p.meta["model_version"] == "mediapipe 0.10.21"
    # Current files are not estimated again.
    assert {r["status"] for r in pose_session(session)} == {"up to date"}


def test_pose_env_without_a_package_index_fails_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # as on a machine that cannot reach PyPI
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    messages: list[str] = []
    with pytest.raises(PoseEnvError) as err:
        ensure_pose_env(tmp_path / "pose-env", say=messages.append)
    assert "cannot create the 2D pose environment" in str(err.value)
    assert "package index" in str(err.value)
    assert any("creating the pose environment" in m for m in messages)
