"""A ChArUco board as geometry: the black rectangles of the printed board, in millimetres.

One description serves both the printable board (`syncrig board`: vector PDF, PNG at a DPI) and the
simulated camera's charuco scene (an anti-aliased texture), so what is printed is exactly what the
simulation films. The marker bits and the chessboard phase (including OpenCV's legacy pattern for
even row counts) come from OpenCV's own `CharucoBoard`, so they match what its detector expects.

Board parameters are a mapping with the field names of `controller.dataset.board.spec.BoardSpec`
(squares_x, squares_y, square_mm, marker_mm, dictionary, legacy_pattern): this module runs in the
agent package, which must not import the desktop's controller. OpenCV is imported lazily: only the
desktop (board printing, simulated agents, which run on the desktop) uses this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["BoardLayout", "board_layout", "cv_charuco_board", "rasterize"]


def cv_charuco_board(board: Mapping):
    """OpenCV's CharucoBoard (units: mm) for board parameters."""
    import cv2

    dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, str(board["dictionary"])))
    cv_board = cv2.aruco.CharucoBoard(
        (int(board["squares_x"]), int(board["squares_y"])),
        float(board["square_mm"]),
        float(board["marker_mm"]),
        dictionary,
    )
    cv_board.setLegacyPattern(bool(board.get("legacy_pattern", False)))
    return cv_board


@dataclass(frozen=True)
class BoardLayout:
    width_mm: float
    height_mm: float
    # (N, 4) x0, y0, x1, y1 in mm, board frame (origin at the board's top-left corner, x along
    # the columns, y down the rows): every black area of the board, non-overlapping.
    black_rects_mm: np.ndarray


def board_layout(board: Mapping) -> BoardLayout:
    import cv2

    cv_board = cv_charuco_board(board)
    sx, sy = int(board["squares_x"]), int(board["squares_y"])
    square, marker = float(board["square_mm"]), float(board["marker_mm"])
    dictionary = cv_board.getDictionary()
    bits = dictionary.markerSize
    cell = marker / (bits + 2)
    rects: list[tuple[float, float, float, float]] = []
    marker_squares: set[tuple[int, int]] = set()
    for marker_id, corners in zip(cv_board.getIds().ravel(), cv_board.getObjPoints(), strict=True):
        corners = np.asarray(corners, dtype=np.float64).reshape(4, 3)
        x0, y0 = corners[0, 0], corners[0, 1]  # top-left corner of the marker
        marker_squares.add((int(x0 // square), int(y0 // square)))
        # One pixel per marker cell (bits + 2 border cells): 0 = black.
        cells = cv2.aruco.generateImageMarker(dictionary, int(marker_id), bits + 2, borderBits=1)
        for r, c in zip(*np.nonzero(cells < 128), strict=True):
            rects.append((x0 + c * cell, y0 + r * cell, x0 + (c + 1) * cell, y0 + (r + 1) * cell))
    # Every square without a marker is a black chessboard square.
    for row in range(sy):
        for col in range(sx):
            if (col, row) not in marker_squares:
                rects.append((col * square, row * square, (col + 1) * square, (row + 1) * square))
    return BoardLayout(sx * square, sy * square, np.array(rects, dtype=np.float64))


def _coverage(lo: float, hi: float, count: int) -> tuple[int, np.ndarray]:
    """(first pixel, fraction of each pixel i in [first, ...) covered by the interval [lo, hi))."""
    first = max(0, int(np.floor(lo)))
    last = min(count, int(np.ceil(hi)))
    if last <= first:
        return first, np.zeros(0)
    edges = np.arange(first, last + 1, dtype=np.float64)
    return first, np.clip(np.minimum(edges[1:], hi) - np.maximum(edges[:-1], lo), 0.0, 1.0)


def rasterize(
    layout: BoardLayout, px_per_mm: float, size: tuple[int, int], origin_px: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Black coverage (float32, 0..1) of an image of `size` (width, height) pixels where board point
    (x, y) mm lands at pixel coordinates origin + (x, y)·px_per_mm (pixel i spans [i, i+1)).

    Coverage is exact area (axis-aligned rectangles are separable), so the texture is anti-aliased
    without blurring the corners' positions; threshold it at 0.5 for a crisp print."""
    width, height = size
    image = np.zeros((height, width), dtype=np.float32)
    ox, oy = origin_px
    for x0, y0, x1, y1 in layout.black_rects_mm:
        cx, fx = _coverage(ox + x0 * px_per_mm, ox + x1 * px_per_mm, width)
        cy, fy = _coverage(oy + y0 * px_per_mm, oy + y1 * px_per_mm, height)
        if fx.size and fy.size:
            image[cy : cy + fy.size, cx : cx + fx.size] += np.outer(fy, fx).astype(np.float32)
    return np.minimum(image, 1.0)
