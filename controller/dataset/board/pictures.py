"""A board in still pictures: a folder of photographs or a video (frames every `every_s`), each
searched for a ChArUco board (OpenCV's CharucoDetector) or a checkerboard (OpenCV's
findChessboardCorners + cornerSubPix, as Pose2Sim does), as one camera's CameraDetections whose
rows are the picture indices. What `syncrig intrinsics` calibrates from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from controller.dataset.board.check import MIN_CORNERS, DetectionError
from controller.dataset.board.detections import CameraDetections
from controller.dataset.board.spec import BoardSpec

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


@dataclass
class PictureDetections:
    detections: CameraDetections  # row k = labels[k]
    labels: list[str]  # each picture's file name (or "<video>@<seconds>s")


def _video_frames(path: Path, every_s: float) -> Iterator[tuple[str, np.ndarray]]:
    import av

    try:
        container = av.open(str(path))
    except (OSError, av.FFmpegError) as exc:
        raise DetectionError(f"cannot open {path} as a video: {exc}") from None
    with container:
        stream = container.streams.video[0]
        next_s = 0.0
        try:
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else next_s
                if t + 1e-6 < next_s:
                    continue
                next_s = t + every_s
                yield f"{path.name}@{t:.2f}s", frame.to_ndarray(format="gray")
        except av.FFmpegError as exc:
            raise DetectionError(f"cannot decode {path}: {exc}") from None


def read_pictures(path: Path, every_s: float = 1.0) -> Iterator[tuple[str, np.ndarray]]:
    """(label, gray picture) of every image in a folder (name order), or of a video's frames
    `every_s` apart. DetectionError when the path holds neither."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DetectionError(f"{path}: no pictures ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        for file in files:
            gray = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
            if gray is None:
                raise DetectionError(f"{file}: not a picture OpenCV can read")
            yield file.name, gray
    elif path.is_file():
        yield from _video_frames(path, every_s)
    else:
        raise DetectionError(f"{path}: no such folder of pictures or video")


def _find_checkerboard(gray: np.ndarray, spec: BoardSpec) -> tuple[np.ndarray, np.ndarray] | None:
    pattern = spec.inner_corners
    flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
    found, corners = cv2.findChessboardCorners(gray, pattern, flags)
    if not found:
        return None
    # The refinement window: about a third of the corner spacing (at least 3 px each side).
    spacing = float(np.median(np.linalg.norm(np.diff(corners.reshape(-1, 2), axis=0), axis=1)))
    half = int(np.clip(spacing / 3, 3, 15))
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
    corners = cv2.cornerSubPix(gray, corners, (half, half), (-1, -1), criteria)
    return np.arange(pattern[0] * pattern[1], dtype=np.int32), corners.reshape(-1, 2).astype(np.float64)


def detect_pictures(camera: str, path: Path, spec: BoardSpec, every_s: float = 1.0) -> PictureDetections:
    """The board in each picture of `path` (a folder or a video); pictures must share one size."""
    charuco = None if spec.is_checkerboard else cv2.aruco.CharucoDetector(spec.cv_board())
    rows, ids, xy, labels = [], [], [], []
    size = None
    for k, (label, gray) in enumerate(read_pictures(path, every_s)):
        this = (gray.shape[1], gray.shape[0])
        if size is not None and this != size:
            raise DetectionError(
                f"{path}: {label} is {this[0]}x{this[1]} but the pictures before it are {size[0]}x{size[1]}: "
                "one camera's pictures must share its size"
            )
        size = this
        labels.append(label)
        if charuco is None:
            found = _find_checkerboard(gray, spec)
        else:
            corners, corner_ids, _mc, _mi = charuco.detectBoard(gray)
            found = None
            if corner_ids is not None and len(corner_ids) >= MIN_CORNERS:
                found = corner_ids.ravel().astype(np.int32), corners.reshape(-1, 2).astype(np.float64)
        if found is not None:
            rows.append(np.full(len(found[0]), k, dtype=np.int64))
            ids.append(found[0])
            xy.append(found[1])
    det = CameraDetections(
        camera,
        size,
        np.concatenate(rows) if rows else np.zeros(0, np.int64),
        np.concatenate(ids) if ids else np.zeros(0, np.int32),
        np.concatenate(xy) if xy else np.zeros((0, 2)),
    )
    return PictureDetections(det, labels)
