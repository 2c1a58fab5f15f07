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

    def board_in_view(
        self,
        camera: CameraModel,
        true_ns: int,
        margin_px: float = 8.0,
        occluder: tuple[int, int, int, int] | None = None,
    ) -> bool:
        """Whether `camera` sees the whole printed face at `true_ns`: every ChArUco corner in
        front of it, at least `margin_px` inside its image and outside `occluder` (a pixel box
        (x0, y0, x1, y1) drawn over the scene, such as the simulator's stamps), the printed side
        towards it.

        What a detector can be held to: the simulated trajectory also shows the board cut by the
        image border, edge-on or from behind, and which of those a recording catches depends on
        its start time."""
        rot, trans = self.board_pose(true_ns)
        if float(rot[:, 2] @ (trans - camera.centre)) <= 0:
            return False  # the camera looks at the board's unprinted back (or edge-on)
        corners = self.board.corner_points_mm() @ rot.T + trans
        depth = (corners @ camera.rotation_matrix.T + camera.translation)[:, 2]
        if np.any(depth <= 1.0):
            return False
        x, y = camera.project(corners).reshape(-1, 2).T
        width, height = camera.size
        m = margin_px
        if not np.all((x >= m) & (x <= width - m) & (y >= m) & (y <= height - m)):
            return False
        if occluder is None:
            return True
        x0, y0, x1, y1 = occluder
        return not np.any((x > x0 - m) & (x < x1 + m) & (y > y0 - m) & (y < y1 + m))


def load_ground_truth(path: Path) -> GroundTruth:
    """From a session directory (its ground_truth.json) or the file itself."""
    path = Path(path)
    if path.is_dir():
        path = SessionLayout(path).ground_truth_file
    try:
        return ground_truth_from_description(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"cannot read ground truth {path}: {exc}") from None


def ground_truth_from_description(data: dict) -> GroundTruth:
    """From the scene description itself (`charuco_sim.scene_description`, what the file holds);
    KeyError, TypeError or ValueError when a field is missing or malformed."""
    cameras = CameraSet(
        CameraModel(name, cam["size"], cam["matrix"], cam["distortions"], cam["rotation"], cam["translation"])
        for name, cam in data["cameras"].items()
    )
    return GroundTruth(cameras, BoardSpec.from_dict(data["board"]), dict(data["trajectory"]), data)
