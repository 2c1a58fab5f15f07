"""Per-camera board views and the choice of a well-spread subset for intrinsics: intrinsics need
corners all over the image (distortion lives at the edges) and varied board tilts (focal length
and principal point are only observable from perspective), not hundreds of near-duplicate frames."""

from __future__ import annotations

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


def spans_the_board_plane(board_points: np.ndarray) -> bool:
    """Do these board corners (n, 2|3, board plane z = 0) span a plane? Corners on one line of the
    board (a single row, column or diagonal: the board seen at the edge of the image or nearly
    edge-on) fit no homography and no unique pose: OpenCV's intrinsics then fail outright
    (`matH0.size() == Size(3, 3)`) and PnP flips."""
    xy = np.asarray(board_points, dtype=np.float64)[:, :2]
    spread = np.linalg.svd(xy - xy.mean(0), compute_uv=False)
    return len(spread) == 2 and spread[1] > _LINE_SPREAD * spread[0]


def camera_views(det: CameraDetections, min_corners: int, board_points: np.ndarray) -> list[View]:
    """Every row in which the camera saw at least `min_corners` corners (fewer cannot fix a pose)
    that span the board's plane (`board_points`: each corner id's position on the board)."""
    if len(det.row) == 0:
        return []
    order = np.argsort(det.row, kind="stable")
    rows, ids, xy = det.row[order], det.corner_id[order], det.xy[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    ends = np.r_[starts[1:], len(rows)]
    views = []
    for s, e in zip(starts, ends, strict=True):
        if e - s >= min_corners and spans_the_board_plane(board_points[ids[s:e]]):
            views.append(View(int(rows[s]), ids[s:e], xy[s:e]))
    return views


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
