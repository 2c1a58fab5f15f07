"""Sequence triangulation (pose/sequence.py, pose/views.py) on synthetic ground truth: injected
left/right swaps are found and corrected while clean views are left alone, a camera that follows
another person is excluded in exactly those frames, the chosen subject's region excludes the
other person, and any keypoint set (not only MediaPipe's) runs with its own skeleton."""

from __future__ import annotations

import numpy as np

from controller.dataset.pose.keypoints import BODY, Skeleton, mirror_pairs, skeleton_of
from controller.dataset.pose.sequence import KEPT, ONE_VIEW, triangulate_sequence
from controller.dataset.pose.synthetic import observe, ring_cameras, skeleton_motion
from controller.dataset.pose.views import region_mask

FPS = 30.0
K = len(BODY)


def _scene(frames: int = 60, cameras: int = 4, seed: int = 2):
    cams = ring_cameras(cameras, seed=seed)
    truth = skeleton_motion(frames, FPS, seed=seed)[:, :K]
    obs = observe(cams, truth, noise_px=1.0, seed=seed)
    pixels = obs.pixels.transpose(0, 2, 1, 3).copy()  # (T, K, C, 2)
    conf = obs.confidence.transpose(0, 2, 1).copy()
    return cams, truth, pixels, conf


def _run(cams, pixels, conf, **kw):
    # The synthetic skeleton wobbles each keypoint on its own (its bones change length), so no
    # edge is declared rigid here; bone constancy is measured on real footage (benchmark).
    skeleton = Skeleton(skeleton_of(BODY).edges, ())
    return triangulate_sequence(cams, pixels, conf, BODY, skeleton, FPS, **kw)


def _swap(pixels, frames, cam, pairs):
    for a, b in pairs:
        pixels[frames, a, cam], pixels[frames, b, cam] = (
            pixels[frames, b, cam].copy(),
            pixels[frames, a, cam].copy(),
        )


def test_injected_swaps_are_found_and_clean_views_left_alone():
    cams, truth, pixels, conf = _scene()
    pairs = mirror_pairs(BODY)
    knees = (BODY.index("left_knee"), BODY.index("right_knee"))
    _swap(pixels, slice(10, 20), 1, pairs)  # the whole view, as a model facing the wrong way
    _swap(pixels, slice(30, 35), 2, [knees])  # one pair
    res = _run(cams, pixels, conf)
    whole = res.checks.swapped_view
    assert whole[10:20, 1].all()
    assert whole.sum() == 10, "a clean view was swapped"
    p_knee = pairs.index(knees)
    assert res.checks.swapped_pairs[30:35, p_knee, 2].all()
    injected = np.zeros_like(res.checks.swapped_pairs)
    injected[10:20, :, 1] = True
    injected[30:35, p_knee, 2] = True
    wrong = res.checks.swapped_pairs & ~injected
    assert not wrong.any(), f"{wrong.sum()} clean pair observations swapped"
    err = np.linalg.norm(res.points - truth, axis=-1)
    assert np.isfinite(err).all()
    assert np.median(err) < 5.0 and err.max() < 40.0
    assert not res.checks.inconsistent.any()


def test_camera_following_another_person_is_excluded_in_those_frames():
    cams, truth, pixels, conf = _scene()
    other = skeleton_motion(truth.shape[0], FPS, seed=9)[:, :K] + np.array([900.0, 700.0, 0.0])
    seen_other = np.stack([c.project(other) for c in cams], axis=2)  # (T, K, C, 2)
    pixels[:40, :, 3] = seen_other[:40, :, 3]
    res = _run(cams, pixels, conf)
    excluded = res.checks.inconsistent
    assert excluded[:40, 3].all() and not excluded[40:, 3].any()
    assert not excluded[:, :3].any()
    err = np.linalg.norm(res.points - truth, axis=-1)
    assert np.isfinite(err).all() and np.median(err) < 5.0 and err.max() < 40.0


def test_subject_region_excludes_the_other_person():
    cams, truth, pixels, conf = _scene()
    other = skeleton_motion(truth.shape[0], FPS, seed=9)[:, :K] + np.array([900.0, 700.0, 0.0])
    pixels[:, :, 3] = np.stack([c.project(other) for c in cams], axis=2)[:, :, 3]
    # The user draws the subject's region in camera 3 around where the subject really is.
    true_px = cams[3].project(truth)
    box = (*np.nanmin(true_px, axis=(0, 1)) - 20, *np.nanmax(true_px, axis=(0, 1)) + 20)
    subject = region_mask(pixels, conf, {3: tuple(box)})
    assert (~subject[:, 3]).mean() > 0.8
    res = _run(cams, pixels, conf, subject=subject)
    err = np.linalg.norm(res.points - truth, axis=-1)
    assert np.nanmedian(err) < 5.0


def test_any_keypoint_set_with_its_own_skeleton_and_no_invented_points():
    cams, truth, pixels, conf = _scene(frames=30)
    names = ("snout", "leftEar", "rightEar", "tailbase")
    pick = [BODY.index(n) for n in ("nose", "left_ear", "right_ear", "left_hip")]
    meta = {
        "skeleton": {
            "edges": [["snout", "leftEar"], ["snout", "rightEar"], ["snout", "tailbase"]],
            "rigid": [],
        }
    }
    skeleton = skeleton_of(names, meta)
    assert skeleton.edges == ((0, 1), (0, 2), (0, 3)) and skeleton.rigid == ()
    assert mirror_pairs(names) == ((1, 2),)
    px, cf = pixels[:, pick].copy(), conf[:, pick].copy()
    cf[5:8, 3, 1:] = 0  # the tail base seen by one camera only in frames 5–7
    res = triangulate_sequence(cams, px, cf, names, skeleton, FPS)
    assert np.isnan(res.points[5:8, 3]).all() and (res.cause[5:8, 3] == ONE_VIEW).all()
    kept = res.cause == KEPT
    assert kept.sum() == kept.size - 3
    err = np.linalg.norm(res.points - truth[:, pick], axis=-1)[kept]
    assert np.median(err) < 5.0


def test_bone_constancy_only_on_declared_rigid_edges():
    """MediaPipe's mouth edge is drawn but not rigid; its limbs are."""
    sk = skeleton_of(BODY)
    mouth = (BODY.index("mouth_left"), BODY.index("mouth_right"))
    upper_arm = (BODY.index("left_shoulder"), BODY.index("left_elbow"))
    assert mouth in sk.edges and mouth not in sk.rigid
    assert upper_arm in sk.rigid


def test_long_sessions_in_chunks_and_windows_match_one_solve(monkeypatch):
    """Rows solved in chunks (methods.py) and frames in windows (sequence.py), each with context
    on both sides, give the same tracks as one solve: no seam at the borders."""
    from controller.dataset.cameras import CameraSet
    from controller.dataset.pose import methods, sequence
    from controller.dataset.pose.pose2d import Pose2D

    cams, truth, pixels, conf = _scene(frames=60)
    period = round(1e9 / FPS)
    # No rigid edge (the synthetic bones stretch): the chunks then share nothing but the tracks.
    edges = [[BODY[a], BODY[b]] for a, b in skeleton_of(BODY).edges]
    meta = {"skeleton": {"edges": edges, "rigid": []}}
    poses = [
        Pose2D(c.name, np.concatenate([pixels[:, :, i], conf[:, :, i, None]], -1), np.arange(60),
               np.arange(60) * period, BODY, c.size, meta)
        for i, c in enumerate(cams)
    ]  # fmt: skip
    args = (CameraSet(cams), poses, 60, FPS, 0.3, None, 60.0, None)
    whole, _ = methods.triangulate_sequence_rows(*args)
    monkeypatch.setattr(methods, "CHUNK_ROWS", 20)
    monkeypatch.setattr(methods, "CHUNK_OVERLAP", 10)
    monkeypatch.setattr(sequence, "WINDOW_FRAMES", 15)
    monkeypatch.setattr(sequence, "WINDOW_OVERLAP", 8)
    pieces, extra = methods.triangulate_sequence_rows(*args)
    assert np.isfinite(pieces["points"]).all()
    assert np.abs(pieces["points"] - whole["points"]).max() < 5.0
    steps = np.linalg.norm(np.diff(pieces["points"], axis=0), axis=-1)
    assert steps.max() < 60.0
    assert extra["views"]["cam0"]["frames_judged"] == 60
