"""Calibrated camera models and `calibration.toml` (aniposelib's schema): the one home of the
camera model that calibration writes and triangulation, pose and exports read.

Conventions (aniposelib's, and OpenCV's): a world point X maps to camera coordinates
`R·X + t` (R from the Rodrigues vector `rotation`, t = `translation`, in board units: mm), then to
pixels through `matrix` and `distortions` (OpenCV's pinhole model k1 k2 p1 p2 k3, or its fisheye
model k1..k4 when `fisheye = true`).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from syncrig_agent.contract.formats.atomic import write_text_atomic

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib


class CalibrationFileError(ValueError):
    pass


@dataclass
class CameraModel:
    name: str
    size: tuple[int, int]  # (width, height) pixels
    matrix: np.ndarray  # (3, 3)
    distortions: np.ndarray  # (5,) pinhole or (4,) fisheye
    rotation: np.ndarray = field(default_factory=lambda: np.zeros(3))  # Rodrigues, world → camera
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))  # mm
    fisheye: bool = False

    def __post_init__(self) -> None:
        self.matrix = np.asarray(self.matrix, dtype=np.float64).reshape(3, 3)
        self.distortions = np.asarray(self.distortions, dtype=np.float64).reshape(-1)
        self.rotation = np.asarray(self.rotation, dtype=np.float64).reshape(3)
        self.translation = np.asarray(self.translation, dtype=np.float64).reshape(3)
        self.size = (int(self.size[0]), int(self.size[1]))

    @property
    def rotation_matrix(self) -> np.ndarray:
        import cv2

        return cv2.Rodrigues(self.rotation)[0]

    @property
    def centre(self) -> np.ndarray:
        """The camera's optical centre in world coordinates (mm)."""
        return -self.rotation_matrix.T @ self.translation

    def extrinsic_matrix(self) -> np.ndarray:
        """(3, 4) [R | t]: world → camera; with normalised image points this is the DLT matrix."""
        return np.hstack([self.rotation_matrix, self.translation[:, None]])

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) → pixels (..., 2), distortion included."""
        import cv2

        pts = np.asarray(points, dtype=np.float64)
        flat = pts.reshape(-1, 1, 3)
        if self.fisheye:
            out, _ = cv2.fisheye.projectPoints(
                flat, self.rotation, self.translation, self.matrix, self.distortions
            )
        else:
            out, _ = cv2.projectPoints(flat, self.rotation, self.translation, self.matrix, self.distortions)
        return out.reshape(*pts.shape[:-1], 2)

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) → undistorted normalised image coordinates (..., 2)."""
        import cv2

        px = np.asarray(pixels, dtype=np.float64)
        flat = px.reshape(-1, 1, 2)
        if self.fisheye:
            out = cv2.fisheye.undistortPoints(flat, self.matrix, self.distortions)
        else:
            out = cv2.undistortPoints(flat, self.matrix, self.distortions)
        return out.reshape(px.shape)

    def as_toml_dict(self) -> dict:
        data = {
            "name": self.name,
            "size": [self.size[0], self.size[1]],
            "matrix": self.matrix.tolist(),
            "distortions": self.distortions.tolist(),
            "rotation": self.rotation.tolist(),
            "translation": self.translation.tolist(),
        }
        if self.fisheye:
            data["fisheye"] = True
        return data

    @classmethod
    def from_toml_dict(cls, data: dict, where: str) -> CameraModel:
        try:
            return cls(
                name=str(data["name"]),
                size=tuple(data["size"]),
                matrix=data["matrix"],
                distortions=data["distortions"],
                rotation=data.get("rotation", [0.0, 0.0, 0.0]),
                translation=data.get("translation", [0.0, 0.0, 0.0]),
                fisheye=bool(data.get("fisheye", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationFileError(f"{where}: bad camera entry ({exc})") from None


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CalibrationFileError(f"cannot write non-finite number {value} to TOML")
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, np.generic):
        return _toml_value(value.item())
    raise CalibrationFileError(f"cannot write {type(value).__name__} to TOML")


def dumps_toml(tables: dict[str, dict]) -> str:
    """TOML text for a dict of flat tables (values: numbers, strings, bools, nested lists); a
    nested dict becomes a sub-table `[table.key]`. Enough for calibration files, no dependency."""
    lines: list[str] = []

    def emit(name: str, table: dict) -> None:
        lines.append(f"[{name}]")
        subs = {k: v for k, v in table.items() if isinstance(v, dict)}
        for key, value in table.items():
            if not isinstance(value, dict):
                lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
        for key, value in subs.items():
            emit(f"{name}.{key}", value)

    for name, table in tables.items():
        emit(name, table)
    return "\n".join(lines)


def save_calibration_toml(path: Path, cameras: list[CameraModel], metadata: dict | None = None) -> None:
    """Write aniposelib's `calibration.toml` ([cam_N] per camera, then [metadata]) atomically."""
    tables = {f"cam_{i}": cam.as_toml_dict() for i, cam in enumerate(cameras)}
    tables["metadata"] = dict(metadata or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, dumps_toml(tables))


def load_calibration_toml(path: Path) -> tuple[list[CameraModel], dict]:
    """(cameras in file order, metadata) from an aniposelib-schema `calibration.toml`."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CalibrationFileError(f"cannot read calibration {path}: {exc}") from None
    cameras = [
        CameraModel.from_toml_dict(table, f"{path} [{key}]")
        for key, table in data.items()
        if key != "metadata" and isinstance(table, dict)
    ]
    if not cameras:
        raise CalibrationFileError(f"{path}: no cameras")
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise CalibrationFileError(f"{path}: camera names repeat: {names}")
    return cameras, dict(data.get("metadata", {}))
