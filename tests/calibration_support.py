"""Synthetic calibration sessions for the tests: detections of a known rig written where
`syncrig calibrate` finds them (synced/match.csv header, calibration/board.json, detections/)."""

from __future__ import annotations

import json
from pathlib import Path

from controller.dataset.calibrate.synthetic import SyntheticCalibration, synthetic_calibration
from controller.rig.config import CameraEntry, RigConfig, save_config
from controller.runtime import ControllerRuntime
from syncrig_agent.contract.layout import SessionLayout
from syncrig_agent.contract.protocol.auth import write_secret


def write_session(path: Path, syn: SyntheticCalibration, manifest: bool = False) -> Path:
    """A session directory holding only what calibration reads (plus session.json if asked)."""
    (path / "synced").mkdir(parents=True, exist_ok=True)
    names = [c.name for c in syn.cameras]
    (path / "synced" / "match.csv").write_text(",".join(names) + "\n" + ",".join("0" for _ in names) + "\n")
    syn.spec.save(SessionLayout(path).board_file)
    for name, det in syn.detections.items():
        det.save(SessionLayout(path).detections_file(name))
    if manifest:
        (path / "session.json").write_text(
            json.dumps({"id": path.name, "fps": 30, "cameras": [{"name": n} for n in names]})
        )
    return path


def rigless_runtime(tmp_path: Path, session_id: str = "calsession") -> ControllerRuntime:
    """A controller with no rig behind it (calibration needs no cameras) and one synthetic
    2-camera calibration session with stored detections."""
    write_secret(tmp_path / "secret")
    config = RigConfig(
        cameras=[CameraEntry("cam0", "127.0.0.1", "server")],
        control_port=9,  # nothing listens: the poller just reports the rig offline
        sessions_root=str(tmp_path / "sessions"),
        secret_file=str(tmp_path / "secret"),
    )
    save_config(tmp_path / "rig.json", config)
    runtime = ControllerRuntime(tmp_path / "rig.json", poll_interval_s=5.0)
    syn = synthetic_calibration(cameras=2, rows=40, noise_px=0.4, seed=6)
    write_session(tmp_path / "sessions" / session_id, syn, manifest=True)
    return runtime
