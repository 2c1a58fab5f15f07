"""Which 2D views to believe, per frame: the checks the sequence triangulation (sequence.py) runs
before it solves, each vectorised over every frame, keypoint and camera.

- A leave-one-out reference: for each camera, every keypoint triangulated robustly from the
  *other* cameras (triangulate.py's `triangulate_robust`), so a view is judged by what the rest of
  the rig says, never by a 3D point it helped make.
- Left/right swaps: a 2D model that mistakes the subject's facing direction labels the left limbs
  as right ones. Per frame and view, every mirror pair (keypoints.py's `mirror_pairs`) whose two
  observations fit the reference clearly better exchanged is swapped back; when most of a view's
  decidable pairs in a frame say so, the whole view is swapped in that frame.
- Identity: a view whose keypoints, swaps corrected, lie far from the reference in most of the body
  (median over its keypoints above `identity_px`) shows someone else, or nothing, in that frame; the
  frame is excluded for that camera, and a camera that does this in a large share of its frames is
  reported as following another person.
- The subject, when several people are filmed: a region per camera (pixels) or a 3D volume
  (a sphere, mm) says where the chosen person is; a view whose keypoints mostly lie outside it in
  a frame shows someone else there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from controller.dataset.pose.triangulate import triangulate_robust

DEFAULT_SWAP_GAIN_PX = 8.0  # a swap must lower a pair's summed error by this much …
DEFAULT_SWAP_RATIO = 0.5  # … and to at most this fraction of it
DEFAULT_IDENTITY_PX = 60.0
DEFAULT_FOLLOWS_OTHER_SHARE = 0.2  # inconsistent in this share of its frames: another person
ERROR_CAP_PX = 200.0  # a single far-off keypoint weighs no more than this in a sum


@dataclass
class ViewChecks:
    swapped_pairs: np.ndarray  # (T, P, C) bool: the pair was exchanged back in that view and frame
    swapped_view: np.ndarray  # (T, C) bool: the whole view was swapped in that frame
    inconsistent: np.ndarray  # (T, C) bool: the view disagrees with the others in most of the body
    view_error_px: np.ndarray  # (T, C) median reprojection error of the view against the reference
    decided: np.ndarray  # (T, C) bool: enough keypoints to judge the view in that frame


def reference_points(
    cameras, xy_norm: np.ndarray, weight: np.ndarray, keypoints: np.ndarray | None = None
) -> np.ndarray:
    """(T, K, C, 3): for each camera, the keypoints triangulated from the other cameras (only
    `keypoints` (K,) bool, the ones the checks look at; NaN elsewhere)."""
    cams = list(cameras)
    out = np.full((*weight.shape, 3), np.nan)
    pick = np.ones(weight.shape[1], bool) if keypoints is None else np.asarray(keypoints, bool)
    for c in range(len(cams)):
        w = weight[:, pick].copy()
        w[..., c] = 0
        out[:, pick, c, :] = triangulate_robust(cams, xy_norm[:, pick], w, min_confidence=1e-9).points
    return out


def _view_errors(proj, focal, ref: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """ref (T, K, C, 3), xy (T, K, C, 2) → (T, K, C) px error of each view to its own reference."""
    cam = np.einsum("cij,tkcj->tkci", proj[:, :, :3], ref) + proj[None, None, :, :, 3]
    with np.errstate(invalid="ignore", divide="ignore"):
        uv = cam[..., :2] / cam[..., 2:3]
        err = np.linalg.norm(uv - xy, axis=-1) * focal
    err[~(cam[..., 2] > 0)] = np.nan
    return err


def check_views(
    proj: np.ndarray,
    focal: np.ndarray,
    ref: np.ndarray,
    xy: np.ndarray,
    weight: np.ndarray,
    pairs: tuple[tuple[int, int], ...],
    swap_gain_px: float = DEFAULT_SWAP_GAIN_PX,
    swap_ratio: float = DEFAULT_SWAP_RATIO,
    identity_px: float = DEFAULT_IDENTITY_PX,
    min_keypoints: int = 4,
    judge: np.ndarray | None = None,
) -> ViewChecks:
    """Swaps and identity of every view in every frame against `ref` (reference_points). proj,
    focal: camera_arrays (unscaled, mm); xy (T, K, C, 2) normalised; weight (T, K, C) (0 = no
    observation); judge (K,) bool: the keypoints whose median error decides identity (None: all)."""
    t, k, c = weight.shape
    seen = weight > 0
    direct = np.where(seen, _view_errors(proj, focal, ref, xy), np.nan)
    pairs_arr = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    left, right = pairs_arr[:, 0], pairs_arr[:, 1]
    swapped_pairs = np.zeros((t, len(pairs_arr), c), bool)
    swapped_view = np.zeros((t, c), bool)
    if len(pairs_arr):
        crossed_lr = _view_errors(proj, focal, ref[:, left], xy[:, right])  # left reference ↔ right 2D
        crossed_rl = _view_errors(proj, focal, ref[:, right], xy[:, left])
        both = seen[:, left] & seen[:, right]
        cap = ERROR_CAP_PX
        as_is = np.minimum(direct[:, left], cap) + np.minimum(direct[:, right], cap)
        exchanged = np.minimum(crossed_lr, cap) + np.minimum(crossed_rl, cap)
        # A pair whose two points lie close together in this view (seen side-on) cannot tell.
        decidable = both & np.isfinite(as_is) & np.isfinite(exchanged)
        decidable &= np.abs(as_is - exchanged) > swap_gain_px
        better = decidable & (exchanged < swap_ratio * as_is) & (as_is - exchanged > swap_gain_px)
        swapped_pairs = better
        n_decidable = decidable.sum(axis=1)
        swapped_view = (n_decidable > 0) & (better.sum(axis=1) * 2 > n_decidable)
        swapped_pairs = np.where(swapped_view[:, None, :], decidable, swapped_pairs)
    fixed = apply_swaps(xy, swapped_pairs, pairs)
    after = np.where(seen, _view_errors(proj, focal, ref, fixed), np.nan)
    if judge is not None:
        after = after[:, np.asarray(judge, bool)]
    counted = np.isfinite(after).sum(axis=1)
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(after, axis=1)
    decided = counted >= min_keypoints
    inconsistent = decided & (median > identity_px)
    return ViewChecks(swapped_pairs, swapped_view, inconsistent, median, decided)


def apply_swaps(
    values: np.ndarray, swapped_pairs: np.ndarray, pairs: tuple[tuple[int, int], ...]
) -> np.ndarray:
    """values (T, K, C, ...) with the swapped pairs' left and right entries exchanged per view and
    frame (swapped_pairs (T, P, C))."""
    out = values.copy()
    for p, (a, b) in enumerate(pairs):
        m = swapped_pairs[:, p, :]  # (T, C)
        if not m.any():
            continue
        va, vb = values[:, a][m], values[:, b][m]
        out[:, a][m] = vb
        out[:, b][m] = va
    return out


def region_mask(
    pixels: np.ndarray,
    confidence: np.ndarray,
    regions: dict[int, tuple[float, float, float, float]],
    min_share: float = 0.5,
) -> np.ndarray:
    """(T, C) bool: the view's confident keypoints lie mostly inside its camera's region
    (x0, y0, x1, y1 pixels); cameras without a region: True. pixels (T, K, C, 2)."""
    t, _k, c, _ = pixels.shape
    out = np.ones((t, c), bool)
    for ci, (x0, y0, x1, y1) in regions.items():
        p = pixels[:, :, ci]
        seen = (confidence[:, :, ci] > 0) & np.isfinite(p).all(axis=-1)
        with np.errstate(invalid="ignore"):
            inside = seen & (p[..., 0] >= x0) & (p[..., 0] <= x1) & (p[..., 1] >= y0) & (p[..., 1] <= y1)
        n = seen.sum(axis=1)
        out[:, ci] = (n == 0) | (inside.sum(axis=1) >= min_share * np.maximum(n, 1))
    return out


def volume_regions(
    cameras, centre_mm: np.ndarray, radius_mm: float
) -> dict[int, tuple[float, float, float, float]]:
    """A sphere in the world as a box per camera: the projected centre ± the radius at its depth
    (cameras: CameraModel list; cameras that see the sphere behind them get no box and exclude
    nothing)."""
    out = {}
    for ci, cam in enumerate(cameras):
        depth = float((cam.rotation_matrix @ centre_mm + cam.translation)[2])
        if depth <= radius_mm:
            continue
        u, v = cam.project(np.asarray(centre_mm, float)[None])[0]
        r = float(cam.matrix[0, 0]) * radius_mm / depth
        out[ci] = (u - r, v - r, u + r, v + r)
    return out


@dataclass
class Subject:
    """Where the chosen person is: a box per camera (x0, y0, x1, y1 pixels) and/or a sphere in
    the world (x, y, z, radius mm)."""

    regions: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    volume: tuple[float, float, float, float] | None = None


def subject_text(subject: Subject | None) -> dict | None:
    if subject is None:
        return None
    return {"regions": {k: list(v) for k, v in subject.regions.items()}, "volume": subject.volume}


def subject_mask(subject: Subject, cameras, pixels: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """(T, C) bool: the views that show the chosen subject (every camera's region and the
    volume's projection must hold most of the view's confident keypoints)."""
    names = list(cameras.names)
    unknown = [n for n in subject.regions if n not in names]
    if unknown:
        raise ValueError(
            f"subject region for unknown camera(s) {', '.join(unknown)}; cameras: {', '.join(names)}"
        )
    mask = region_mask(pixels, confidence, {names.index(n): box for n, box in subject.regions.items()})
    if subject.volume is not None:
        x, y, z, r = subject.volume
        mask &= region_mask(pixels, confidence, volume_regions(list(cameras), np.array([x, y, z]), r))
    return mask
