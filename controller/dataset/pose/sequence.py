"""Sequence triangulation for real 2D keypoints: every keypoint of every frame solved at once.

Real 2D models place a joint a few pixels differently in each view, mistake left for right now and
then, and sometimes follow someone else; triangulating each frame on its own and voting views off
then drops most points or lets gross errors through. This solves the whole sequence instead, as
one sparse robust least-squares problem (scipy's `least_squares`, trust-region with LSMR on an
analytic sparse Jacobian), over
- reprojection: each confident view's 2D keypoint against the projection of its 3D point, scaled
  by its confidence / `sigma_px`, under a soft-L1 loss: a view that disagrees is down-weighted
  (its pull stays bounded however far it is), never voted off;
- temporal continuity: the second difference of each keypoint's track between consecutive frames
  (its acceleration × dt²), scaled by `accel_mm_s2`, under a soft-L1 loss (a real fast motion
  costs linearly, a teleport a lot);
- bone lengths: on the edges the skeleton declares rigid, |X_a − X_b| − L_e, where each L_e is an
  unknown of the problem too (the subject's own lengths, estimated from the whole session),
  scaled by `bone_rel` × L_e.
A last solve then measures the 2D's placement spread on the result and re-solves under a Cauchy
loss at a multiple of it (SPREAD_FACTOR): gross 2D errors stop pulling at all.
The views are checked first (views.py): left/right swaps are corrected per frame and view, views
showing someone else (or outside the chosen subject) are excluded. A keypoint gets a 3D point when
two or more cameras with confidence ≥ `min_confidence` (after exclusions) see it; no other point is
made (nothing invented across gaps), and a solved point that no view lies near (within
`agree_px`) is dropped too. The start is the per-frame robust triangulation
(triangulate.py), interpolated along time where it dropped a point.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from controller.dataset.pose.keypoints import Skeleton, group_of, mirror_pairs
from controller.dataset.pose.robust_lsq import LOSSES, robust_gauss_newton
from controller.dataset.pose.triangulate import (
    DEFAULT_MIN_CONFIDENCE,
    _reprojection_px,
    camera_arrays,
    triangulate_dlt,
    triangulate_robust,
)
from controller.dataset.pose.views import (
    DEFAULT_FOLLOWS_OTHER_SHARE,
    DEFAULT_IDENTITY_PX,
    ViewChecks,
    apply_swaps,
    check_views,
    reference_points,
)

DEFAULT_SIGMA_PX = 16.0  # the spread of a real 2D model's placement between views (MediaPipe: 5–20 px)
DEFAULT_ACCEL_MM_S2 = 20000.0  # ~2 g: accelerations beyond cost linearly (soft-L1)
DEFAULT_BONE_REL = 0.04
DEFAULT_AGREE_PX = 30.0  # a view farther than this from the solved point counts as down-weighted
# The last solve: Cauchy at SPREAD_FACTOR × the cameras' measured placement spread (median over
# cameras). Measured: on real MediaPipe 2D (spread 8–14 px) factors 2–4 trade reprojection p90
# (38.6 → 36.1 px) against bone CV (0.4 → 0.2 %); on synthetic 2D with 20 % gross outliers
# (spread 3 px) the mean 3D error grows 2.9 → 4.7 mm (bound 3.1), against 10 mm without this stage.
SPREAD_FACTOR = 4.0
FINAL_LOSS = "cauchy"
WINDOW_FRAMES = 1200  # longer sequences are solved in overlapping windows (bounded memory)
WINDOW_OVERLAP = 60

# Drop causes per (frame, keypoint), in report order.
# AMBIGUOUS and REJECTED are the per-frame method's (triangulate.py): views voted off.
KEPT, UNSEEN, ONE_VIEW, EXCLUDED, AMBIGUOUS, REJECTED, UNSUPPORTED = 0, 1, 2, 3, 4, 5, 6
CAUSES = {
    UNSEEN: "seen by no camera",
    ONE_VIEW: "seen by one camera",
    EXCLUDED: "views excluded (identity/subject)",
    AMBIGUOUS: "ambiguous (camera pairs disagree)",
    REJECTED: "views rejected as outliers",
    UNSUPPORTED: "no view within agree_px of the solved point (views disagree)",
}


@dataclass
class SolveOptions:
    sigma_px: float | np.ndarray = DEFAULT_SIGMA_PX  # one, or one per camera
    accel_mm_s2: float = DEFAULT_ACCEL_MM_S2
    bone_rel: float = DEFAULT_BONE_REL
    max_nfev: int = 50
    loss: str = "soft_l1"


@dataclass
class Solved:
    points: np.ndarray  # (T, K, 3) mm, NaN where not solvable
    bone_lengths: np.ndarray  # (E,) per rigid edge, NaN where no frame had both ends
    evaluations: int = 0
    seconds: float = 0.0
    windows: list = field(default_factory=list)


def solve_sequence(
    proj: np.ndarray,
    focal: np.ndarray,
    xy: np.ndarray,
    weight: np.ndarray,
    init: np.ndarray,
    rigid: tuple[tuple[int, int], ...],
    fps: float,
    options: SolveOptions | None = None,
) -> Solved:
    """proj (C, 3, 4) [R | t] in mm, focal (C,) px, xy (T, K, C, 2) normalised undistorted, weight
    (T, K, C) (0 = not used), init (T, K, 3) mm (finite wherever ≥ 2 views have weight)."""
    opt = options or SolveOptions()
    started = time.monotonic()
    t_len, k, _c = weight.shape
    solvable = (weight > 0).sum(axis=-1) >= 2
    rigid_arr = np.asarray(rigid, dtype=np.int64).reshape(-1, 2)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lengths0 = np.nanmedian(
            np.linalg.norm(init[:, rigid_arr[:, 0]] - init[:, rigid_arr[:, 1]], axis=-1), axis=0
        )
    points = np.full((t_len, k, 3), np.nan)
    solved_lengths = np.full(len(rigid_arr), np.nan)
    evaluations, windows = 0, []
    step = WINDOW_FRAMES
    for start in range(0, t_len, step):
        lo, hi = max(0, start - WINDOW_OVERLAP), min(t_len, start + step + WINDOW_OVERLAP)
        sl = slice(lo, hi)
        pts, lens, nfev = _solve_window(
            proj, focal, xy[sl], weight[sl], init[sl], solvable[sl], rigid_arr, lengths0, fps, opt
        )
        keep = slice(start - lo, start - lo + min(step, t_len - start))
        points[start : start + step] = pts[keep]
        solved_lengths = np.where(np.isfinite(solved_lengths), solved_lengths, lens)
        evaluations += nfev
        windows.append((lo, hi))
    return Solved(points, solved_lengths, evaluations, time.monotonic() - started, windows)


def _solve_window(proj, focal, xy, weight, init, solvable, rigid, lengths0, fps, opt):
    from scipy.sparse import csr_matrix

    t_len, k = solvable.shape
    n = int(solvable.sum())
    out = np.full((t_len, k, 3), np.nan)
    if n == 0:
        return out, np.full(len(rigid), np.nan), 0
    vid = np.full((t_len, k), -1, np.int64)
    vid[solvable] = np.arange(n)
    ot, ok, oc = np.nonzero((weight > 0) & solvable[..., None])
    ov = vid[ot, ok]
    rot, tr = proj[oc, :, :3], proj[oc, :, 3]
    obs = xy[ot, ok, oc]
    sigma = np.broadcast_to(np.asarray(opt.sigma_px, np.float64), focal.shape)
    s_obs = weight[ot, ok, oc] * focal[oc] / sigma[oc]
    # Temporal triples (t, t+1, t+2) of the same keypoint, all solvable.
    trip = solvable[:-2] & solvable[1:-1] & solvable[2:] if t_len >= 3 else np.zeros((0, k), bool)
    tt, tk = np.nonzero(trip)
    v0, v1, v2 = vid[tt, tk], vid[tt + 1, tk], vid[tt + 2, tk]
    s_acc = 1.0 / (opt.accel_mm_s2 / fps**2)
    # Bone terms: rigid edges with a length estimate, frames where both ends are solvable.
    have_len = np.isfinite(lengths0) & (lengths0 > 0)
    edge_ids = np.flatnonzero(have_len)
    bt, be = [], []
    for e in edge_ids:
        a, b = rigid[e]
        frames = np.flatnonzero(solvable[:, a] & solvable[:, b])
        bt.append(frames)
        be.append(np.full(frames.size, e))
    bt = np.concatenate(bt) if bt else np.zeros(0, np.int64)
    be = np.concatenate(be) if be else np.zeros(0, np.int64)
    va, vb = vid[bt, rigid[be, 0]], vid[bt, rigid[be, 1]]
    lcol = {int(e): i for i, e in enumerate(edge_ids)}
    bl = np.array([lcol[int(e)] for e in be], np.int64)
    s_bone = 1.0 / (opt.bone_rel * lengths0[edge_ids])  # per length variable
    n_obs, n_trip, n_bone = len(ov), len(v0), len(va)
    split = 2 * n_obs
    x0 = np.concatenate([init[solvable].ravel(), lengths0[edge_ids]])
    nx = x0.size

    # Constant parts of the Jacobian's pattern.
    rows_r = (2 * np.arange(n_obs)[:, None, None] + np.arange(2)[None, :, None]).repeat(3, axis=2)
    cols_r = np.broadcast_to(3 * ov[:, None, None] + np.arange(3)[None, None, :], (n_obs, 2, 3))
    base_t = split
    m = np.arange(n_trip)
    axis = np.arange(3)
    rows_t = np.concatenate([(base_t + 3 * m[:, None] + axis).ravel()] * 3)
    cols_t = np.concatenate([(3 * v[:, None] + axis).ravel() for v in (v0, v1, v2)])
    vals_t = np.concatenate(
        [np.full(3 * n_trip, s_acc), np.full(3 * n_trip, -2 * s_acc), np.full(3 * n_trip, s_acc)]
    )
    base_b = split + 3 * n_trip
    mb = np.arange(n_bone)
    rows_b = np.concatenate([np.repeat(base_b + mb, 3), np.repeat(base_b + mb, 3), base_b + mb])
    cols_b = np.concatenate([(3 * va[:, None] + axis).ravel(), (3 * vb[:, None] + axis).ravel(), 3 * n + bl])
    rows = np.concatenate([rows_r.ravel(), rows_t, rows_b])
    cols = np.concatenate([cols_r.ravel(), cols_t, cols_b])
    n_res = split + 3 * n_trip + n_bone

    def unpack(x):
        return x[: 3 * n].reshape(n, 3), x[3 * n :]

    def project(pts):
        q = np.einsum("oij,oj->oi", rot, pts[ov]) + tr
        return q, q[:, :2] / q[:, 2:3]

    def fun(x):
        pts, lens = unpack(x)
        _q, uv = project(pts)
        r1 = ((uv - obs) * s_obs[:, None]).ravel()
        r2 = ((pts[v0] - 2 * pts[v1] + pts[v2]) * s_acc).ravel()
        d = np.linalg.norm(pts[va] - pts[vb], axis=1)
        r3 = (d - lens[bl]) * s_bone[bl]
        return np.concatenate([r1, r2, r3])

    def jac(x):
        pts, lens = unpack(x)
        q, uv = project(pts)
        inv = s_obs / q[:, 2]
        du = (rot[:, 0] - uv[:, 0:1] * rot[:, 2]) * inv[:, None]
        dv = (rot[:, 1] - uv[:, 1:2] * rot[:, 2]) * inv[:, None]
        vals_r = np.stack([du, dv], axis=1)
        diff = pts[va] - pts[vb]
        unit = diff / np.maximum(np.linalg.norm(diff, axis=1), 1e-9)[:, None] * s_bone[bl][:, None]
        vals_b = np.concatenate([unit.ravel(), (-unit).ravel(), -s_bone[bl]])
        vals = np.concatenate([vals_r.ravel(), vals_t, vals_b])
        return csr_matrix((vals, (rows, cols)), shape=(n_res, nx))

    # Each unknown's track: a keypoint's x, y, z over all frames; each bone length its own.
    var_track = np.concatenate([np.repeat(np.nonzero(solvable)[1], 3), k + np.arange(len(edge_ids))])
    x, nfev = robust_gauss_newton(fun, jac, x0, opt.max_nfev, var_track, LOSSES[opt.loss])
    pts, lens = unpack(x)
    out[solvable] = pts
    lengths = np.full(len(rigid), np.nan)
    lengths[edge_ids] = lens
    return out, lengths, nfev


def initial_points(cameras, xy_norm: np.ndarray, weight: np.ndarray, outlier_px: float = 25.0) -> np.ndarray:
    """(T, K, 3) start for the solve: per-frame robust triangulation; where it dropped a point that
    two views see, the keypoint's track interpolated in time from its neighbours, or (no
    neighbour at all) the weighted DLT of its views."""
    cams = list(cameras)
    robust = triangulate_robust(cams, xy_norm, weight, min_confidence=1e-9, outlier_px=outlier_px).points
    dlt = triangulate_dlt(cams, xy_norm, weight, min_confidence=1e-9).points
    need = (weight > 0).sum(axis=-1) >= 2
    out = np.where(np.isfinite(robust), robust, np.nan)
    t = np.arange(weight.shape[0])
    for kp in np.flatnonzero((need & ~np.isfinite(out).all(-1)).any(axis=0)):
        have = np.isfinite(out[:, kp]).all(-1)
        missing = need[:, kp] & ~have
        if have.sum() >= 1:
            for d in range(3):
                out[missing, kp, d] = np.interp(t[missing], t[have], out[have, kp, d])
        else:
            out[missing, kp] = dlt[missing, kp]
    return out


def view_errors(proj: np.ndarray, focal: np.ndarray, points: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """(T, K, C) px distance between each view's normalised 2D and the projection of points."""
    return _reprojection_px(proj, focal, points, xy)


def _solve_groups(proj, focal, norm, weight, init, names, rigid, fps, options):
    """Each keypoint group (keypoints.py; one group for other keypoint sets) solved on its own:
    no term couples groups, and a group nobody saw costs nothing."""
    points = np.full(init.shape, np.nan)
    lengths = np.full(len(rigid), np.nan)
    for idx in group_of(names).values():
        local = {g: i for i, g in enumerate(idx)}
        edges = [(e, (local[a], local[b])) for e, (a, b) in enumerate(rigid) if a in local and b in local]
        if not ((weight[:, idx] > 0).sum(-1) >= 2).any():
            continue
        solved = solve_sequence(
            proj, focal, norm[:, idx], weight[:, idx], init[:, idx], tuple(e for _, e in edges), fps, options
        )
        points[:, idx] = solved.points
        for j, (e, _) in enumerate(edges):
            lengths[e] = solved.bone_lengths[j]
    return points, lengths


def camera_spread(proj, focal, points, norm, weight, floor_px: float = 1.0) -> np.ndarray:
    """(C,) per camera: the scale σ of its 2D placement error, from the median distance of its
    used observations to the solved points (for a 2D Gaussian with σ per axis that median is
    1.177 σ); never below floor_px."""
    err = np.where(weight > 0, view_errors(proj, focal, points, norm), np.nan)
    out = np.full(len(focal), DEFAULT_SIGMA_PX)
    for c in range(len(focal)):
        e = err[..., c][np.isfinite(err[..., c])]
        if e.size >= 10:
            out[c] = max(floor_px, float(np.median(e)) / 1.177)
    return out


def _inconsistent_views(proj, focal, points, norm, weight, judge, identity_px, decided):
    """(T, C) bool: the view's median reprojection error over the judged keypoints against the
    solved points exceeds identity_px."""
    err = np.where(weight > 0, view_errors(proj, focal, points, norm), np.nan)[:, judge]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(err, axis=1)
    return decided & (median > identity_px)


@dataclass
class SequenceTriangulation:
    points: np.ndarray  # (T, K, 3) mm; NaN where fewer than two usable views
    error_px: np.ndarray  # (T, K) mean reprojection error over the views that agree
    ncams: np.ndarray  # (T, K) views that agree with the point (within agree_px)
    inliers: np.ndarray  # (T, K, C) bool: the views that agree
    used: np.ndarray  # (T, K, C) bool: the views that entered the solve
    observed: np.ndarray  # (T, K, C) bool: confident views before any exclusion
    view_error_px: np.ndarray  # (T, K, C) every used view's reprojection error (NaN: not used)
    cause: np.ndarray  # (T, K) int8: KEPT or the drop cause (CAUSES)
    checks: ViewChecks  # the last round's: swaps applied, frames excluded (inconsistent)
    outside_subject: np.ndarray  # (T, C) bool: frames whose view is outside the chosen subject
    rigid: tuple[tuple[int, int], ...]
    bone_lengths: np.ndarray  # (E,) mm per rigid edge
    pairs: tuple[tuple[int, int], ...]
    seconds: dict = field(default_factory=dict)


def triangulate_sequence(
    cameras,
    pixels: np.ndarray,
    confidence: np.ndarray,
    names: tuple[str, ...],
    skeleton: Skeleton,
    fps: float,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    subject: np.ndarray | None = None,
    identity_px: float = DEFAULT_IDENTITY_PX,
    agree_px: float = DEFAULT_AGREE_PX,
    options: SolveOptions | None = None,
) -> SequenceTriangulation:
    """cameras: CameraModel list (C); pixels (T, K, C, 2) (NaN: not found); confidence (T, K, C);
    subject (T, C) bool: views showing the chosen subject (views.region_mask), None: all."""
    clock = {"start": time.monotonic()}
    cams = list(cameras)
    proj, focal = camera_arrays(cams)
    px = np.asarray(pixels, np.float64)
    norm = np.full(px.shape, np.nan)
    for i, cam in enumerate(cams):
        have = np.isfinite(px[:, :, i]).all(axis=-1)
        norm[:, :, i][have] = cam.normalise(px[:, :, i][have])
    conf = np.nan_to_num(np.asarray(confidence, np.float64))
    observed = np.isfinite(norm).all(axis=-1) & (conf >= min_confidence)
    weight = np.where(observed, conf, 0.0)
    outside = np.zeros(weight.shape[::2], bool) if subject is None else ~np.asarray(subject, bool)
    weight[np.broadcast_to(outside[:, None, :], weight.shape)] = 0
    pairs = mirror_pairs(names)
    edge_points = sorted({i for e in skeleton.edges for i in e})
    judge = np.zeros(len(names), bool)
    judge[edge_points or slice(None)] = True
    # Round 1 judges each view by the others' robust triangulation; round 2 by the solved
    # sequence, which the views excluded in round 1 no longer pull (it catches a view that drifts
    # between two people, and gives back a view excluded on a poor leave-one-out reference).
    checked = judge.copy()
    checked[[i for pair in pairs for i in pair]] = True
    ref = reference_points(cams, norm, weight, checked)
    points = init = excluded = swapped = None
    for round_ in (1, 2):
        checks = check_views(proj, focal, ref, norm, weight, pairs, identity_px=identity_px, judge=judge)
        if (
            round_ == 2
            and (checks.inconsistent == excluded).all()
            and (checks.swapped_pairs == swapped).all()
        ):
            break
        excluded, swapped = checks.inconsistent, checks.swapped_pairs
        fixed_norm = apply_swaps(norm, swapped, pairs)
        fixed_weight = np.where(excluded[:, None, :], 0.0, apply_swaps(weight, swapped, pairs))
        init = initial_points(cams, fixed_norm, fixed_weight)
        if points is not None:
            init = np.where(np.isfinite(points), points, init)
        clock[f"checks{round_}"] = time.monotonic()
        points, lengths = _solve_groups(
            proj, focal, fixed_norm, fixed_weight, init, names, skeleton.rigid, fps, options
        )
        ref = np.repeat(points[:, :, None, :], len(cams), axis=2)
    # A camera that follows another person in a large share of its frames drifts between the two:
    # its remaining frames are held to half the identity gate.
    decided = np.maximum(checks.decided.sum(axis=0), 1)
    drifting = checks.inconsistent.sum(axis=0) >= DEFAULT_FOLLOWS_OTHER_SHARE * decided
    stricter = checks.decided & drifting[None, :] & (np.nan_to_num(checks.view_error_px) > identity_px / 2)
    if (stricter & ~excluded).any():
        excluded = excluded | stricter
        checks.inconsistent = excluded
        fixed_weight = np.where(excluded[:, None, :], 0.0, fixed_weight)
    norm, weight = fixed_norm, fixed_weight
    # The 2D's placement spread, measured on the solved sequence, replaces the guessed scale for
    # a last solve under a redescending loss: on precise 2D (synthetic, 1 px) the scale shrinks
    # so that gross errors stop pulling; on real 2D it stays near the guess. One scale for all
    # cameras: weighting cameras by their own spread raised the worst cameras' errors (p90).
    spread = camera_spread(proj, focal, points, norm, weight)
    opt = SolveOptions(
        **{
            **vars(options or SolveOptions()),
            "sigma_px": SPREAD_FACTOR * float(np.median(spread)),
            "loss": FINAL_LOSS,
        }
    )
    points, lengths = _solve_groups(
        proj,
        focal,
        norm,
        weight,
        np.where(np.isfinite(points), points, init),
        names,
        skeleton.rigid,
        fps,
        opt,
    )
    clock["solve"] = time.monotonic()
    rigid = skeleton.rigid
    used = weight > 0
    err = np.where(used, view_errors(proj, focal, points, norm), np.nan)
    inliers = used & (np.nan_to_num(err, nan=np.inf) < agree_px)
    ncams = inliers.sum(axis=-1)
    with np.errstate(invalid="ignore"):
        error_px = np.where(ncams > 0, np.where(inliers, err, 0).sum(-1) / np.maximum(ncams, 1), np.nan)
    n_obs, n_used = observed.sum(-1), used.sum(-1)
    cause = np.full(n_obs.shape, KEPT, np.int8)
    cause[n_obs == 0] = UNSEEN
    cause[n_obs == 1] = ONE_VIEW
    cause[(n_obs >= 2) & (n_used < 2)] = EXCLUDED
    # Seen, but no view lies near the point the priors settled on: it would be invented.
    cause[(cause == KEPT) & (ncams == 0)] = UNSUPPORTED
    points[cause != KEPT] = np.nan
    seconds = {
        "total": round(time.monotonic() - clock["start"], 3),
        "rounds": 2 if "checks2" in clock else 1,
        "camera_spread_px": [round(float(v), 2) for v in spread],
    }
    return SequenceTriangulation(
        points, error_px, ncams, inliers, used, observed, err, cause, checks, outside,
        rigid, lengths, pairs, seconds,
    )  # fmt: skip
