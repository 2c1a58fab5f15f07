"""Board detections of one camera: the hand-off from detection to calibration (one home).

Stored long-format in `calibration/detections/<cam>.npz` (SessionLayout.detections_file): one entry per
detected ChArUco corner — the match row (synced instant) it was seen in, its corner id (BoardSpec
id order) and its pixel position in the camera's full-resolution image — plus the image size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class CameraDetections:
    camera: str
    image_size: tuple[int, int]  # (width, height) in pixels
    row: np.ndarray  # (M,) int64: match row of each detected corner
    corner_id: np.ndarray  # (M,) int32
    xy: np.ndarray  # (M, 2) float64 pixels

    def __post_init__(self) -> None:
        self.row = np.asarray(self.row, dtype=np.int64).reshape(-1)
        self.corner_id = np.asarray(self.corner_id, dtype=np.int32).reshape(-1)
        self.xy = np.asarray(self.xy, dtype=np.float64).reshape(-1, 2)
        if not (len(self.row) == len(self.corner_id) == len(self.xy)):
            raise ValueError("row, corner_id and xy must have one entry per detected corner")

    def rows(self) -> np.ndarray:
        """Match rows in which this camera saw the board (sorted, unique)."""
        return np.unique(self.row)

    def view(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """(corner ids, pixel positions) seen in one match row."""
        sel = self.row == row
        return self.corner_id[sel], self.xy[sel]

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez_compressed(
            tmp,
            camera=np.array(self.camera),
            image_size=np.array(self.image_size, dtype=np.int64),
            row=self.row,
            corner_id=self.corner_id,
            xy=self.xy,
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> CameraDetections:
        with np.load(Path(path), allow_pickle=False) as data:
            return cls(
                camera=str(data["camera"]),
                image_size=(int(data["image_size"][0]), int(data["image_size"][1])),
                row=data["row"],
                corner_id=data["corner_id"],
                xy=data["xy"],
            )
