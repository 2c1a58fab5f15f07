"""Synthetic calibration sessions for the tests: detections of a known rig written where
`syncrig calibrate` finds them (synced/match.csv header, calibration/board.json, detections/)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from controller.dataset import layout
from controller.dataset.calibrate.geometry import rotation_angle_deg, umeyama
from controller.dataset.calibrate.synthetic import SyntheticCalibration
from controller.dataset.cameras import CameraModel


def write_session(path: Path, syn: SyntheticCalibration, manifest: bool = False) -> Path:
    """A session directory holding only what calibration reads (plus session.json if asked)."""
    (path / "synced").mkdir(parents=True, exist_ok=True)
    names = [c.name for c in syn.cameras]
    (path / "synced" / "match.csv").write_text(",".join(names) + "\n" + ",".join("0" for _ in names) + "\n")
    syn.spec.save(layout.board_file(path))
    for name, det in syn.detections.items():
        det.save(layout.detections_file(path, name))
    if manifest:
        (path / "session.json").write_text(
            json.dumps({"id": path.name, "fps": 30, "cameras": [{"name": n} for n in names]})
        )
    return path


def compare_to_truth(est: list[CameraModel], truth: list[CameraModel]) -> dict[str, dict]:
    """Per camera: relative focal/principal-point errors, and centre (mm) / orientation (deg)
    errors after the similarity (Umeyama) alignment of the estimated centres onto the truth."""
    scale, rot, trans = umeyama(np.array([c.centre for c in est]), np.array([c.centre for c in truth]))
    out = {}
    for e, t in zip(est, truth, strict=True):
        out[e.name] = {
            "focal_rel": float(np.max(np.abs(np.diag(e.matrix)[:2] / np.diag(t.matrix)[:2] - 1))),
            "principal_rel": float(np.max(np.abs(e.matrix[:2, 2] / t.matrix[:2, 2] - 1))),
            "centre_mm": float(np.linalg.norm(scale * rot @ e.centre + trans - t.centre)),
            "orientation_deg": rotation_angle_deg(e.rotation_matrix @ rot.T, t.rotation_matrix),
        }
    return out
