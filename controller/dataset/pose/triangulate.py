"""Multi-view triangulation: the one home of the maths that turns 2D keypoints seen by calibrated
cameras into 3D points (vectorised over every frame and keypoint at once).

- `triangulate_dlt`: linear triangulation (DLT) over every camera that sees a point, each camera's
  two rows scaled by its weight (the keypoint's confidence), solved for all points at once from the
  (N, 4, 4) normal matrices AᵀA in closed form (no per-point LAPACK call). Observations are
  undistorted normalised image coordinates (`CameraModel.normalise`), so the DLT matrix of a
  camera is its extrinsic [R | t]. `CameraSet.triangulate` (cameras.py) takes pixels and does that.
- `triangulate_robust`: outlier rejection in the manner of RANSAC with an exhaustive hypothesis set:
  every camera pair that sees a point proposes a 3D point, each proposal counts the cameras that
  reproject within `outlier_px` pixels (ties: lowest truncated squared error, MSAC-style), the best
  proposal's inliers are refitted by weighted DLT, and inliers are re-selected once against the
  refit. A point for which another, equally large consensus shares fewer than two cameras with the
  best one (half the views agree on one place, half on another) is dropped as ambiguous rather
  than guessed. Exhaustive pairs instead of random samples: with C ≤ ~10 cameras there are at most 45
  pairs, and a deterministic answer is easier to trust and to test.
- `smooth_points`: optional zero-phase Butterworth low-pass along time, applied to each run of
  consecutive valid frames on its own (gaps are never bridged or filled).

Reprojection errors are in undistorted pixels: normalised error × the camera's focal length.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from typing import Protocol

import numpy as np

DEFAULT_MIN_CONFIDENCE = 0.3
DEFAULT_OUTLIER_PX = 15.0
DEFAULT_MIN_RAY_ANGLE_DEG = 5.0
CHUNK_POINTS = 8192  # points per vectorised block: bounds memory to a few tens of MB


class CalibratedCamera(Protocol):
    """What triangulation needs of a camera (cameras.CameraModel has it; the camera set, which
    imports this module, passes its models)."""

    matrix: np.ndarray  # (3, 3) intrinsics

    def extrinsic_matrix(self) -> np.ndarray: ...  # (3, 4) [R | t], world → camera


@dataclass
class Triangulation:
    points: np.ndarray  # (..., 3) world coordinates (calibration units, mm); NaN where not triangulated
    error_px: np.ndarray  # (...,) mean reprojection error over the cameras used, px; NaN if none
    ncams: np.ndarray  # (...,) int: cameras used (inliers)
    inliers: np.ndarray  # (..., C) bool: which cameras' observations were used
    observed: np.ndarray  # (..., C) bool: which cameras offered an observation (confidence ≥ threshold)
    ambiguous: np.ndarray  # (...,) bool: two disjoint camera sets supported different points: dropped

    @property
    def outliers(self) -> np.ndarray:
        """(..., C) bool: observations offered but rejected (points dropped as ambiguous excluded:
        there the data does not say which views are wrong)."""
        return self.observed & ~self.inliers & ~self.ambiguous[..., None]


def camera_arrays(cameras: Iterable[CalibratedCamera]) -> tuple[np.ndarray, np.ndarray]:
    """(C, 3, 4) extrinsic DLT matrices and (C,) focal lengths in pixels (mean of fx, fy)."""
    cameras = list(cameras)
    proj = np.stack([c.extrinsic_matrix() for c in cameras])
    focal = np.array([(c.matrix[0, 0] + c.matrix[1, 1]) / 2 for c in cameras])
    return proj, focal


def _world_scale(proj: np.ndarray) -> float:
    """A length of the rig's size, so the DLT unknowns are all of order 1 (conditioning)."""
    rot, t = proj[:, :, :3], proj[:, :, 3]
    centres = -np.einsum("cji,cj->ci", rot, t)
    spread = np.linalg.norm(centres - centres.mean(axis=0), axis=1)
    scale = float(np.median(spread)) if len(centres) > 1 else float(np.linalg.norm(t[0]))
    return scale if scale > 0 else 1.0


def _camera_normal_matrices(proj: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Each camera's DLT rows r1 = x·P3 − P1, r2 = y·P3 − P2 as their normal matrix r1 r1ᵀ + r2 r2ᵀ:
    xy (N, C, 2) → (N, C, 4, 4). NaN observations give zeros."""
    r1 = xy[..., 0:1] * proj[None, :, 2, :] - proj[None, :, 0, :]  # (N, C, 4)
    r2 = xy[..., 1:2] * proj[None, :, 2, :] - proj[None, :, 1, :]
    r1, r2 = np.nan_to_num(r1), np.nan_to_num(r2)
    return r1[..., :, None] * r1[..., None, :] + r2[..., :, None] * r2[..., None, :]


def _solve_normal(m: np.ndarray) -> np.ndarray:
    """(..., 4, 4) AᵀA → (..., 3) point minimising |A·(X, 1)|² (the inhomogeneous DLT; our world is
    scaled so points are O(1), never at infinity): the 3×3 system B·X = −b solved in closed form
    (cofactors), vectorised over every point — LAPACK's batched eigh/SVD of 4×4 matrices costs
    microseconds per matrix in call overhead, which dominated the robust path."""
    b = m[..., :3, :3]
    rhs = -m[..., :3, 3]
    c00 = b[..., 1, 1] * b[..., 2, 2] - b[..., 1, 2] * b[..., 2, 1]
    c01 = b[..., 1, 2] * b[..., 2, 0] - b[..., 1, 0] * b[..., 2, 2]
    c02 = b[..., 1, 0] * b[..., 2, 1] - b[..., 1, 1] * b[..., 2, 0]
    c11 = b[..., 0, 0] * b[..., 2, 2] - b[..., 0, 2] * b[..., 2, 0]
    c12 = b[..., 0, 1] * b[..., 2, 0] - b[..., 0, 0] * b[..., 2, 1]
    c22 = b[..., 0, 0] * b[..., 1, 1] - b[..., 0, 1] * b[..., 1, 0]
    det = b[..., 0, 0] * c00 + b[..., 0, 1] * c01 + b[..., 0, 2] * c02
    # B is symmetric, so its cofactor matrix is too.
    x = c00 * rhs[..., 0] + c01 * rhs[..., 1] + c02 * rhs[..., 2]
    y = c01 * rhs[..., 0] + c11 * rhs[..., 1] + c12 * rhs[..., 2]
    z = c02 * rhs[..., 0] + c12 * rhs[..., 1] + c22 * rhs[..., 2]
    scale = np.abs(b).max(axis=(-1, -2)) ** 3
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.stack([x, y, z], axis=-1) / det[..., None]
    out[~(np.abs(det) > 1e-12 * scale)] = np.nan  # singular: fewer than two independent rays
    return out


def _dlt(proj: np.ndarray, xy: np.ndarray, w: np.ndarray, normals: np.ndarray | None = None) -> np.ndarray:
    """proj (C, 3, 4) (already scaled), xy (N, C, 2), w (N, C) (0 = not used) → X (N, 3): each
    camera's two rows scaled by its weight. Points with fewer than two weighted cameras: NaN."""
    if normals is None:
        normals = _camera_normal_matrices(proj, xy)
    out = _solve_normal(np.einsum("nc,ncij->nij", w * w, normals))
    out[(w > 0).sum(axis=1) < 2] = np.nan
    return out


def _reprojection_px(proj: np.ndarray, focal: np.ndarray, points: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """points (..., 3) scaled world, xy (..., C, 2) → (..., C) pixel distance (NaN if either missing)."""
    cam = np.einsum("cij,...j->...ci", proj[:, :, :3], points) + proj[:, :, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        uv = cam[..., :2] / cam[..., 2:3]
        err = np.linalg.norm(uv - xy, axis=-1) * focal
        err[cam[..., 2] <= 0] = np.inf  # behind the camera: never an inlier
    return err


def _prepare(
    cameras: Iterable[CalibratedCamera],
    xy_norm: np.ndarray,
    confidence: np.ndarray | None,
    min_confidence: float,
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray, tuple]:
    proj, focal = camera_arrays(cameras)
    xy = np.asarray(xy_norm, dtype=np.float64)
    c = proj.shape[0]
    if xy.shape[-2:] != (c, 2):
        raise ValueError(f"observations must be (..., {c}, 2) for {c} cameras, got {xy.shape}")
    lead = xy.shape[:-2]
    xy = xy.reshape(-1, c, 2)
    conf = np.ones(xy.shape[:2]) if confidence is None else np.asarray(confidence, np.float64).reshape(-1, c)
    finite = np.isfinite(xy).all(axis=-1) & np.isfinite(conf)
    w = np.where(finite & (conf >= min_confidence), np.nan_to_num(conf), 0.0)
    scale = _world_scale(proj)
    scaled = proj.copy()
    scaled[:, :, 3] /= scale
    return scaled, focal, scale, xy, w, lead


def triangulate_dlt(
    cameras: Iterable[CalibratedCamera],
    xy_norm: np.ndarray,
    confidence: np.ndarray | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    weighted: bool = True,
) -> Triangulation:
    """Plain (weighted) DLT over every camera whose observation is finite and confident enough.
    xy_norm (..., C, 2) normalised coordinates; confidence (..., C) or None (all 1)."""
    proj, focal, scale, xy, w, lead = _prepare(cameras, xy_norm, confidence, min_confidence)
    if not weighted:
        w = (w > 0).astype(np.float64)
    pts = np.full((xy.shape[0], 3), np.nan)
    err = np.full(xy.shape[:2], np.nan)
    for s in range(0, xy.shape[0], CHUNK_POINTS):
        sl = slice(s, s + CHUNK_POINTS)
        pts[sl] = _dlt(proj, xy[sl], w[sl])
        err[sl] = _reprojection_px(proj, focal, pts[sl], xy[sl])
    used = w > 0
    return _result(pts * scale, err, used, used, lead)


def _result(pts, err, inliers, observed, lead, ambiguous=None) -> Triangulation:
    c = inliers.shape[-1]
    ncams = inliers.sum(axis=1)
    with np.errstate(invalid="ignore"):
        mean_err = np.where(ncams > 0, np.where(inliers, err, 0.0).sum(axis=1) / np.maximum(ncams, 1), np.nan)
    bad = ~np.isfinite(pts).all(axis=1)
    mean_err[bad] = np.nan
    ncams[bad] = 0
    inliers = inliers & ~bad[:, None]
    return Triangulation(
        points=pts.reshape(*lead, 3),
        error_px=mean_err.reshape(lead),
        ncams=ncams.reshape(lead).astype(np.int16),
        inliers=inliers.reshape(*lead, c),
        observed=observed.reshape(*lead, c),
        ambiguous=(np.zeros(len(pts), bool) if ambiguous is None else ambiguous).reshape(lead),
    )


def triangulate_robust(
    cameras: Iterable[CalibratedCamera],
    xy_norm: np.ndarray,
    confidence: np.ndarray | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    outlier_px: float = DEFAULT_OUTLIER_PX,
    reject_two_view_px: float | None = None,
    min_ray_angle_deg: float = DEFAULT_MIN_RAY_ANGLE_DEG,
) -> Triangulation:
    """Triangulate with outlier rejection (module docstring). A point seen by exactly two cameras has
    no redundancy to vote with: it is kept unless its reprojection error exceeds
    `reject_two_view_px` (default: `outlier_px`), in which case it is dropped (NaN). A point whose
    cameras all see it along nearly the same line (every pair's rays within `min_ray_angle_deg` of
    parallel or anti-parallel) is dropped too: its depth along that line is unconstrained."""
    proj, focal, scale, xy, w, lead = _prepare(cameras, xy_norm, confidence, min_confidence)
    n, c = w.shape
    two_view_px = outlier_px if reject_two_view_px is None else reject_two_view_px
    pairs = np.array(list(combinations(range(c), 2)), dtype=np.int64).reshape(-1, 2)
    pts = np.full((n, 3), np.nan)
    err = np.full((n, c), np.nan)
    inl = np.zeros((n, c), dtype=bool)
    amb = np.zeros(n, dtype=bool)
    observed = w > 0
    for s in range(0, n, CHUNK_POINTS):
        sl = slice(s, s + CHUNK_POINTS)
        pts[sl], err[sl], inl[sl], amb[sl] = _robust_block(
            proj, focal, xy[sl], w[sl], pairs, outlier_px, two_view_px, np.sin(np.radians(min_ray_angle_deg))
        )
    return _result(pts * scale, err, inl, observed, lead, amb)


def _ray_sines(centres: np.ndarray, points: np.ndarray, a_idx: np.ndarray, b_idx: np.ndarray) -> np.ndarray:
    """|sin| of the angle between the rays from camera a and camera b to points (n, P|1, 3) → (n, P)."""
    ra = points - centres[a_idx]
    rb = points - centres[b_idx]
    with np.errstate(invalid="ignore", divide="ignore"):
        cross = np.linalg.norm(np.cross(ra, rb), axis=-1)
        return cross / (np.linalg.norm(ra, axis=-1) * np.linalg.norm(rb, axis=-1))


def _robust_block(proj, focal, xy, w, pairs, outlier_px, two_view_px, min_sine):
    n, c = w.shape
    seen = w > 0
    centres = -np.einsum("cji,cj->ci", proj[:, :, :3], proj[:, :, 3])
    a_idx, b_idx = pairs[:, 0], pairs[:, 1]
    normals = _camera_normal_matrices(proj, xy)
    if len(pairs):
        # Every pair hypothesis at once: the sum of the two cameras' normal matrices, (n, P, 4, 4).
        pair_ok = seen[:, a_idx] & seen[:, b_idx]  # (n, P)
        hyp = _solve_normal(normals[:, a_idx] + normals[:, b_idx])  # (n, P, 3)
        perr = _reprojection_px(proj, focal, hyp, xy[:, None])  # (n, P, C)
        perr = np.where(seen[:, None, :], perr, np.inf)
        perr = np.nan_to_num(perr, nan=np.inf)
        votes = (perr < outlier_px).sum(axis=2)
        cost = np.minimum(perr, outlier_px) ** 2
        cost = np.where(seen[:, None, :], cost, 0.0).sum(axis=2)
        # A pair whose rays are near-parallel (cameras side by side, or facing each other across
        # the subject) cannot place a point along its baseline: it proposes nothing.
        pair_ok &= _ray_sines(centres, hyp, a_idx, b_idx) >= min_sine
        votes = np.where(pair_ok, votes, -1)
        # Most inliers first, then the lowest truncated cost.
        rank = votes * 1e12 - np.minimum(cost, 1e11)
        best = np.argmax(rank, axis=1)
        best_votes = votes[np.arange(n), best]
        masks = perr < outlier_px  # (n, P, C)
        inliers = masks[np.arange(n), best] & seen & (best_votes >= 2)[:, None]
        # Another consensus just as large that shares fewer than two cameras with the best one is a
        # different point the data supports equally (e.g. half the views are outliers): say so.
        shared = (masks & inliers[:, None, :]).sum(axis=2)
        ambiguous = ((votes == best_votes[:, None]) & (shared < 2)).any(axis=1) & (best_votes >= 2)
    else:
        inliers = np.zeros((n, c), dtype=bool)
        ambiguous = np.zeros(n, dtype=bool)
    # Refit on the inliers, then re-select inliers against the refit once and refit again.
    for _ in range(2):
        wi = np.where(inliers, w, 0.0)
        pts = _dlt(proj, xy, wi, normals)
        err = _reprojection_px(proj, focal, pts, xy)
        new = seen & (np.nan_to_num(err, nan=np.inf) < outlier_px)
        keep = new.sum(axis=1) >= 2
        inliers = np.where(keep[:, None], new, inliers)
    pts = _dlt(proj, xy, np.where(inliers, w, 0.0), normals)
    err = _reprojection_px(proj, focal, pts, xy)
    # Two-view points: nothing to vote with; drop inconsistent ones.
    two = seen.sum(axis=1) == 2
    two_err = np.where(seen, np.nan_to_num(err, nan=np.inf), 0.0).max(axis=1)
    drop = (inliers.sum(axis=1) < 2) | (two & (two_err > two_view_px)) | ambiguous
    # The cameras used must see the point from directions far enough apart (same rule as above).
    if len(pairs):
        sines = _ray_sines(centres, pts[:, None, :], a_idx, b_idx)[:, :]  # (n, P)
        used = inliers[:, a_idx] & inliers[:, b_idx]
        drop |= np.where(used, np.nan_to_num(sines), 0.0).max(axis=1) < min_sine
    pts[drop] = np.nan
    inliers[drop] = False
    return pts, err, inliers, ambiguous


def smooth_points(
    points: np.ndarray, fps: float, cutoff_hz: float = 6.0, order: int = 4, min_run: int | None = None
) -> np.ndarray:
    """Zero-phase Butterworth low-pass along axis 0 of points (T, ..., D), per run of consecutive
    finite samples; runs too short to filter (shorter than `min_run`, default 3·(2·order+1)) and
    gaps are left as they are. A cutoff at or above Nyquist returns the input unchanged."""
    from scipy.signal import butter, sosfiltfilt

    pts = np.asarray(points, dtype=np.float64)
    nyquist = fps / 2
    if cutoff_hz >= nyquist or pts.shape[0] < 2:
        return pts.copy()
    sos = butter(order, cutoff_hz / nyquist, output="sos")
    padlen = 3 * (2 * len(sos) + 1)
    min_run = max(min_run or 0, padlen + 1)
    flat = pts.reshape(pts.shape[0], -1, pts.shape[-1])
    out = flat.copy()
    valid = np.isfinite(flat).all(axis=-1)  # (T, M)
    for m in range(flat.shape[1]):
        v = valid[:, m]
        if not v.any():
            continue
        edges = np.flatnonzero(np.diff(np.concatenate([[0], v.astype(np.int8), [0]])))
        for start, stop in zip(edges[::2], edges[1::2], strict=False):
            if stop - start >= min_run:
                out[start:stop, m] = sosfiltfilt(sos, flat[start:stop, m], axis=0)
    return out.reshape(pts.shape)


def smooth_points_report(
    points: np.ndarray, fps: float, cutoff_hz: float = 6.0, order: int = 4
) -> tuple[np.ndarray, dict]:
    """`smooth_points` and what it did: how many samples it filtered and how many it left as they
    were (in runs of valid frames shorter than the filter needs, or everything when the cutoff is
    at or above Nyquist), so a smoothing that changed nothing says so."""
    pts = np.asarray(points, dtype=np.float64)
    padlen = 3 * (2 * ((order + 1) // 2) + 1)
    min_run = padlen + 1
    valid = np.isfinite(pts.reshape(pts.shape[0], -1, pts.shape[-1])).all(axis=-1)  # (T, M)
    filtered = short = 0
    for m in range(valid.shape[1]):
        edges = np.flatnonzero(np.diff(np.concatenate([[0], valid[:, m].astype(np.int8), [0]])))
        runs = edges[1::2] - edges[::2]
        filtered += int(runs[runs >= min_run].sum())
        short += int(runs[runs < min_run].sum())
    above_nyquist = cutoff_hz >= fps / 2
    if above_nyquist:
        filtered, short = 0, filtered + short
    info = {
        "method": f"zero-phase Butterworth, order {order}, per run of valid frames (gaps kept)",
        "cutoff_hz": cutoff_hz,
        "samples_filtered": filtered,
        "samples_left_unfiltered": short,
        "why_unfiltered": (
            f"cutoff {cutoff_hz} Hz is at or above Nyquist ({fps / 2} Hz)"
            if above_nyquist
            else f"runs of valid frames shorter than {min_run} frames are too short for the filter"
        ),
    }
    return smooth_points(pts, fps, cutoff_hz, order), info
