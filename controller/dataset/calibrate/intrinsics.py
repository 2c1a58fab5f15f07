"""Per-camera intrinsics from board views: OpenCV's pinhole model (k1 k2 p1 p2 k3) through
`cv2.calibrateCamera` (the board's object points matched to the detected corner ids, as
`board.matchImagePoints` does), or its fisheye model (k1..k4) through `cv2.fisheye.calibrate`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.dataset.calibrate.errors import CalibrationError
from controller.dataset.calibrate.views import View


@dataclass
class Intrinsics:
    matrix: np.ndarray  # (3, 3)
    distortions: np.ndarray  # (5,) pinhole, (4,) fisheye
    fisheye: bool
    rms_px: float
    views: int


def calibrate_intrinsics(
    camera: str,
    views: list[View],
    corners_mm: np.ndarray,
    size: tuple[int, int],
    *,
    fisheye: bool = False,
    fix_k3: bool = True,
) -> Intrinsics:
    import cv2

    if len(views) < 3:
        raise CalibrationError(
            f"{camera}: only {len(views)} usable board views; intrinsics need at least 3 "
            "(record the board in more positions, covering the whole image)"
        )
    obj = [corners_mm[v.ids].astype(np.float64) for v in views]
    img = [v.xy.astype(np.float64) for v in views]
    criteria = (cv2.TERM_CRITERIA_COUNT + cv2.TERM_CRITERIA_EPS, 100, 1e-10)
    try:
        if fisheye:
            flags = cv2.fisheye.CALIB_RECOMPUTE_EXTRINSIC | cv2.fisheye.CALIB_FIX_SKEW
            k0 = np.eye(3)
            rms, k, d, _, _ = cv2.fisheye.calibrate(
                [o.reshape(1, -1, 3) for o in obj],
                [i.reshape(1, -1, 2) for i in img],
                size,
                k0,
                np.zeros(4),
                flags=flags,
                criteria=criteria,
            )
            dist = np.asarray(d, dtype=np.float64).reshape(4)
        else:
            flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
            rms, k, d, _, _ = cv2.calibrateCamera(
                [o.astype(np.float32).reshape(-1, 1, 3) for o in obj],
                [i.astype(np.float32).reshape(-1, 1, 2) for i in img],
                size,
                None,
                None,
                flags=flags,
                criteria=criteria,
            )
            dist = np.zeros(5)
            dist[: min(5, d.size)] = np.asarray(d, dtype=np.float64).reshape(-1)[:5]
    except cv2.error as exc:
        model = "fisheye" if fisheye else "pinhole"
        raise CalibrationError(
            f"{camera}: OpenCV could not fit the {model} intrinsics ({exc.err or exc}); the views may "
            "be degenerate (board always parallel to the image) or the lens model wrong"
            + (" (try without --fisheye)" if fisheye else " (try --fisheye for a wide-angle lens)")
        ) from None
    k = np.asarray(k, dtype=np.float64)
    if not (np.isfinite(k).all() and np.isfinite(dist).all() and k[0, 0] > 0 and k[1, 1] > 0):
        raise CalibrationError(f"{camera}: intrinsics did not converge (got {k.tolist()})")
    return Intrinsics(k, dist, fisheye, float(rms), len(views))
