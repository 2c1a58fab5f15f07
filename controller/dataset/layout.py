"""Where dataset artefacts live inside a session directory (the one home of these paths).

```
<session>/synced/<cam>.mp4, match.csv      synced outputs (`syncrig sync`): the frames everything uses;
                                           <cam>.pts = each frame's time, <cam>.map.csv = frame → match row
<session>/calibration/board.json           the ChArUco board spec the calibration was made with
<session>/calibration/detections/<cam>.npz board corners per camera per match row (detections.py)
<session>/calibration/calibration.toml     aniposelib schema ([cam_N] ..., [metadata] incl. the board)
<session>/calibration/Calib.toml           the same cameras in Pose2Sim's schema
<session>/calibration/report.json          reprojection errors, views used, solver figures
<session>/calibration/plots/               reprojection, coverage heat maps, 3D camera layout
<session>/pose2d/<cam>.npz                 2D keypoints (pose2d.py): frames × keypoints × (x px, y px,
                                           confidence), match row + capture time per frame, keypoint
                                           names, model + version; .<cam>.partial.npz while running
<session>/pose3d/points.npz                3D keypoints per match row (pose3d.py): mm, reprojection
                                           error, camera count, score, cameras used, row time
<session>/pose3d/report.json               triangulation quality per group and camera, outliers, and
                                           the sample-count summary (labelled samples per hour)
<session>/exports/<session>.trc|.csv|.nwb  TRC (OpenSim), anipose pose-3d CSV, NWB + ndx-pose
<session>/ground_truth.json                simulated charuco sessions: true cameras, board, trajectory
```
Keypoints: keypoints.py (MediaPipe Holistic's body 33, hands 2 × 21, face 478). Times are on the
session's shared clock (ns since T0), so every camera's frames and the 3D rows line up.
A motion session is usually calibrated by another (calibration) session: commands take
`--calibration FILE` and default to the session's own `calibration/calibration.toml`.
"""

from __future__ import annotations

from pathlib import Path

from syncrig_agent.contract.ids import validate_camera_name

CALIBRATION_DIR = "calibration"
POSE2D_DIR = "pose2d"
POSE3D_DIR = "pose3d"
EXPORTS_DIR = "exports"


def calibration_dir(session: Path) -> Path:
    return Path(session) / CALIBRATION_DIR


def board_file(session: Path) -> Path:
    return calibration_dir(session) / "board.json"


def detections_file(session: Path, camera: str) -> Path:
    return calibration_dir(session) / "detections" / f"{validate_camera_name(camera)}.npz"


def calibration_toml(session: Path) -> Path:
    return calibration_dir(session) / "calibration.toml"


def pose2sim_toml(session: Path) -> Path:
    return calibration_dir(session) / "Calib.toml"


def calibration_report(session: Path) -> Path:
    return calibration_dir(session) / "report.json"


def calibration_plots(session: Path) -> Path:
    return calibration_dir(session) / "plots"


def pose2d_file(session: Path, camera: str) -> Path:
    return Path(session) / POSE2D_DIR / f"{validate_camera_name(camera)}.npz"


def pose3d_file(session: Path) -> Path:
    return Path(session) / POSE3D_DIR / "points.npz"


def pose3d_report(session: Path) -> Path:
    return Path(session) / POSE3D_DIR / "report.json"


def exports_dir(session: Path) -> Path:
    return Path(session) / EXPORTS_DIR


def ground_truth_file(session: Path) -> Path:
    """A simulated session's ground truth (syncrig_agent.sim.charuco_sim.scene_description)."""
    return Path(session) / "ground_truth.json"
