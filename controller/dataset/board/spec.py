"""The ChArUco board spec: the one description of a calibration board, stored with every
calibration so that footage of a different board is detected instead of silently mis-fitted."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from syncrig_agent.contract.formats.atomic import write_json_atomic

# The dictionaries a user can name (OpenCV's predefined ArUco dictionaries).
DICTIONARIES = (
    "DICT_4X4_50", "DICT_4X4_100", "DICT_4X4_250", "DICT_4X4_1000",
    "DICT_5X5_50", "DICT_5X5_100", "DICT_5X5_250", "DICT_5X5_1000",
    "DICT_6X6_50", "DICT_6X6_100", "DICT_6X6_250", "DICT_6X6_1000",
    "DICT_7X7_50", "DICT_7X7_100", "DICT_7X7_250", "DICT_7X7_1000",
    "DICT_ARUCO_ORIGINAL",
)  # fmt: skip


class BoardSpecError(ValueError):
    pass


@dataclass(frozen=True)
class BoardSpec:
    # Defaults: the demo scene's board (syncrig_agent.sim.charuco_sim.DEFAULT_BOARD), what
    # `syncrig board` prints and the calibration page offers when a session stores none.
    squares_x: int = 7  # squares along the board's x axis (columns)
    squares_y: int = 5  # squares along y (rows)
    square_mm: float = 40.0
    marker_mm: float = 30.0
    dictionary: str = "DICT_4X4_50"
    # OpenCV < 4.6 boards (and boards printed from them) start with a marker in the top-left
    # square only when the row count is even; `legacy_pattern` reproduces those boards.
    legacy_pattern: bool = False

    def validate(self) -> BoardSpec:
        if not (isinstance(self.squares_x, int) and isinstance(self.squares_y, int)):
            raise BoardSpecError("squares_x and squares_y must be integers")
        if self.squares_x < 3 or self.squares_y < 3 or self.squares_x * self.squares_y > 10_000:
            size = f"{self.squares_x}x{self.squares_y}"
            raise BoardSpecError(f"board needs 3..100 squares per side, got {size}")
        for name in ("square_mm", "marker_mm"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise BoardSpecError(f"{name} must be a positive number of millimetres, got {value!r}")
        if self.marker_mm >= self.square_mm:
            raise BoardSpecError(
                f"marker_mm ({self.marker_mm}) must be smaller than square_mm ({self.square_mm})"
            )
        if self.dictionary not in DICTIONARIES:
            known = ", ".join(DICTIONARIES)
            raise BoardSpecError(f"unknown ArUco dictionary {self.dictionary!r} (one of {known})")
        capacity = int(self.dictionary.rsplit("_", 1)[1]) if self.dictionary[-1].isdigit() else 1024
        if self.marker_count > capacity:
            raise BoardSpecError(
                f"a {self.squares_x}x{self.squares_y} board needs {self.marker_count} markers; "
                f"{self.dictionary} has {capacity}"
            )
        return self

    @property
    def marker_count(self) -> int:
        return (self.squares_x * self.squares_y) // 2

    @property
    def corner_count(self) -> int:
        return (self.squares_x - 1) * (self.squares_y - 1)

    def corner_points_mm(self) -> np.ndarray:
        """(corner_count, 3) board-frame coordinates of the ChArUco corners, OpenCV's id order:
        row-major over the inner corners, corner id i at ((i % (sx-1) + 1)·s, (i // (sx-1) + 1)·s, 0)."""
        ids = np.arange(self.corner_count)
        cols = self.squares_x - 1
        x = (ids % cols + 1) * self.square_mm
        y = (ids // cols + 1) * self.square_mm
        return np.stack([x, y, np.zeros(len(ids))], axis=1).astype(np.float64)

    def cv_board(self):
        """The OpenCV CharucoBoard for this spec (units: mm)."""
        import cv2

        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        board = cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), float(self.square_mm), float(self.marker_mm), dictionary
        )
        board.setLegacyPattern(bool(self.legacy_pattern))
        return board

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BoardSpec:
        if not isinstance(data, dict):
            raise BoardSpecError("board spec must be a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise BoardSpecError(f"unknown board spec fields: {', '.join(sorted(unknown))}")
        return cls(**data).validate()

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, self.as_dict())

    @classmethod
    def load(cls, path: Path) -> BoardSpec:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise BoardSpecError(f"cannot read board spec {path}: {exc}") from None
        return cls.from_dict(data)
