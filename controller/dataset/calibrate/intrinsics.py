"""Per-camera intrinsics from board views: OpenCV's pinhole model (k1 k2 p1 p2 k3) through
`cv2.calibrateCamera` (the board's object points matched to the detected corner ids, as
`board.matchImagePoints` does), or its fisheye model (k1..k4) through `cv2.fisheye.calibrate`.

`fit_intrinsics` is the robust entry: a fit that fails (or gives a camera no lens has) leaves out
the view most likely at fault (the most oblique) and tries again; a view the fit leaves far off
(per-view error) is dropped and the fit redone; a final failure names the cause with numbers."""

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
    per_view_px: np.ndarray | None = None  # (views,) rms reprojection error of each view


MAX_RETRIES = 6  # views left out, one per try, before a fit is given up
VIEW_OUTLIER = 4.0  # a view whose error exceeds this many times the median (and 1 px) is dropped


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
            rms, k, d, rvecs, tvecs = cv2.fisheye.calibrate(
                [o.reshape(1, -1, 3) for o in obj],
                [i.reshape(1, -1, 2) for i in img],
                size,
                k0,
                np.zeros(4),
                flags=flags,
                criteria=criteria,
            )
            dist = np.asarray(d, dtype=np.float64).reshape(4)
            per_view = []
            for o, i, r, t in zip(obj, img, rvecs, tvecs, strict=True):
                px, _ = cv2.fisheye.projectPoints(o.reshape(1, -1, 3), r, t, k, dist)
                per_view.append(np.sqrt(np.mean(np.sum((px.reshape(-1, 2) - i) ** 2, axis=1))))
            per_view = np.asarray(per_view)
        else:
            flags = cv2.CALIB_FIX_K3 if fix_k3 else 0
            rms, k, d, _, _, _, _, per_view = cv2.calibrateCameraExtended(
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
            per_view = np.asarray(per_view, dtype=np.float64).reshape(-1)
    except cv2.error as exc:
        model = "fisheye" if fisheye else "pinhole"
        raise CalibrationError(
            f"{camera}: OpenCV could not fit the {model} intrinsics ({exc.err or exc})"
        ) from None
    k = np.asarray(k, dtype=np.float64)
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]
    plausible = (
        np.isfinite(k).all()
        and np.isfinite(dist).all()
        and 0.05 * size[0] < fx < 50 * size[0]
        and 0.5 < fy / fx < 2.0
        and 0 < cx < size[0]
        and 0 < cy < size[1]
    )
    if not plausible:
        raise CalibrationError(
            f"{camera}: the intrinsics fit did not converge to a real camera (focal {fx:.4g}, {fy:.4g} px, "
            f"principal point {cx:.4g}, {cy:.4g} px in a {size[0]}x{size[1]} image)"
        )
    return Intrinsics(k, dist, fisheye, float(rms), len(views), per_view)


def _lens_hint(views: list[View], corners_mm: np.ndarray, size: tuple[int, int]) -> str:
    """' (try --fisheye ...)' when the board's own straight lines bend more towards the image edges
    than a homography explains (the residual pattern of a wide-angle lens), else ''."""
    import cv2

    radius, residual = [], []
    centre = np.array(size, dtype=np.float64) / 2
    for v in views:
        h, _ = cv2.findHomography(corners_mm[v.ids][:, :2], v.xy, 0)
        if h is None:
            continue
        px = cv2.perspectiveTransform(corners_mm[v.ids][:, :2].reshape(-1, 1, 2), h).reshape(-1, 2)
        residual.append(np.linalg.norm(px - v.xy, axis=1))
        radius.append(np.linalg.norm(v.xy - centre, axis=1) / np.linalg.norm(centre))
    if not residual:
        return ""
    radius, residual = np.concatenate(radius), np.concatenate(residual)
    inner, outer = residual[radius < 0.4], residual[radius > 0.7]
    if len(inner) < 10 or len(outer) < 10:
        return ""
    inner_px, outer_px = float(np.median(inner)), float(np.median(outer))
    if outer_px > 1.0 and outer_px > 3 * inner_px:
        return (
            f"; the board bends towards the image edges ({outer_px:.1f} px off a plane's image near the "
            f"edges vs {inner_px:.2f} px near the centre): a wide-angle lens, try --fisheye"
        )
    return ""


def fit_intrinsics(
    camera: str,
    views: list[View],
    corners_mm: np.ndarray,
    size: tuple[int, int],
    *,
    fisheye: bool = False,
    fix_k3: bool = True,
) -> tuple[Intrinsics, list[View], list[tuple[int, str]]]:
    """calibrate_intrinsics that survives bad views: returns the intrinsics, the views they rest
    on and the views left out as (row, reason)."""
    from controller.dataset.calibrate.views import tilt_deg

    tilts = {v.row: tilt_deg(corners_mm[v.ids], v.xy) for v in views}
    current = list(views)
    dropped: list[tuple[int, str]] = []
    first_error: CalibrationError | None = None
    while True:
        try:
            intr = calibrate_intrinsics(camera, current, corners_mm, size, fisheye=fisheye, fix_k3=fix_k3)
        except CalibrationError as exc:
            first_error = first_error or exc
            if len(dropped) >= MAX_RETRIES or len(current) <= 3:
                break
            worst = max(current, key=lambda v: tilts[v.row])
            current.remove(worst)
            dropped.append((worst.row, f"fit failed with it (tilt {tilts[worst.row]:.0f} deg)"))
            continue
        errs = intr.per_view_px
        if errs is None or len(dropped) >= MAX_RETRIES or len(current) <= 3:
            return intr, current, dropped
        limit = max(1.0, VIEW_OUTLIER * float(np.median(errs)))
        worst_i = int(np.argmax(errs))
        if errs[worst_i] <= limit:
            return intr, current, dropped
        dropped.append((current[worst_i].row, f"{errs[worst_i]:.2f} px off the fit (limit {limit:.2f})"))
        del current[worst_i]
    spread = [tilts[v.row] for v in views]
    covered = _coverage_share(views, size)
    model = "fisheye" if fisheye else "pinhole"
    cause = (
        f"every view faces the camera squarely (tilt at most {max(spread):.0f} deg), so the focal length "
        "cannot be seen. "
        if max(spread) < 10
        else ""
    )
    raise CalibrationError(
        f"{first_error}; still no {model} fit after leaving out the {len(dropped)} most oblique views. "
        f"{cause}"
        f"The {len(views)} views tilt {min(spread):.0f}..{max(spread):.0f} deg from facing the camera and "
        f"their corners cover {100 * covered:.0f} % of the image: record the board over the whole image "
        "and at tilts of 20..50 deg in several directions"
        + (" (or try without --fisheye)" if fisheye else _lens_hint(views, corners_mm, size))
    )


def _coverage_share(views: list[View], size: tuple[int, int]) -> float:
    from controller.dataset.calibrate.views import coverage_cells

    cells = np.zeros_like(coverage_cells(views[0].xy, size)) if views else np.zeros((1, 1), bool)
    for v in views:
        cells |= coverage_cells(v.xy, size)
    return float(cells.mean())
