"""C3D (the biomechanics marker format: Vicon Nexus, Visual3D, OpenSim through Pose2Sim), written
with ezc3d (the `c3d` extra). One 3D point per keypoint in the calibration's world frame (mm, the
board's Z-up frame, as C3D files from marker systems usually are), at the session's frame rate;
a keypoint not triangulated in a frame is written as C3D's "invalid" point (residual −1, read back
as NaN). Each point's residual is its reprojection error in pixels (C3D: "the point's fit", ≥ 0).
Groups never seen by any camera are left out (export.seen_keypoints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.dataset.export import ExportError, seen_keypoints
from controller.dataset.pose.pose3d import load_pose3d


def _ezc3d():
    try:
        import ezc3d
    except ImportError as exc:
        raise ExportError(
            f"C3D export needs ezc3d ({exc}); install it with `pip install -e '.[c3d]'`"
        ) from None
    return ezc3d


def export(session: Path, out: Path, progress=None) -> Path:
    ezc3d = _ezc3d()
    pose = load_pose3d(session)
    keep, _left_out = seen_keypoints(pose)
    names = [pose.names[i] for i in keep]
    too_long = [n for n in names if len(n) > 32]
    if too_long:
        raise ExportError(f"C3D point labels are at most 32 characters; too long: {', '.join(too_long[:5])}")
    rate = float(pose.meta.get("fps") or 0.0)
    if rate <= 0:
        raise ExportError(f"{session}: pose3d/points.npz has no frame rate (meta fps); re-run triangulate")
    pts = pose.points[:, keep].astype(np.float64)  # (R, M, 3)
    frames = pts.shape[0]
    data = np.ones((4, len(names), frames))
    data[:3] = pts.transpose(2, 1, 0)
    residuals = pose.error_px[:, keep].astype(np.float64).T[None]  # (1, M, R)
    missing = ~np.isfinite(pts).all(axis=-1).T[None]
    data[:, missing[0]] = np.nan
    residuals = np.where(missing, -1.0, np.nan_to_num(residuals, nan=0.0))
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [rate]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = tuple(names)
    # No DESCRIPTIONS: with more than 255 points ezc3d 1.7 writes them so that it cannot read the
    # file back (the labels alone round-trip; the face mesh alone is 478 points).
    c3d["parameters"]["POINT"]["UNITS"]["value"] = ["mm"]
    c3d["data"]["points"] = data
    c3d["data"]["meta_points"] = {"residuals": residuals}  # camera masks: ezc3d's (empty)
    if progress is not None:
        progress(0.5, "writing C3D")
    tmp = out.with_name(f".{out.stem}.tmp.c3d")
    c3d.write(str(tmp))
    tmp.replace(out)
    return out
