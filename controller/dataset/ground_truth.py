"""A simulated session's ground truth (`ground_truth.json`, written by the simulated rig from
`syncrig_agent.sim.charuco_sim.scene_description`) as the dataset's own types: what calibration
benchmarks and tests compare a calibration with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.dataset.board.spec import BoardSpec
from controller.dataset.cameras import CameraModel, CameraSet
from syncrig_agent.contract.layout import SessionLayout
from syncrig_agent.sim.charuco_sim import board_pose


@dataclass
class GroundTruth:
    cameras: CameraSet  # in the rig's camera order
    board: BoardSpec
    trajectory: dict  # charuco_sim.board_pose's parameters
    description: dict  # the whole file

    def board_pose(self, true_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """(R, t): board frame → world (mm) at a true capture time (Unix ns)."""
        return board_pose(self.trajectory, true_ns)

    def corners_world(self, true_ns: int) -> np.ndarray:
        """(corner_count, 3) world positions of the board's ChArUco corners (BoardSpec id order)."""
        rot, trans = self.board_pose(true_ns)
        return self.board.corner_points_mm() @ rot.T + trans


def load_ground_truth(path: Path) -> GroundTruth:
    """From a session directory (its ground_truth.json) or the file itself."""
    path = Path(path)
    if path.is_dir():
        path = SessionLayout(path).ground_truth_file
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        cameras = CameraSet(
            CameraModel(
                name, cam["size"], cam["matrix"], cam["distortions"], cam["rotation"], cam["translation"]
            )
            for name, cam in data["cameras"].items()
        )
        return GroundTruth(cameras, BoardSpec.from_dict(data["board"]), dict(data["trajectory"]), data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read ground truth {path}: {exc}") from None
