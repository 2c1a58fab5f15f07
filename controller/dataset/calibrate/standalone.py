"""Intrinsics on their own, per camera, from pictures of a board (ChArUco or checkerboard): what
`syncrig intrinsics` writes (aniposelib's schema, extrinsics marked not calibrated, plus each
picture's reprojection error) and what `syncrig calibrate --intrinsics FILE` then holds fixed
while it solves the extrinsics."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from controller.dataset.board.check import MIN_CORNERS, DetectionError
from controller.dataset.board.pictures import detect_pictures
from controller.dataset.board.spec import BoardSpec
from controller.dataset.calibrate.errors import CalibrationError
from controller.dataset.calibrate.intrinsics import Intrinsics, fit_intrinsics
from controller.dataset.calibrate.views import camera_views, describe_rejected
from controller.dataset.cameras import CalibrationFileError, CameraSet, dumps_toml
from controller.progress import Progress
from syncrig_agent.contract.formats.atomic import write_text_atomic

NOT_FOUND = "board not found"


def intrinsics_from_pictures(
    sources: dict[str, Path],
    spec: BoardSpec,
    *,
    fisheye: bool = False,
    fix_k3: bool = True,
    every_s: float = 1.0,
    progress: Progress | None = None,
) -> dict[str, dict]:
    """Per camera: {"size", "intrinsics" (Intrinsics), "pictures": {label: error px | reason}}."""
    corners = spec.corner_points_mm()
    out = {}
    for i, (name, path) in enumerate(sources.items()):
        if progress is not None:
            progress(i / len(sources), f"{name}: finding the board")
        try:
            found = detect_pictures(name, Path(path), spec, every_s)
        except DetectionError as exc:
            raise CalibrationError(f"{name}: {exc}") from None
        det = found.detections
        rejected: Counter = Counter()
        views = camera_views(det, MIN_CORNERS, corners, rejected)
        if len(views) < 3:
            why = describe_rejected(rejected)
            raise CalibrationError(
                f"{name}: the {spec.describe()} was found in {len(det.rows())} of the {len(found.labels)} "
                f"pictures of {path}" + (f" ({why} left out)" if why else "") + "; intrinsics need at "
                "least 3 views of it (check the board's size flags and that it is whole in the pictures)"
            )
        intr, used, dropped = fit_intrinsics(
            name, views, corners, det.image_size, fisheye=fisheye, fix_k3=fix_k3
        )
        pictures: dict[str, float | str] = {label: NOT_FOUND for label in found.labels}
        for v in views:
            pictures[found.labels[v.row]] = "left out by geometry"
        for row, why in dropped:
            pictures[found.labels[row]] = f"left out: {why}"
        for v, err in zip(used, intr.per_view_px, strict=True):
            pictures[found.labels[v.row]] = round(float(err), 4)
        out[name] = {"size": det.image_size, "intrinsics": intr, "pictures": pictures}
    if progress is not None:
        progress(1.0, "intrinsics done")
    return out


def write_intrinsics_toml(path: Path, results: dict[str, dict], spec: BoardSpec) -> None:
    """aniposelib's calibration.toml without extrinsics: [cam_N] name, size, matrix, distortions
    (fisheye), calibrated_extrinsics = false, the pictures and their errors; [metadata]."""
    tables = {}
    for i, (name, r) in enumerate(results.items()):
        intr: Intrinsics = r["intrinsics"]
        labels = list(r["pictures"])
        table = {
            "name": name,
            "size": [int(r["size"][0]), int(r["size"][1])],
            "matrix": intr.matrix.tolist(),
            "distortions": intr.distortions.tolist(),
            "fisheye": bool(intr.fisheye),
            "calibrated_extrinsics": False,
            "error_px": round(intr.rms_px, 4),
            "pictures": labels,
            # a number: that picture's rms reprojection error (px); -1: not used (see picture_notes)
            "picture_errors_px": [v if isinstance(v, float) else -1.0 for v in r["pictures"].values()],
            "picture_notes": [v if isinstance(v, str) else "" for v in r["pictures"].values()],
        }
        tables[f"cam_{i}"] = table
    tables["metadata"] = {"units": "mm", "intrinsics_only": True, "board": spec.as_dict()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, dumps_toml(tables))


def load_intrinsics(path: Path) -> dict[str, tuple[Intrinsics, tuple[int, int]]]:
    """Each camera's intrinsics and image size from a calibration.toml (an intrinsics-only one, as
    `syncrig intrinsics` writes, or a full one)."""
    try:
        cameras = CameraSet.load(path)
    except CalibrationFileError as exc:
        raise CalibrationError(str(exc)) from None
    return {
        c.name: (
            Intrinsics(np.array(c.matrix, dtype=np.float64), np.array(c.distortions), c.fisheye, 0.0, 0),
            c.size,
        )
        for c in cameras
    }
