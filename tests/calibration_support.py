"""Synthetic calibration sessions for the tests: detections of a known rig written where
`syncrig calibrate` finds them (synced/match.csv header, calibration/board.json, detections/)."""

from __future__ import annotations

import json
from pathlib import Path

from controller.dataset import layout
from controller.dataset.calibrate.synthetic import SyntheticCalibration


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
