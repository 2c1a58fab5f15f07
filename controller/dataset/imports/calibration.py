"""Calibrations from other tools into SyncRig's `calibration.toml` (aniposelib schema, millimetres).

Formats (`detect_format` tells them apart by content and name):
- `syncrig`: SyncRig's own calibration.toml ([metadata] units = "mm").
- `aniposelib`: [cam_N] tables (name, size, matrix, distortions, Rodrigues rotation, translation in
  the board's units, which the file does not state: `--units` is required).
- `pose2sim`: Pose2Sim's Calib.toml (one table per camera, named after it; translation in metres).
- `qualisys`: a Qualisys `.qca.txt`, converted as Pose2Sim's calibration.py converts it: pixel
  values are sensor units / 64, the principal point counts from the video field of view's corner,
  the image size is the field of view (`right - left + 1`, so 1088 for a 1080-wide video with
  encoder padding), the transform is the camera's pose in the world (mm), and the camera frame is
  turned by π about x (Qualisys looks along -z). Cameras with a non-zero `viewrotation` are refused.
- `opencv-yaml`: OpenCV FileStorage `intri.yml` + `extri.yml` (EasyMocap): `names`, `K_<cam>`,
  `dist_<cam>`, optional `H_<cam>`/`W_<cam>`; `R_<cam>` (Rodrigues) or `Rot_<cam>`, `T_<cam>`
  (units not stated: `--units` required). Either file may be given; its sibling is found by name.
- `caliscope`: Caliscope's config.toml ([cam_N] with `port`, a 3x3 `rotation`, translation in units
  it does not state: `--units` required); cameras are named `port_<N>` like its recordings.

An image size that differs from the video's by encoder padding (at most PADDING_PX per side, the
principal point inside the video) is accepted with a note; the intrinsics stay as they are, because
encoders pad at the right and bottom. Anything else is refused with what to do.
"""

from __future__ import annotations

import math
import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.dataset.cameras import CalibrationFileError, CameraModel, CameraSet

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

UNITS_TO_MM = {"mm": 1.0, "m": 1000.0}
FORMATS = ("syncrig", "aniposelib", "pose2sim", "qualisys", "opencv-yaml", "caliscope")
PADDING_PX = 16  # the most an encoder pads a dimension (to a multiple of 16 for H.264 macroblocks)
UNKNOWN_SIZE = (0, 0)
QUALISYS_DISTORTION_KEYS = (
    "radialDistortion1",
    "radialDistortion2",
    "tangentalDistortion1",
    "tangentalDistortion2",
)  # a format that does not store the image size (EasyMocap without H_/W_)


class CalibrationImportError(CalibrationFileError):
    """A calibration that cannot be brought in; the message names the file, field and what to do."""


@dataclass
class ImportedCalibration:
    cameras: CameraSet  # translations in mm
    format: str
    source: Path
    notes: list[str] = field(default_factory=list)

    def metadata(self) -> dict:
        """[metadata] of the calibration.toml written from it."""
        return {
            "units": "mm",
            "software": f"syncrig import ({self.format})",
            "imported_from": str(self.source),
            "format": self.format,
            "notes": list(self.notes),
        }


def detect_format(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".qca.txt") or name.endswith(".qca"):
        return "qualisys"
    if path.suffix.lower() in (".yml", ".yaml"):
        return "opencv-yaml"
    data = _read_toml(path)
    cameras = {k: v for k, v in data.items() if isinstance(v, dict) and "matrix" in v}
    if not cameras:
        raise CalibrationImportError(
            f"{path}: no camera tables with a `matrix` in it; expected one of {', '.join(FORMATS)}"
        )
    if all("port" in v for v in cameras.values()):
        return "caliscope"
    if str(data.get("metadata", {}).get("units", "")) in UNITS_TO_MM:
        return "syncrig"
    # Pose2Sim names its files Calib*.toml and its tables after the cameras; aniposelib writes
    # calibration.toml with [cam_N] tables.
    if re.match(r"calib([_.\-]|$)", name) or not all(_is_cam_n(k) for k in cameras):
        return "pose2sim"
    return "aniposelib"


def _is_cam_n(key: str) -> bool:
    return key.startswith("cam_") and key[4:].isdigit()


def read_calibration(path: Path | str, units: str | None = None) -> ImportedCalibration:
    """Any supported calibration as cameras in mm. `units` (mm | m) is required where the format
    does not state them, and refused where it contradicts what the file states."""
    path = Path(path)
    if not path.is_file():
        raise CalibrationImportError(f"{path}: no such calibration file")
    if units is not None and units not in UNITS_TO_MM:
        raise CalibrationImportError(f"units must be one of {', '.join(UNITS_TO_MM)}, got {units!r}")
    fmt = detect_format(path)
    stated = {"syncrig": None, "pose2sim": "m", "qualisys": "mm"}
    if fmt == "syncrig":
        stated["syncrig"] = str(_read_toml(path)["metadata"]["units"])
    if fmt in stated:
        if units is not None and units != stated[fmt]:
            raise CalibrationImportError(
                f"{path}: a {fmt} calibration states its units ({stated[fmt]}); --units {units} contradicts "
                "it (leave --units out)"
            )
        units = stated[fmt]
    elif units is None:
        raise CalibrationImportError(
            f"{path}: a {fmt} calibration does not say which unit its translations are in; give "
            "--units mm or --units m (the unit the calibration board's square size was given in)"
        )
    reader = {
        "syncrig": _read_aniposelib,
        "aniposelib": _read_aniposelib,
        "pose2sim": _read_aniposelib,
        "qualisys": _read_qualisys,
        "opencv-yaml": _read_opencv_yaml,
        "caliscope": _read_caliscope,
    }[fmt]
    cameras, notes = reader(path)
    scale = UNITS_TO_MM[units]
    for cam in cameras:
        cam.translation = cam.translation * scale
    if scale != 1.0:
        notes.append(f"translations converted from {units} to mm")
    return ImportedCalibration(CameraSet._checked(cameras, {}, path), fmt, path, notes)


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CalibrationImportError(f"cannot read calibration {path}: {exc}") from None


def _read_aniposelib(path: Path) -> tuple[list[CameraModel], list[str]]:
    """aniposelib's schema, which SyncRig and Pose2Sim share (units converted by the caller)."""
    data = _read_toml(path)
    cameras = []
    for key, table in data.items():
        if key == "metadata" or not isinstance(table, dict) or "matrix" not in table:
            continue  # [metadata], and tables other tools add beside the cameras
        cameras.append(CameraModel.from_toml_dict({"name": key, **table}, f"{path} [{key}]"))
    return cameras, []


def _read_caliscope(path: Path) -> tuple[list[CameraModel], list[str]]:
    data = _read_toml(path)
    cameras = []
    for key, table in data.items():
        if not (isinstance(table, dict) and "port" in table and "matrix" in table):
            continue
        where = f"{path} [{key}]"
        if int(table.get("rotation_count", 0)) % 4 != 0:
            raise CalibrationImportError(
                f"{where}: rotation_count = {table['rotation_count']} (Caliscope turns this camera's "
                "frames); only unrotated cameras can be imported: set the rotation to 0 in Caliscope and "
                "calibrate again"
            )
        if "rotation" not in table or "translation" not in table:
            raise CalibrationImportError(
                f"{where}: no extrinsics (rotation, translation): calibrate them first"
            )
        try:
            rotation = _rodrigues_of(np.asarray(table["rotation"], dtype=np.float64).reshape(3, 3))
        except ValueError as exc:
            raise CalibrationImportError(f"{where}: rotation is not a 3x3 matrix ({exc})") from None
        entry = {**table, "name": f"port_{int(table['port'])}", "rotation": rotation}
        cameras.append(CameraModel.from_toml_dict(entry, where))
    return cameras, ["Caliscope cameras named port_<N> after their port, like its recordings"]


def _rodrigues_of(matrix: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.Rodrigues(matrix)[0].reshape(3)


def _read_qualisys(path: Path) -> tuple[list[CameraModel], list[str]]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise CalibrationImportError(f"cannot read Qualisys calibration {path}: {exc}") from None
    cameras = []
    flip_x = np.diag([1.0, -1.0, -1.0])  # Pose2Sim's rotate_cam(ang_x=π): Qualisys looks along -z
    for tag in root.findall("cameras/camera"):
        name = tag.get("serial", "")
        where = f"{path} camera {name!r}"
        if not any(m in tag.get("model", "").lower() for m in ("video", "none")):
            continue  # marker-only cameras: Pose2Sim keeps video cameras only
        if float(tag.get("viewrotation", "0") or 0) % 360 != 0:
            raise CalibrationImportError(
                f"{where}: viewrotation = {tag.get('viewrotation')}; rotated Qualisys cameras are not "
                "supported: export the calibration with the camera unrotated"
            )
        try:
            fov = tag.find("fov_video").attrib
            intr = tag.find("intrinsic").attrib
            tr = tag.find("transform").attrib
            left, top = float(fov["left"]), float(fov["top"])
            size = (round(float(fov["right"]) - left + 1), round(float(fov["bottom"]) - top + 1))
            fu, fv = float(intr["focalLengthU"]) / 64, float(intr["focalLengthV"]) / 64
            cu, cv = float(intr["centerPointU"]) / 64 - left, float(intr["centerPointV"]) / 64 - top
            dist = [float(intr[k]) / 64 for k in QUALISYS_DISTORTION_KEYS]
            pose = np.array([[float(tr[f"r{i}{j}"]) for j in (1, 2, 3)] for i in (1, 2, 3)])
            centre = np.array([float(tr["x"]), float(tr["y"]), float(tr["z"])])  # mm
        except (AttributeError, KeyError, ValueError) as exc:
            raise CalibrationImportError(f"{where}: missing or bad field ({exc})") from None
        # Pose2Sim reads the matrix by columns (the camera's orientation in the world) and inverts
        # the pose (world_to_camera_persp): world → camera is the matrix as written, t = -R·centre.
        world_to_cam = pose
        rotation = flip_x @ world_to_cam
        translation = flip_x @ (-world_to_cam @ centre)
        matrix = [[fu, 0.0, cu], [0.0, fv, cv], [0.0, 0.0, 1.0]]
        cameras.append(CameraModel(name, size, matrix, dist, _rodrigues_of(rotation), translation))
    cameras.sort(key=lambda c: _natural_key(c.name))
    return cameras, ["Qualisys .qca.txt converted as Pose2Sim does (pixel units = sensor units / 64)"]


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _read_opencv_yaml(path: Path) -> tuple[list[CameraModel], list[str]]:
    import cv2

    lower = path.name.lower()
    swap = ("intri", "extri") if "intri" in lower else ("extri", "intri")
    if swap[0] not in lower:
        raise CalibrationImportError(
            f"{path}: an OpenCV YAML calibration is a pair named intri.yml and extri.yml (EasyMocap)"
        )
    start = lower.index(swap[0])
    sibling = path.with_name(path.name[:start] + swap[1] + path.name[start + 5 :])
    intri, extri = (path, sibling) if swap[0] == "intri" else (sibling, path)
    for f in (intri, extri):
        if not f.is_file():
            raise CalibrationImportError(
                f"{path}: its pair {f} is missing (intrinsics and extrinsics both needed)"
            )
    notes: list[str] = []
    fs_i = cv2.FileStorage(str(intri), cv2.FILE_STORAGE_READ)
    fs_e = cv2.FileStorage(str(extri), cv2.FILE_STORAGE_READ)
    try:
        names_node = fs_i.getNode("names")
        if names_node.empty():
            raise CalibrationImportError(f"{intri}: no `names` list")
        names = [names_node.at(i).string() for i in range(names_node.size())]
        cameras = []
        for name in names:
            k, d = fs_i.getNode(f"K_{name}").mat(), fs_i.getNode(f"dist_{name}").mat()
            r_node, rot_node, t = (
                fs_e.getNode(f"R_{name}"),
                fs_e.getNode(f"Rot_{name}"),
                fs_e.getNode(f"T_{name}").mat(),
            )
            if k is None or d is None:
                raise CalibrationImportError(f"{intri}: K_{name} or dist_{name} missing")
            if t is None or (r_node.empty() and rot_node.empty()):
                raise CalibrationImportError(f"{extri}: T_{name} or R_{name}/Rot_{name} missing")
            rotation = r_node.mat().reshape(3) if not r_node.empty() else _rodrigues_of(rot_node.mat())
            h, w = fs_i.getNode(f"H_{name}"), fs_i.getNode(f"W_{name}")
            size = (int(w.real()), int(h.real())) if not (h.empty() or w.empty()) else UNKNOWN_SIZE
            dist = np.asarray(d, dtype=np.float64).reshape(-1)[:5]
            cameras.append(CameraModel(name, size, k, dist, rotation, np.asarray(t).reshape(3)))
            if size == UNKNOWN_SIZE:
                notes.append(
                    f"{name}: no image size in {intri.name} (H_{name}, W_{name}); the video's is used"
                )
    finally:
        fs_i.release()
        fs_e.release()
    return cameras, notes


def fit_to_images(calibration: ImportedCalibration, sizes: dict[str, tuple[int, int]], where: str) -> None:
    """Check (and where it is only encoder padding, adapt) every camera's image size against the
    footage's `sizes` {camera: (width, height)}; refuses naming the camera, both sizes, what to do."""
    for name, (vw, vh) in sizes.items():
        cam = calibration.cameras.get(name)
        if cam is None:
            continue
        cw, ch = cam.size
        cx, cy = float(cam.matrix[0, 2]), float(cam.matrix[1, 2])
        if (cw, ch) == (vw, vh):
            continue
        inside = 0 < cx < vw and 0 < cy < vh
        if cam.size == UNKNOWN_SIZE:
            if not inside:
                raise CalibrationImportError(
                    f"{calibration.source}: camera {name} states no image size and its principal point "
                    f"({cx:.1f}, {cy:.1f}) lies outside {where}'s {vw}x{vh} image: not a calibration of "
                    "this camera at this resolution"
                )
            cam.size = (vw, vh)
            continue
        padded = abs(cw - vw) <= PADDING_PX and abs(ch - vh) <= PADDING_PX
        if padded and inside:
            calibration.notes.append(
                f"{name}: calibration for {cw}x{ch} images, video {vw}x{vh}: encoder padding "
                f"({abs(cw - vw)} x {abs(ch - vh)} px) accepted, intrinsics unchanged"
            )
            cam.size = (vw, vh)
            continue
        why = (
            f"more than {PADDING_PX} px apart, so not encoder padding"
            if not padded
            else f"the principal point ({cx:.1f}, {cy:.1f}) lies outside the {vw}x{vh} image"
        )
        raise CalibrationImportError(
            f"{calibration.source}: camera {name} is calibrated for {cw}x{ch} images but {where} has "
            f"{vw}x{vh} ({why}); use a calibration made at the footage's resolution (or rescale the "
            "footage to the calibrated size)"
        )


def check_camera_names(calibration: ImportedCalibration, cameras: list[str], where: str) -> None:
    """Every camera of the footage must be in the calibration (matched by name)."""
    missing = [c for c in cameras if c not in calibration.cameras]
    if missing:
        raise CalibrationImportError(
            f"{calibration.source}: no camera named {', '.join(missing)} (it has "
            f"{', '.join(calibration.cameras.names)}; {where} has {', '.join(cameras)}): name the videos "
            "after the calibration's cameras"
        )


def finite_check(calibration: ImportedCalibration) -> None:
    for cam in calibration.cameras:
        values = [*cam.matrix.ravel(), *cam.distortions, *cam.rotation, *cam.translation]
        if not all(math.isfinite(v) for v in values):
            raise CalibrationImportError(f"{calibration.source}: camera {cam.name} has non-finite values")


def load_any_calibration(
    path: Path | str, units: str | None, sizes: dict[str, tuple[int, int]], where: str
) -> CameraSet:
    """`read_calibration` + `fit_to_images` + checks: what `triangulate --calibration` reads."""
    calibration = read_calibration(path, units)
    finite_check(calibration)
    fit_to_images(calibration, sizes, where)
    return CameraSet(calibration.cameras, calibration.metadata())


__all__ = [
    "FORMATS",
    "CalibrationImportError",
    "ImportedCalibration",
    "check_camera_names",
    "detect_format",
    "fit_to_images",
    "load_any_calibration",
    "read_calibration",
]
