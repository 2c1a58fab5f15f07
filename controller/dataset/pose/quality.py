"""Quality of a triangulation, per joint, bone and camera (what `pose3d/report.json` adds to the
group summary of pose3d.py) and its plots (`pose3d/plots/`): bone lengths over time, coverage
per joint per camera.

Per joint: coverage (share of rows with a 3D point), reprojection error p50/p90 (each point's
mean over the views that agree with it), the bone-length CV of its rigid edges (worst), jumps
(steps between consecutive rows longer than `jump_mm`), cameras used (mean), and per camera the
rows its view was used / offered but not used. Per rigid edge: median length and CV. Per
camera (sequence method): frames excluded and why, swaps corrected, frames outside the subject.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from controller.dataset.pose.keypoints import Skeleton, group_of
from controller.dataset.pose.sequence import CAUSES, KEPT
from controller.dataset.pose.views import DEFAULT_FOLLOWS_OTHER_SHARE

JUMP_MM = 100.0


def _r(value, digits: int = 4):
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def view_report(checks: dict, cameras: tuple[str, ...]) -> dict:
    """Per camera: frames excluded (identity), whether it follows another person, swaps. checks:
    decided, inconsistent, swapped_view (R, C), swapped_pairs (R, P, C), outside (R, C)."""
    out = {}
    pairs = checks["swapped_pairs"]
    for i, cam in enumerate(cameras):
        decided = int(checks["decided"][:, i].sum())
        frames = np.flatnonzero(checks["inconsistent"][:, i])
        excluded = int(frames.size)
        share = excluded / decided if decided else 0.0
        out[cam] = {
            "frames_judged": decided,
            "frames_excluded": excluded,
            "excluded_rows": frames.tolist(),
            "follows_another_person": bool(share >= DEFAULT_FOLLOWS_OTHER_SHARE),
            "why": (
                f"in {excluded} of {decided} frames most of its keypoints lie far from the 3D the "
                "other cameras agree on (median reprojection error above the identity gate): its "
                "2D follows someone else there, or failed"
                if excluded
                else None
            ),
            "frames_swapped_whole_view": int(checks["swapped_view"][:, i].sum()),
            "left_right_pairs_swapped": int(pairs[:, :, i].sum()) if pairs is not None else 0,
            "frames_outside_subject": int(checks["outside"][:, i].sum()),
        }
    return out


def _cv(lengths: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanstd(lengths, axis=0) / np.nanmean(lengths, axis=0)


def bone_lengths(points: np.ndarray, edges: tuple[tuple[int, int], ...]) -> np.ndarray:
    """(R, E) length of each edge per row (NaN where an end is missing)."""
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    return np.linalg.norm(points[:, e[:, 0]] - points[:, e[:, 1]], axis=-1)


def quality_report(pose, extra: dict, skeleton: Skeleton, jump_mm: float = JUMP_MM) -> dict:
    """pose: Pose3D; extra: what the triangulation method returned beside the points."""
    names, cams = pose.names, pose.cameras
    pts = pose.points.astype(np.float64)
    valid = pose.valid
    steps = np.linalg.norm(np.diff(pts, axis=0), axis=-1)  # (R-1, K)
    lengths = bone_lengths(pts, skeleton.rigid)
    cv = _cv(lengths) if len(skeleton.rigid) else np.zeros(0)
    worst_cv = np.full(len(names), np.nan)
    for (a, b), v in zip(skeleton.rigid, cv, strict=True):
        for j in (a, b):
            worst_cv[j] = np.nanmax([worst_cv[j], v]) if np.isfinite(v) else worst_cv[j]
    used, observed = extra["used_mask"], extra["observed_mask"]
    agree = (pose.inliers[..., None] >> np.arange(len(cams)).astype(np.uint32)) & 1 > 0  # (R, K, C)
    joints = {}
    for j, name in enumerate(names):
        err = pose.error_px[:, j][valid[:, j]]
        joints[name] = {
            "coverage": _r(valid[:, j].mean() if len(valid) else 0.0),
            "reprojection_px": {
                "p50": _r(np.percentile(err, 50), 2) if err.size else None,
                "p90": _r(np.percentile(err, 90), 2) if err.size else None,
            },
            "bone_length_cv": _r(worst_cv[j]),
            "jumps": int(np.nansum(steps[:, j] > jump_mm)),
            "cameras_used_mean": _r(pose.ncams[:, j][valid[:, j]].mean(), 3) if valid[:, j].any() else None,
            "cameras": {
                cam: {
                    "rows_used": int(agree[:, j, c].sum()),
                    "rows_offered_not_used": int((observed[:, j, c] & ~agree[:, j, c]).sum()),
                    "rows_excluded": int((observed[:, j, c] & ~used[:, j, c]).sum()),
                }
                for c, cam in enumerate(cams)
            },
        }
    bones = {}
    for (a, b), v, col in zip(skeleton.rigid, cv, lengths.T, strict=True):
        if np.isfinite(col).any():
            bones[f"{names[a]}-{names[b]}"] = {"length_mm_median": _r(np.nanmedian(col), 1), "cv": _r(v)}
    causes = {}
    cause = pose.cause if pose.cause is not None else np.where(valid, KEPT, -1)
    for group, idx in group_of(names).items():
        c = cause[:, idx]
        counts = {
            CAUSES.get(int(k), "not triangulated"): int((c == k).sum()) for k in np.unique(c) if k != KEPT
        }
        causes[group] = {
            "coverage": _r(valid[:, idx].mean() if valid.size else 0.0),
            "never_seen": bool(not observed[:, idx].any()),
            "dropped": counts,
        }
    return {
        "method": pose.meta.get("method", "frame"),
        "jump_mm": jump_mm,
        "joints": joints,
        "bones": bones,
        "drop_causes": causes,
        "views": extra.get("views"),
        "seconds": extra.get("seconds"),
    }


def write_plots(pose, extra: dict, skeleton: Skeleton, out_dir: Path) -> dict[str, dict[str, str]]:
    """bone_lengths (each rigid edge's length over time) and coverage (per joint per camera: the
    share of rows each camera's view was used), PNG + SVG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from controller.pipeline.plots import save_figure

    names, cams = pose.names, pose.cameras
    out_dir.mkdir(parents=True, exist_ok=True)
    out: dict[str, dict[str, str]] = {}
    seconds = (pose.time_ns - pose.time_ns[0]) / 1e9 if len(pose.time_ns) else np.zeros(0)
    lengths = bone_lengths(pose.points.astype(np.float64), skeleton.rigid)
    have = [i for i in range(lengths.shape[1]) if np.isfinite(lengths[:, i]).any()]
    if have:
        fig, ax = plt.subplots(figsize=(11, 4.5), dpi=100)
        for i in have[:40]:
            a, b = skeleton.rigid[i]
            ax.plot(seconds, lengths[:, i], lw=1, label=f"{names[a]}-{names[b]}")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("length (mm)")
        ax.set_title("Rigid bone lengths over time (constant if the 3D is right)")
        if len(have) <= 16:
            ax.legend(fontsize=6, ncol=2, loc="upper right")
        out["bone_lengths"] = {fmt: p.name for fmt, p in save_figure(fig, out_dir, "bone_lengths").items()}
        plt.close(fig)
    agree = (pose.inliers[..., None] >> np.arange(len(cams)).astype(np.uint32)) & 1 > 0
    seen = extra["observed_mask"].any(axis=(0, 2))
    joints = np.flatnonzero(seen)[:80]  # the face mesh would drown the rest: first 80 seen
    if joints.size:
        share = agree[:, joints].mean(axis=0).T  # (C, J)
        fig, ax = plt.subplots(figsize=(max(6, 0.18 * joints.size + 2), 1.0 + 0.5 * len(cams)), dpi=100)
        im = ax.imshow(share, aspect="auto", vmin=0, vmax=1, cmap="viridis")
        ax.set_yticks(range(len(cams)), cams)
        ax.set_xticks(range(joints.size), [names[j] for j in joints], rotation=90, fontsize=6)
        ax.set_title("Share of rows each camera's view was used, per joint")
        fig.colorbar(im, ax=ax, fraction=0.03)
        fig.tight_layout()
        out["coverage"] = {fmt: p.name for fmt, p in save_figure(fig, out_dir, "coverage").items()}
        plt.close(fig)
    return out
