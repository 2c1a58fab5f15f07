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
    # "charuco", or "checkerboard": plain black and white squares (OpenCV's, Pose2Sim's and
    # mocap-toolkit's intrinsics board), named by its inner corners (squares - 1 each way);
    # marker_mm, dictionary and legacy_pattern do not apply to it.
    type: str = "charuco"

    @classmethod
    def checkerboard(cls, inner_cols: int, inner_rows: int, square_mm: float) -> BoardSpec:
        """A checkerboard with inner_cols x inner_rows inner corners (as OpenCV counts them)."""
        return cls(inner_cols + 1, inner_rows + 1, square_mm, type="checkerboard").validate()

    @property
    def is_checkerboard(self) -> bool:
        return self.type == "checkerboard"

    @property
    def inner_corners(self) -> tuple[int, int]:
        """(columns, rows) of inner corners: OpenCV's `patternSize` for a checkerboard."""
        return self.squares_x - 1, self.squares_y - 1

    def describe(self) -> str:
        """'7x5 ChArUco board (40/30 mm, DICT_4X4_50)' or '7x4 inner-corner checkerboard (60 mm)'."""
        if self.is_checkerboard:
            cols, rows = self.inner_corners
            return f"{cols}x{rows} inner-corner checkerboard ({self.square_mm:g} mm squares)"
        legacy = ", legacy pattern" if self.legacy_pattern else ""
        return (
            f"{self.squares_x}x{self.squares_y} ChArUco board ({self.square_mm:g}/{self.marker_mm:g} mm, "
            f"{self.dictionary}{legacy})"
        )

    def validate(self) -> BoardSpec:
        if self.type not in ("charuco", "checkerboard"):
            raise BoardSpecError(f"board type must be 'charuco' or 'checkerboard', got {self.type!r}")
        if not (isinstance(self.squares_x, int) and isinstance(self.squares_y, int)):
            raise BoardSpecError("squares_x and squares_y must be integers")
        if self.squares_x < 3 or self.squares_y < 3 or self.squares_x * self.squares_y > 10_000:
            size = f"{self.squares_x}x{self.squares_y}"
            if self.is_checkerboard:
                inner = f"{self.squares_x - 1}x{self.squares_y - 1}"
                raise BoardSpecError(f"a checkerboard needs 2..99 inner corners per side, got {inner}")
            raise BoardSpecError(f"board needs 3..100 squares per side, got {size}")
        if self.is_checkerboard:
            if not (
                isinstance(self.square_mm, (int, float))
                and math.isfinite(self.square_mm)
                and self.square_mm > 0
            ):
                raise BoardSpecError(
                    f"square_mm must be a positive number of millimetres, got {self.square_mm!r}"
                )
            return self
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

        if self.is_checkerboard:
            raise BoardSpecError(f"a {self.describe()} has no ArUco markers: this step needs a ChArUco board")

        dictionary = cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, self.dictionary))
        board = cv2.aruco.CharucoBoard(
            (self.squares_x, self.squares_y), float(self.square_mm), float(self.marker_mm), dictionary
        )
        board.setLegacyPattern(bool(self.legacy_pattern))
        return board

    def as_dict(self) -> dict:
        """The spec's fields; `type` only for a checkerboard (a ChArUco spec reads as it always has,
        for the simulated scene and the files written before checkerboards)."""
        data = asdict(self)
        if not self.is_checkerboard:
            del data["type"]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> BoardSpec:
        if not isinstance(data, dict):
            raise BoardSpecError("board spec must be a JSON object")
        known = set(cls.__dataclass_fields__)
        if data.get("type") == "checkerboard" and "inner_corners" in data:
            data = dict(data)
            cols, rows = data.pop("inner_corners")  # the way checkerboards are named
            data.update(squares_x=int(cols) + 1, squares_y=int(rows) + 1)
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
