"""Initial extrinsics, before the bundle adjustment: each view's board pose by PnP, each camera
pair's relative pose from the rows both saw (a robust average), the cameras chained through the
strongest spanning tree of the co-visibility graph, and an initial board pose per row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.dataset.calibrate.errors import CalibrationError
from controller.dataset.calibrate.geometry import average_rotations, compose, invert, project_camera_points
from controller.dataset.calibrate.intrinsics import Intrinsics
from controller.dataset.calibrate.views import View

Pose = tuple[np.ndarray, np.ndarray]  # (R (3, 3), t (3,)): x ↦ R x + t


@dataclass
class ViewPose:
    rot: np.ndarray  # board → camera
    trans: np.ndarray
    rms_px: float
    corners: int


def board_pose(view: View, corners_mm: np.ndarray, intr: Intrinsics) -> ViewPose | None:
    """The board's pose in the camera for one view (PnP on undistorted points, IPPE: the planar
    solver that returns the better of the two mirror solutions); None when it does not fit."""
    import cv2

    obj = corners_mm[view.ids].astype(np.float64)
    pts = view.xy.reshape(-1, 1, 2).astype(np.float64)
    if intr.fisheye:
        norm = cv2.fisheye.undistortPoints(pts, intr.matrix, intr.distortions)
    else:
        norm = cv2.undistortPoints(pts, intr.matrix, intr.distortions)
    try:
        ok, rvec, tvec = cv2.solvePnP(obj, norm, np.eye(3), None, flags=cv2.SOLVEPNP_IPPE)
    except cv2.error:
        return None
    if not ok:
        return None
    rot = cv2.Rodrigues(rvec)[0]
    trans = tvec.reshape(3)
    cam_pts = obj @ rot.T + trans
    if (cam_pts[:, 2] <= 0).any():
        return None
    k = intr.matrix
    px = project_camera_points(cam_pts, k[0, 0], k[1, 1], k[0, 2], k[1, 2], intr.distortions, intr.fisheye)
    rms = float(np.sqrt(((px - view.xy) ** 2).sum(1).mean()))
    return ViewPose(rot, trans, rms, len(view.ids))


def robust_relative_pose(samples: list[Pose]) -> Pose:
    """Average of relative-pose samples after dropping those far (rotation or translation) from
    the first average: a few bad PnP solutions must not bend the chain."""
    rots = np.array([s[0] for s in samples])
    trans = np.array([s[1] for s in samples])
    rot = average_rotations(rots)
    t_med = np.median(trans, axis=0)
    ang = np.array([np.arccos(np.clip((np.trace(r @ rot.T) - 1) / 2, -1, 1)) for r in rots])
    dist = np.linalg.norm(trans - t_med, axis=1)
    keep = (ang <= max(3 * np.median(ang), np.radians(1.0))) & (dist <= max(3 * np.median(dist), 5.0))
    if keep.sum() >= 1:
        rot = average_rotations(rots[keep])
        t_med = np.median(trans[keep], axis=0)
    return rot, t_med


def chain_cameras(
    names: list[str], poses: dict[str, dict[int, ViewPose]], min_shared: int = 1
) -> tuple[dict[str, Pose], dict, str]:
    """Camera poses in the root camera's frame, via a maximum spanning tree (edge weight = rows
    seen by both cameras). Returns (camera → pose, edges used {(a, b): shared rows}, root)."""
    rows = {n: set(poses[n]) for n in names}
    shared = {}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            n = len(rows[a] & rows[b])
            if n >= min_shared:
                shared[(a, b)] = n
    root = max(names, key=lambda n: (sum(v for k, v in shared.items() if n in k), len(rows[n])))
    placed: dict[str, Pose] = {root: (np.eye(3), np.zeros(3))}
    tree = {}
    while len(placed) < len(names):
        best = None
        for (a, b), n in shared.items():
            if (a in placed) != (b in placed) and (best is None or n > best[2]):
                best = (a, b, n)
        if best is None:
            lonely = [n for n in names if n not in placed]
            raise CalibrationError(
                "cameras not connected to the others: " + ", ".join(lonely) + " never saw the board in the "
                f"same instant as {', '.join(sorted(placed))}; record the board where these cameras and "
                "their neighbours see it at once"
            )
        a, b, n = best
        known, new = (a, b) if a in placed else (b, a)
        samples = []
        for row in rows[known] & rows[new]:
            pk, pn = poses[known][row], poses[new][row]
            # new ← board ← known: x_new = R_n R_k^T (x_known - t_k) + t_n
            samples.append(compose(pn.rot, pn.trans, *invert(pk.rot, pk.trans)))
        rel = robust_relative_pose(samples)  # known-camera frame → new-camera frame
        placed[new] = compose(*rel, *placed[known])
        tree[(known, new)] = n
    return placed, tree, root


def initial_board_poses(cameras: dict[str, Pose], poses: dict[str, dict[int, ViewPose]]) -> dict[int, Pose]:
    """Board → root-frame pose per row, from the camera that saw most of the board in that row."""
    best: dict[int, tuple[int, float, Pose]] = {}
    for name, views in poses.items():
        cam_rot, cam_t = cameras[name]
        inv = invert(cam_rot, cam_t)
        for row, vp in views.items():
            key = (vp.corners, -vp.rms_px)
            if row not in best or key > best[row][:2]:
                best[row] = (vp.corners, -vp.rms_px, compose(*inv, vp.rot, vp.trans))
    return {row: b[2] for row, b in sorted(best.items())}
