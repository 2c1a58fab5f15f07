"""Per-camera board views and the choice of a well-spread subset for intrinsics: intrinsics need
corners all over the image (distortion lives at the edges) and varied board tilts (focal length
and principal point are only observable from perspective), not hundreds of near-duplicate frames."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from controller.dataset.board.detections import CameraDetections

COVERAGE_GRID = (8, 6)  # cells across, down: the image is "covered" cell by cell


@dataclass
class View:
    row: int
    ids: np.ndarray  # (n,) corner ids
    xy: np.ndarray  # (n, 2) pixels


# Corners whose board positions spread less than this across their main line lie on one line.
_LINE_SPREAD = 1e-3
# A view's geometry must let a fit use it (checked before any fit, on the board layout and the
# pixels alone): corners on at least this many board rows and columns ...
MIN_SPAN = 2
# ... covering at least this share of the image (their convex hull): a board far away or cut to a
# sliver fixes focal length and distortion poorly and its corners are the least accurate ...
MIN_IMAGE_SHARE = 0.002
# ... and a board turned no further than this from facing the camera (estimated from the
# homography's foreshortening): grazing views have smeared corners and unstable poses.
MAX_TILT_DEG = 75.0


def spans_the_board_plane(board_points: np.ndarray) -> bool:
    """Do these board corners (n, 2|3, board plane z = 0) span a plane? Corners on one line of the
    board (a single row, column or diagonal: the board seen at the edge of the image or nearly
    edge-on) fit no homography and no unique pose: OpenCV's intrinsics then fail outright
    (`matH0.size() == Size(3, 3)`) and PnP flips."""
    xy = np.asarray(board_points, dtype=np.float64)[:, :2]
    spread = np.linalg.svd(xy - xy.mean(0), compute_uv=False)
    return len(spread) == 2 and spread[1] > _LINE_SPREAD * spread[0]


def tilt_deg(board_xy: np.ndarray, image_xy: np.ndarray) -> float:
    """The board's tilt from facing the camera, from the foreshortening of the board → image
    homography at the corners' centre (σmin/σmax of its Jacobian = cos tilt for a pinhole with
    square pixels); 90 when no homography fits."""
    import cv2

    board_xy = np.asarray(board_xy, dtype=np.float64)[:, :2]
    h, _ = cv2.findHomography(board_xy, np.asarray(image_xy, dtype=np.float64), 0)
    if h is None or not np.isfinite(h).all():
        return 90.0
    x, y = board_xy.mean(0)
    w = h[2, 0] * x + h[2, 1] * y + h[2, 2]
    if abs(w) < 1e-12:
        return 90.0
    u = (h[0, 0] * x + h[0, 1] * y + h[0, 2]) / w
    v = (h[1, 0] * x + h[1, 1] * y + h[1, 2]) / w
    jac = np.array(
        [[h[0, 0] - u * h[2, 0], h[0, 1] - u * h[2, 1]], [h[1, 0] - v * h[2, 0], h[1, 1] - v * h[2, 1]]]
    )
    sv = np.linalg.svd(jac / w, compute_uv=False)
    if sv[0] <= 0:
        return 90.0
    return float(np.degrees(np.arccos(np.clip(sv[1] / sv[0], 0.0, 1.0))))


def view_defect(board_points: np.ndarray, image_xy: np.ndarray, size: tuple[int, int]) -> str | None:
    """Why this view cannot serve a fit (a short reason), or None when its geometry is fine:
    corners on too few board rows/columns, on one line, too small in the image, too oblique."""
    import cv2

    board_xy = np.asarray(board_points, dtype=np.float64)[:, :2]
    if min(len(np.unique(board_xy[:, 0].round(6))), len(np.unique(board_xy[:, 1].round(6)))) < MIN_SPAN:
        return "too few rows/columns"
    if not spans_the_board_plane(board_xy):
        return "collinear"
    hull = cv2.contourArea(cv2.convexHull(np.asarray(image_xy, dtype=np.float32).reshape(-1, 1, 2)))
    if hull < MIN_IMAGE_SHARE * size[0] * size[1]:
        return "too small in the image"
    if tilt_deg(board_xy, image_xy) > MAX_TILT_DEG:
        return "too oblique"
    return None


def camera_views(
    det: CameraDetections, min_corners: int, board_points: np.ndarray, rejected: Counter | None = None
) -> list[View]:
    """Every row in which the camera saw at least `min_corners` corners (fewer cannot fix a pose)
    whose geometry a fit can use (`view_defect`; `board_points`: each corner id's position on the
    board). `rejected` counts the rows left out, by reason."""
    rejected = Counter() if rejected is None else rejected
    if len(det.row) == 0:
        return []
    order = np.argsort(det.row, kind="stable")
    rows, ids, xy = det.row[order], det.corner_id[order], det.xy[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    views = []
    for s, e in zip(starts, ends, strict=True):
        if e - s < min_corners:
            rejected[f"fewer than {min_corners} corners"] += 1
            continue
        defect = view_defect(board_points[ids[s:e]], xy[s:e], det.image_size)
        if defect is None:
            views.append(View(int(rows[s]), ids[s:e], xy[s:e]))
        else:
            rejected[defect] += 1
    return views


def describe_rejected(rejected: Counter) -> str:
    """'12 too oblique, 3 collinear' (most first), or '' when nothing was left out."""
    return ", ".join(f"{n} {reason}" for reason, n in rejected.most_common())


def coverage_cells(
    xy: np.ndarray, size: tuple[int, int], grid: tuple[int, int] = COVERAGE_GRID
) -> np.ndarray:
    """Boolean (grid_y, grid_x) mask of the image cells holding at least one corner."""
    gx, gy = grid
    cx = np.clip((xy[:, 0] / size[0] * gx).astype(int), 0, gx - 1)
    cy = np.clip((xy[:, 1] / size[1] * gy).astype(int), 0, gy - 1)
    mask = np.zeros((gy, gx), bool)
    mask[cy, cx] = True
    return mask


def _features(views: list[View], size: tuple[int, int], poses: dict | None) -> np.ndarray:
    """A point per view whose distances say how different two views are: where the board is in
    the image and how large, and (once a first intrinsic guess exists) its tilt and distance."""
    w, h = size
    feats = []
    for v in views:
        centroid = v.xy.mean(0) / [w, h]
        extent = np.log(max(np.ptp(v.xy[:, 0]) * np.ptp(v.xy[:, 1]), 1.0) / (w * h))
        f = [centroid[0], centroid[1], 0.25 * extent]
        if poses is not None and v.row in poses:
            rot, trans = poses[v.row][:2]
            normal = rot[:, 2]  # board normal in the camera frame
            f += [1.5 * normal[0], 1.5 * normal[1], 0.5 * np.log(max(np.linalg.norm(trans), 1e-6))]
        else:
            f += [0.0, 0.0, 0.0]
        feats.append(f)
    return np.asarray(feats, dtype=np.float64)


def select_views(
    views: list[View], size: tuple[int, int], max_views: int, poses: dict | None = None
) -> list[View]:
    """Greedy choice: each next view adds the most uncovered image cells plus distance (in the
    feature space above) to the views already chosen; at most `max_views`."""
    if len(views) <= max_views:
        return list(views)
    cells = np.array([coverage_cells(v.xy, size).ravel() for v in views])
    feats = _features(views, size, poses)
    counts = np.array([len(v.ids) for v in views], dtype=np.float64)
    chosen = [int(np.argmax(counts))]
    covered = cells[chosen[0]].copy()
    min_dist = np.linalg.norm(feats - feats[chosen[0]], axis=1)
    n_cells = cells.shape[1]
    for _ in range(max_views - 1):
        new_cells = (cells & ~covered).sum(1) / n_cells
        score = 3.0 * new_cells + min_dist + 0.05 * counts / counts.max()
        score[chosen] = -np.inf
        pick = int(np.argmax(score))
        chosen.append(pick)
        covered |= cells[pick]
        min_dist = np.minimum(min_dist, np.linalg.norm(feats - feats[pick], axis=1))
    return [views[i] for i in sorted(chosen)]
