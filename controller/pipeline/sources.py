"""What the pipeline reads from a session directory: the manifest, and per camera its timestamps
(`raw/<cam>.pts`), frame metadata (`raw/<cam>.frames.csv`, when present) and video (`raw/<cam>.h264`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from syncrig_agent.contract.formats import SessionManifest, read_frame_table, read_manifest, read_pts
from syncrig_agent.contract.ids import validate_camera_name
from syncrig_agent.contract.layout import RawFolder, SessionLayout


class SessionError(ValueError):
    """A session directory the pipeline cannot use; the message says what is wrong."""


@dataclass
class CameraTrack:
    name: str
    times_ns: np.ndarray  # int64 per frame in stream order: ns since T0 (absolute) or own first frame
    absolute: bool
    video: Path
    grid_index: np.ndarray | None = None  # from frames.csv
    keyframe: np.ndarray | None = None  # bool, from frames.csv
    sizes: np.ndarray | None = None  # encoded bytes per frame, from frames.csv

    def __len__(self) -> int:
        return int(self.times_ns.size)


@dataclass
class SessionSource:
    session_dir: Path
    manifest: SessionManifest
    tracks: list[CameraTrack]

    @property
    def cameras(self) -> list[str]:
        return [t.name for t in self.tracks]

    @property
    def absolute(self) -> bool:
        return bool(self.manifest.absolute_time) and all(t.absolute for t in self.tracks)

    @property
    def period_ns(self) -> int:
        return int(self.manifest.period_ns)

    def track(self, name: str) -> CameraTrack:
        for t in self.tracks:
            if t.name == name:
                return t
        raise SessionError(f"session {self.manifest.id} has no camera named {name!r}")

    def times(self) -> dict[str, np.ndarray]:
        return {t.name: t.times_ns for t in self.tracks}

    def expected_rows(self) -> int | None:
        """Grid slots the recording planned (from the manifest), when every camera states it."""
        values = {c.get("expected_frames") for c in self.manifest.cameras}
        if len(values) == 1 and isinstance(next(iter(values)), int):
            return int(next(iter(values)))
        return None


def session_subdir(path: Path) -> Path:
    """A pipeline output folder inside the session (created if needed; never a symlink out)."""
    if path.is_symlink():
        raise SessionError(f"{path} is a symbolic link; refusing to write through it")
    path.mkdir(exist_ok=True)
    return path


def load_session(session_dir: Path | str) -> SessionSource:
    session_dir = Path(session_dir)
    if not session_dir.is_dir():
        raise SessionError(f"{session_dir} is not a directory")
    layout = SessionLayout(session_dir)
    if not layout.manifest.is_file():
        raise SessionError(
            f"{session_dir} has no {layout.manifest.name}: not a SyncRig session directory (videos from "
            f"another rig come in with `syncrig import {session_dir} --out SESSIONS_ROOT`)"
        )
    try:
        manifest = read_manifest(session_dir)
    except (ValueError, TypeError) as exc:
        raise SessionError(f"unreadable manifest: {exc}") from None
    if not manifest.cameras:
        raise SessionError(f"{session_dir}: the manifest lists no cameras")
    if not isinstance(manifest.period_ns, int) or manifest.period_ns <= 0:
        raise SessionError(f"{session_dir}: manifest period_ns must be a positive integer")
    tracks = []
    for entry in manifest.cameras:
        try:
            name = validate_camera_name(entry.get("name"))
        except ValueError as exc:
            raise SessionError(f"{session_dir}: {exc}") from None
        tracks.append(_load_track(layout.raw, name, bool(manifest.absolute_time)))
    return SessionSource(session_dir, manifest, tracks)


def _load_track(raw: RawFolder, name: str, absolute_session: bool) -> CameraTrack:
    pts_path = raw.pts(name)
    if not pts_path.is_file():
        raise SessionError(f"camera {name}: {pts_path} is missing")
    video = raw.video(name)
    if not video.is_file():
        raise SessionError(f"camera {name}: {video} is missing")
    try:
        pts = read_pts(pts_path)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SessionError(f"camera {name}: {exc}") from None
    track = CameraTrack(name, pts.times_ns, pts.absolute and absolute_session, video)
    table_path = raw.frames(name)
    if table_path.is_file():
        try:
            table = read_frame_table(table_path)
        except ValueError as exc:
            raise SessionError(f"camera {name}: {exc}") from None
        if table["frame"].size != len(track):
            raise SessionError(
                f"camera {name}: {table_path.name} has {table['frame'].size} rows but "
                f"{pts_path.name} has {len(track)} frames"
            )
        track.grid_index = table["grid_index"]
        if "keyframe" in table:
            track.keyframe = table["keyframe"].astype(bool)
        if "size" in table:
            track.sizes = table["size"]
    return track
