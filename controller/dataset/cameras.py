"""Calibrated cameras: `CameraModel` (one camera) and `CameraSet` (the rig's calibrated cameras,
aniposelib's `CameraGroup` in our terms): load/save `calibration.toml` (aniposelib's schema) and
Pose2Sim's `Calib.toml`, `project` world points, `triangulate` keypoints, names, subsets. The one
home of the camera model that calibration writes and triangulation, pose and exports read.

Conventions (aniposelib's, and OpenCV's): a world point X maps to camera coordinates
`R·X + t` (R from the Rodrigues vector `rotation`, t = `translation`, in board units: mm), then to
pixels through `matrix` and `distortions` (OpenCV's pinhole model k1 k2 p1 p2 k3, or its fisheye
model k1..k4 when `fisheye = true`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.dataset.pose.triangulate import (
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_RAY_ANGLE_DEG,
    DEFAULT_OUTLIER_PX,
    Triangulation,
    triangulate_robust,
)
from syncrig_agent.contract.formats.atomic import write_text_atomic
from syncrig_agent.sim.charuco_sim import rodrigues

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
        return rodrigues(self.rotation)

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


class CameraSet:
    """The rig's calibrated cameras in a fixed order (calibration's, or a subset's), with the
    calibration's metadata. Arrays over cameras use that order: `project` gives (..., C, 2),
    `triangulate` takes (..., C, 2), so one's output is the other's input."""

    def __init__(self, cameras: Iterable[CameraModel], metadata: dict | None = None) -> None:
        self.cameras = list(cameras)
        self.metadata = dict(metadata or {})
        names = self.names
        if len(set(names)) != len(names):
            raise CalibrationFileError(f"camera names repeat: {list(names)}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(cam.name for cam in self.cameras)

    def __len__(self) -> int:
        return len(self.cameras)

    def __iter__(self) -> Iterator[CameraModel]:
        return iter(self.cameras)

    def __getitem__(self, key: int | str) -> CameraModel:
        """A camera by position or by name."""
        if isinstance(key, str):
            cam = self.get(key)
            if cam is not None:
                return cam
            raise KeyError(f"camera {key!r} is not in the calibration (it has {', '.join(self.names)})")
        return self.cameras[key]

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def get(self, name: str) -> CameraModel | None:
        """The camera of that name, or None where the calibration lacks it."""
        return next((cam for cam in self.cameras if cam.name == name), None)

    def subset(self, names: Iterable[str]) -> CameraSet:
        """These cameras, in the order given (aniposelib's subset_cameras_names)."""
        return CameraSet([self[name] for name in names], self.metadata)

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) → pixels (..., C, 2) in every camera, distortion included."""
        return np.stack([cam.project(points) for cam in self.cameras], axis=-2)

    def normalise(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels (..., C, 2) → undistorted normalised coordinates (..., C, 2); NaN stays NaN."""
        px = np.asarray(pixels, dtype=np.float64)
        out = np.full(px.shape, np.nan)
        for i, cam in enumerate(self.cameras):
            have = np.isfinite(px[..., i, :]).all(axis=-1)
            out[..., i, :][have] = cam.normalise(px[..., i, :][have])
        return out

    def triangulate(
        self,
        pixels: np.ndarray,
        confidence: np.ndarray | None = None,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        outlier_px: float = DEFAULT_OUTLIER_PX,
        min_ray_angle_deg: float = DEFAULT_MIN_RAY_ANGLE_DEG,
    ) -> Triangulation:
        """Keypoints in pixels (..., C, 2) (NaN: not seen), confidence (..., C) → 3D points (mm)
        with outlier rejection (pose/triangulate.py's triangulate_robust)."""
        return triangulate_robust(
            self.cameras,
            self.normalise(pixels),
            confidence,
            min_confidence=min_confidence,
            outlier_px=outlier_px,
            min_ray_angle_deg=min_ray_angle_deg,
        )

    # -- files ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path) -> CameraSet:
        """From aniposelib's `calibration.toml` ([cam_N] tables in camera order, [metadata])."""
        data = _read_toml(path)
        cameras = [
            CameraModel.from_toml_dict(table, f"{path} [{key}]")
            for key, table in data.items()
            if key != "metadata" and isinstance(table, dict)
        ]
        return cls._checked(cameras, dict(data.get("metadata", {})), path)

    def save(self, path: Path, metadata: dict | None = None) -> None:
        """Write aniposelib's `calibration.toml` atomically; `metadata` replaces the set's own."""
        tables = {f"cam_{i}": cam.as_toml_dict() for i, cam in enumerate(self.cameras)}
        # SyncRig works in mm; saying so makes the file self-describing for other readers (import).
        tables["metadata"] = {"units": "mm", **(self.metadata if metadata is None else metadata)}
        _write_toml(path, tables)

    @classmethod
    def load_pose2sim(cls, path: Path) -> CameraSet:
        """From Pose2Sim's `Calib.toml` (one table per camera, translation in metres)."""
        data = _read_toml(path)
        cameras = []
        for key, table in data.items():
            if key == "metadata" or not isinstance(table, dict):
                continue
            metres = table.get("translation", [0.0, 0.0, 0.0])
            try:
                table = {**table, "translation": np.asarray(metres, dtype=np.float64) * 1000.0}
            except (TypeError, ValueError) as exc:
                raise CalibrationFileError(f"{path} [{key}]: bad camera entry ({exc})") from None
            cameras.append(CameraModel.from_toml_dict(table, f"{path} [{key}]"))
        return cls._checked(cameras, dict(data.get("metadata", {})), path)

    def save_pose2sim(self, path: Path, error_px: float) -> None:
        """Write Pose2Sim's `Calib.toml` atomically (`error_px`: the calibration's mean error)."""
        _write_toml(path, self.pose2sim_tables(error_px))

    def pose2sim_tables(self, error_px: float) -> dict[str, dict]:
        """Pose2Sim's Calib.toml: one table per camera named after it; size as floats; 4 distortion
        terms (k1 k2 p1 p2 pinhole, k1..k4 fisheye; a fitted k3 is kept as a 5th term, which the
        OpenCV calls Pose2Sim hands the list to read); Rodrigues rotation; translation in metres."""
        tables = {}
        for cam in self.cameras:
            keep = 5 if (not cam.fisheye and len(cam.distortions) > 4 and cam.distortions[4] != 0) else 4
            tables[cam.name] = {
                "name": cam.name,
                "size": [float(cam.size[0]), float(cam.size[1])],
                "matrix": cam.matrix.tolist(),
                "distortions": [float(d) for d in cam.distortions[:keep]],
                "rotation": cam.rotation.tolist(),
                "translation": (cam.translation / 1000.0).tolist(),
                "fisheye": bool(cam.fisheye),
            }
        tables["metadata"] = {"adjusted": True, "error": float(error_px)}
        return tables

    @classmethod
    def _checked(cls, cameras: list[CameraModel], metadata: dict, path: Path) -> CameraSet:
        if not cameras:
            raise CalibrationFileError(f"{path}: no cameras")
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise CalibrationFileError(f"{path}: camera names repeat: {names}")
        return cls(cameras, metadata)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CalibrationFileError(f"cannot read calibration {path}: {exc}") from None


def _write_toml(path: Path, tables: dict[str, dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, dumps_toml(tables))


def save_calibration_toml(path: Path, cameras: Iterable[CameraModel], metadata: dict | None = None) -> None:
    """`CameraSet(cameras).save(path, metadata)`: for callers holding a plain list of models."""
    CameraSet(cameras).save(path, metadata)


def load_calibration_toml(path: Path) -> tuple[CameraSet, dict]:
    """`CameraSet.load(path)` and its metadata, for callers that unpack both at once."""
    cameras = CameraSet.load(path)
    return cameras, cameras.metadata
