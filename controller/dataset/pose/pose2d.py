"""2D keypoints of one camera: the hand-off from pose estimation to triangulation (one home).

`pose2d/<cam>.npz` (SessionLayout.pose2d_file), one entry per synced frame the camera really recorded
(filled/repeated frames of the synced output are skipped):
- `keypoints` (F, K, 3) float32: x, y in full-resolution pixels of the camera's image (origin at
  the top-left pixel's corner, x right, y down), confidence in [0, 1]; x = y = NaN and confidence 0
  where the keypoint was not found;
- `rows` (F,) int64: the match row (synced/match.csv) of each frame — the key shared by all cameras;
- `capture_ns` (F,) int64: the frame's capture time on the session's shared clock (ns since T0);
- `names` (K,): keypoint names (keypoints.py), `image_size` (width, height);
- `meta`: JSON: model, model_version, how each group's confidence is defined, groups that could not
  run (their keypoints NaN / confidence 0, listed so no one mistakes them for "not visible").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.pipeline.outputs import read_map_csv
from syncrig_agent.contract.layout import SessionLayout


class Pose2DError(ValueError):
    pass


@dataclass
class Pose2D:
    camera: str
    keypoints: np.ndarray  # (F, K, 3) float32
    rows: np.ndarray  # (F,) int64
    capture_ns: np.ndarray  # (F,) int64
    names: tuple[str, ...]
    image_size: tuple[int, int]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keypoints = np.asarray(self.keypoints, dtype=np.float32).reshape(-1, len(self.names), 3)
        self.rows = np.asarray(self.rows, dtype=np.int64).reshape(-1)
        self.capture_ns = np.asarray(self.capture_ns, dtype=np.int64).reshape(-1)
        self.names = tuple(str(n) for n in self.names)
        if not (len(self.keypoints) == len(self.rows) == len(self.capture_ns)):
            raise Pose2DError(f"{self.camera}: keypoints, rows and capture_ns must have one entry per frame")
        if len(np.unique(self.rows)) != len(self.rows):
            raise Pose2DError(f"{self.camera}: a match row appears twice")

    @property
    def model(self) -> str:
        return str(self.meta.get("model", "unknown"))

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez_compressed(
            tmp,
            camera=np.array(self.camera),
            keypoints=self.keypoints,
            rows=self.rows,
            capture_ns=self.capture_ns,
            names=np.array(self.names),
            image_size=np.array(self.image_size, dtype=np.int64),
            meta=np.array(json.dumps(self.meta)),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Pose2D:
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                return cls(
                    camera=str(data["camera"]),
                    keypoints=data["keypoints"],
                    rows=data["rows"],
                    capture_ns=data["capture_ns"],
                    names=tuple(data["names"].tolist()),
                    image_size=(int(data["image_size"][0]), int(data["image_size"][1])),
                    meta=json.loads(str(data["meta"])),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise Pose2DError(f"cannot read 2D keypoints {path}: {exc}") from None


@dataclass
class SyncedFrames:
    """What `synced/<cam>.map.csv` says about each frame of `synced/<cam>.mp4`."""

    camera: str
    video: Path
    output_frame: np.ndarray
    row: np.ndarray
    capture_ns: np.ndarray  # ns since T0 of the recorded frame shown
    pts_ns: np.ndarray  # the output's own timestamps
    filled: np.ndarray  # bool: a repeated frame standing in for a missing one


def read_synced_frames(session: Path, camera: str) -> SyncedFrames:
    folder = SessionLayout(session).synced
    video, map_path = folder.video(camera), folder.map(camera)
    if not (video.is_file() and map_path.is_file()):
        raise Pose2DError(
            f"camera {camera}: no synced output ({video.name} + {map_path.name} in {folder.path}); "
            f"run `syncrig sync {session}` first"
        )
    try:
        col = read_map_csv(map_path)
    except ValueError as exc:
        raise Pose2DError(str(exc)) from None
    return SyncedFrames(
        camera,
        video,
        col["output_frame"],
        col["row"],
        col["capture_ns"],
        col["pts_ns"],
        col["filled"].astype(bool),
    )
