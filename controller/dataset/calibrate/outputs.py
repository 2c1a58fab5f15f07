"""What a calibration leaves in the session: `calibration.toml` (aniposelib's schema, with the
board spec and the world frame in [metadata]), Pose2Sim's `Calib.toml`, and `report.json`."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from controller.dataset.calibrate.solve import CalibrationResult
from syncrig_agent.contract.layout import SessionLayout

WORLD_FRAME = (
    "the ChArUco board in the reference row: origin at the chessboard's outer corner next to "
    "corner id 0 (which sits at (square, square, 0)), x along squares_x, y along squares_y, z into "
    "the board (away from its printed side); millimetres"
)


def calibration_metadata(result: CalibrationResult) -> dict:
    return {
        "adjusted": True,
        "error": round(result.mean_error_px, 6),  # mean reprojection error, px (aniposelib's key)
        "units": "mm",
        "world_frame": WORLD_FRAME,
        "reference_row": int(result.reference_row),
        "fisheye": bool(result.options.fisheye),
        "software": "syncrig calibrate",
        "board": result.spec.as_dict(),
    }


def _clean(value):  # noqa: ANN001, ANN202
    """JSON-ready: tuples-as-keys to strings, NumPy scalars to Python, NaN to null."""
    if isinstance(value, dict):
        return {(k if isinstance(k, str) else "-".join(map(str, k))): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        return _clean(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_report(result: CalibrationResult, session: Path | None = None) -> dict:
    cams = {}
    for cam in result.cameras:
        entry = dict(result.per_camera[cam.name])
        entry.update(
            {
                "size": list(cam.size),
                "focal_px": [round(float(cam.matrix[0, 0]), 3), round(float(cam.matrix[1, 1]), 3)],
                "principal_point_px": [round(float(cam.matrix[0, 2]), 3), round(float(cam.matrix[1, 2]), 3)],
                "distortions": [round(float(d), 6) for d in cam.distortions],
                "centre_mm": [round(float(c), 3) for c in cam.centre],
                "views_intrinsics_rows": result.views_used[cam.name],
            }
        )
        cams[cam.name] = entry
    all_err = np.concatenate([e for e in result.errors.values() if len(e)])
    return _clean(
        {
            "session": str(session) if session else None,
            "board": result.spec.as_dict(),
            "model": "fisheye" if result.options.fisheye else "pinhole",
            "reference_row": result.reference_row,
            "world_frame": WORLD_FRAME,
            "root_camera": result.root_camera,
            "spanning_tree": [{"from": a, "to": b, "shared_rows": n} for (a, b), n in result.tree.items()],
            "rows": len(result.board_poses),
            "rows_detected": result.bundle.get("rows_detected"),
            "reprojection_px": {
                "mean": float(all_err.mean()),
                "median": float(np.median(all_err)),
                "p95": float(np.percentile(all_err, 95)),
                "max": float(all_err.max()),
            },
            "cameras": cams,
            "bundle_adjustment": result.bundle,
            "seconds": result.seconds,
            "options": {
                k: getattr(result.options, k)
                for k in result.options.__dataclass_fields__
                if k != "intrinsics"
            },
            "intrinsics_given": result.options.intrinsics is not None,  # held fixed (--intrinsics)
        }
    )


def write_outputs(session: Path, result: CalibrationResult) -> dict:
    """calibration.toml and Calib.toml into the session's calibration folder; returns the report,
    which the caller writes (report.json) once the plots are listed in it."""
    layout = SessionLayout(session)
    result.cameras.save(layout.calibration_toml, calibration_metadata(result))
    result.cameras.save_pose2sim(layout.pose2sim_toml, result.mean_error_px)
    return build_report(result, session)
