"""The two ways `syncrig triangulate` turns a session's 2D keypoints into 3D (pose3d.py writes the
result): "sequence" (sequence.py: the whole sequence at once, views checked, nothing voted off)
and "frame" (triangulate.py: each row on its own, outliers voted off). Both return the arrays of
`pose3d/points.npz` plus what the report needs (observed/used views per point and camera).
"""

from __future__ import annotations

import numpy as np

from controller.dataset.pose.keypoints import skeleton_of
from controller.dataset.pose.pose2d import Pose2D
from controller.dataset.pose.quality import view_report
from controller.dataset.pose.sequence import (
    AMBIGUOUS,
    KEPT,
    ONE_VIEW,
    REJECTED,
    UNSEEN,
    triangulate_sequence,
)
from controller.dataset.pose.views import subject_mask

ROWS_PER_BLOCK = 256
CHUNK_ROWS = 3000  # sequence method: rows solved together (~50 s at 60 fps; ~100 MB of 2D)
CHUNK_OVERLAP = 60


def _gather(poses: list[Pose2D], rows: int, start: int = 0, stop: int | None = None):
    """Every camera's 2D keypoints by match row: pixels (R, K, C, 2) (NaN where none) and
    confidence (R, K, C) for rows start..stop."""
    stop = rows if stop is None else stop
    k, c = len(poses[0].names), len(poses)
    xy = np.full((stop - start, k, c, 2), np.nan)
    conf = np.zeros((stop - start, k, c))
    for ci, p in enumerate(poses):
        where = np.full(rows, -1, np.int64)
        where[p.rows] = np.arange(len(p.rows))
        idx = where[start:stop]
        have = idx >= 0
        if not have.any():
            continue
        kp = p.keypoints[idx[have]].astype(np.float64)  # (h, K, 3)
        xy[have, :, ci] = kp[..., :2]
        conf[have, :, ci] = np.nan_to_num(kp[..., 2])
    return xy, conf


def _outputs(rows: int, k: int) -> dict:
    return {
        "points": np.full((rows, k, 3), np.nan, np.float32),
        "error_px": np.full((rows, k), np.nan, np.float32),
        "ncams": np.zeros((rows, k), np.int8),
        "score": np.full((rows, k), np.nan, np.float32),
        "inliers": np.zeros((rows, k), np.uint32),
        "cause": np.zeros((rows, k), np.int8),
    }


def _bits(mask: np.ndarray) -> np.ndarray:
    return (mask * (1 << np.arange(mask.shape[-1])).astype(np.uint32)).sum(-1).astype(np.uint32)


def _lowest_confidence(ncams: np.ndarray, inliers: np.ndarray, conf: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        # anipose's definition: the lowest 2D confidence among the cameras used.
        return np.where(ncams > 0, np.where(inliers, conf, np.inf).min(-1), np.nan)


def triangulate_frames(cameras, poses, rows, min_confidence, outlier_px, min_ray_angle_deg, progress):
    k, c = len(poses[0].names), len(cameras)
    out = _outputs(rows, k)
    observed_total = np.zeros(c, np.int64)
    rejected_total = np.zeros(c, np.int64)
    observed = np.zeros((rows, k, c), bool)
    used = np.zeros((rows, k, c), bool)
    ambiguous = 0
    for start in range(0, rows, ROWS_PER_BLOCK):
        stop = min(rows, start + ROWS_PER_BLOCK)
        xy, conf = _gather(poses, rows, start, stop)
        tri = cameras.triangulate(
            xy,
            conf,
            min_confidence=min_confidence,
            outlier_px=outlier_px,
            min_ray_angle_deg=min_ray_angle_deg,
        )
        sl = slice(start, stop)
        out["points"][sl] = tri.points
        out["error_px"][sl] = tri.error_px
        out["ncams"][sl] = tri.ncams
        out["score"][sl] = _lowest_confidence(tri.ncams, tri.inliers, conf)
        out["inliers"][sl] = _bits(tri.inliers)
        n_obs = tri.observed.sum(-1)
        cause = np.where(tri.ambiguous, AMBIGUOUS, REJECTED).astype(np.int8)
        cause[n_obs == 1], cause[n_obs == 0] = ONE_VIEW, UNSEEN
        cause[np.isfinite(tri.points).all(-1)] = KEPT
        out["cause"][sl] = cause
        observed[sl], used[sl] = tri.observed, tri.inliers
        observed_total += tri.observed.reshape(-1, c).sum(0)
        rejected_total += tri.outliers.reshape(-1, c).sum(0)
        ambiguous += int(tri.ambiguous.sum())
        if progress is not None:
            progress(0.9 * stop / rows, f"triangulating rows {stop}/{rows}")
    extra = {"observed": observed_total, "rejected": rejected_total, "ambiguous": ambiguous,
             "observed_mask": observed, "used_mask": used, "views": None, "bone_lengths": None}  # fmt: skip
    return out, extra


def triangulate_sequence_rows(cameras, poses, rows, fps, min_confidence, subject, identity_px, progress):
    """The sequence method over a session, in chunks of CHUNK_ROWS rows (memory stays bounded on
    long sessions), each solved with CHUNK_OVERLAP rows of context on both sides so that tracks
    continue across chunk borders; each keeps its central rows."""
    names = poses[0].names
    k, c = len(names), len(cameras)
    skeleton = skeleton_of(names, poses[0].meta)
    out = _outputs(rows, k)
    observed = np.zeros((rows, k, c), bool)
    used = np.zeros((rows, k, c), bool)
    checks = {
        "decided": np.zeros((rows, c), bool),
        "inconsistent": np.zeros((rows, c), bool),
        "swapped_view": np.zeros((rows, c), bool),
        "swapped_pairs": None,
        "outside": np.zeros((rows, c), bool),
    }
    down_weighted = np.zeros(c, np.int64)
    seconds = 0.0
    for start in range(0, rows, CHUNK_ROWS):
        lo, hi = max(0, start - CHUNK_OVERLAP), min(rows, start + CHUNK_ROWS + CHUNK_OVERLAP)
        stop = min(rows, start + CHUNK_ROWS)
        keep = slice(start - lo, stop - lo)
        xy, conf = _gather(poses, rows, lo, hi)
        allowed = None if subject is None else subject_mask(subject, cameras, xy, conf)
        seq = triangulate_sequence(
            list(cameras),
            xy,
            conf,
            names,
            skeleton,
            fps,
            min_confidence,
            subject=allowed,
            identity_px=identity_px,
        )
        sl = slice(start, stop)
        valid = np.isfinite(seq.points[keep]).all(-1)
        out["points"][sl] = seq.points[keep]
        out["error_px"][sl] = seq.error_px[keep]
        out["ncams"][sl] = np.where(valid, seq.ncams[keep], 0)
        out["score"][sl] = _lowest_confidence(out["ncams"][sl], seq.inliers[keep], conf[keep])
        out["inliers"][sl] = _bits(seq.inliers[keep] & valid[..., None])
        out["cause"][sl] = seq.cause[keep]
        observed[sl], used[sl] = seq.observed[keep], seq.used[keep]
        down_weighted += (seq.used[keep] & ~seq.inliers[keep]).sum((0, 1))
        for name in ("decided", "inconsistent", "swapped_view"):
            checks[name][sl] = getattr(seq.checks, name)[keep]
        if checks["swapped_pairs"] is None:
            checks["swapped_pairs"] = np.zeros((rows, *seq.checks.swapped_pairs.shape[1:]), bool)
        checks["swapped_pairs"][sl] = seq.checks.swapped_pairs[keep]
        checks["outside"][sl] = seq.outside_subject[keep]
        seconds += seq.seconds["total"]
        if progress is not None:
            progress(0.9 * stop / rows, f"triangulating rows {stop}/{rows}")
    extra = {
        "observed": observed.sum((0, 1)),
        "rejected": down_weighted,  # down-weighted: farther than agree_px from the solved point
        "ambiguous": 0,
        "observed_mask": observed,
        "used_mask": used,
        "views": view_report(checks, cameras.names),
        "seconds": round(seconds, 3),
    }
    return out, extra
