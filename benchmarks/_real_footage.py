"""Pose2Sim's real demo as triangulation input for the 3D benchmark: its Qualisys calibration read by
the calibration importer (`controller/dataset/imports/calibration.py`, the one home of that
conversion: Pose2Sim's `calib_qca_fun`, kept in mm; the file's 1088-pixel width against the
1080-pixel videos of cam01/cam02 is encoder padding, accepted with a note), and SyncRig's own 2D
pose of its four videos (run once through the pose side environment, cached, then reused).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from controller.dataset.cameras import CameraSet
from controller.dataset.imports.calibration import load_any_calibration
from controller.dataset.pose.keypoints import KEYPOINT_NAMES
from controller.dataset.pose.pose2d import Pose2D
from controller.dataset.sample_data import pose2sim_demo, sample_data_dir

CACHE = sample_data_dir() / "pose2d-cache"  # SyncRig's 2D of the demo videos, made once
FPS = 60.0


def video_size(path: Path) -> tuple[int, int]:
    import av

    with av.open(str(path)) as container:
        ctx = container.streams.video[0].codec_context
        return ctx.width, ctx.height


def qca_cameras(qca: Path, sizes: dict[str, tuple[int, int]]) -> CameraSet:
    """Qualisys .qca.txt → CameraSet (mm) through the calibration importer."""
    return load_any_calibration(qca, None, sizes, f"the videos beside {qca.parent}")


def demo_pose2d(demo: str, cache: Path = CACHE, say=print) -> tuple[CameraSet, list[Pose2D]]:
    """The demo's calibration and SyncRig's 2D pose of its videos (computed once, then cached)."""
    folder = pose2sim_demo(demo)
    videos = sorted((folder / "videos").glob("cam*.mp4"))
    sizes = {v.stem: video_size(v) for v in videos}
    cameras = qca_cameras(folder / "calibration" / "Calib.qca.txt", sizes)
    poses = []
    for video in videos:
        path = cache / demo / f"{video.stem}.npz"
        if not path.is_file():
            say(f"2D pose of {demo}/{video.name} (once; cached in {path.parent})")
            _estimate_video(video, sizes[video.stem]).save(path)
        poses.append(Pose2D.load(path))
    return cameras, poses


def _estimate_video(video: Path, size: tuple[int, int]) -> Pose2D:
    import av

    from controller.dataset.pose.env import ensure_pose_env
    from controller.dataset.pose.run import PoseWorker

    python = ensure_pose_env()
    started = time.monotonic()
    with av.open(str(video)) as container, PoseWorker(python, *size) as worker:
        stream = container.streams.video[0]
        frames = ((i, f.to_ndarray(format="rgb24")) for i, f in enumerate(container.decode(stream)))
        out = dict(worker.estimate(frames))
        meta = {k: v for k, v in worker.info.items() if k != "groups"}
    n = len(out)
    kp = np.stack([out[i] for i in range(n)])
    meta["seconds"] = round(time.monotonic() - started, 1)
    period = round(1e9 / FPS)
    return Pose2D(video.stem, kp, np.arange(n), np.arange(n) * period, KEYPOINT_NAMES, size, meta)


if __name__ == "__main__":
    for name in ("Demo_SinglePerson", "Demo_MultiPerson"):
        cams, poses = demo_pose2d(name)
        for p in poses:
            print(name, p.camera, p.keypoints.shape, p.meta.get("seconds"))


def demo_session(demo: str, session: Path, cache: Path = CACHE) -> Path:
    """A SyncRig session of the demo, as `syncrig import` will make one: session.json, a match
    table (every camera has every frame: the demo's videos are frame-aligned), the calibration
    and the cached 2D keypoints; `syncrig triangulate` and `export` then run on it."""
    from controller.dataset.cameras import save_calibration_toml
    from controller.pipeline.matching import MatchTable, write_match_csv
    from syncrig_agent.contract.formats import SessionManifest, write_manifest
    from syncrig_agent.contract.layout import SessionLayout

    cameras, poses = demo_pose2d(demo, cache)
    layout = SessionLayout(session)
    frames = max(len(p.rows) for p in poses)
    period = round(1e9 / FPS)
    manifest = SessionManifest(
        id=session.name,
        subject=demo,
        project="pose2sim-demo",
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        fps=FPS,
        period_ns=period,
        t0_ns=0,
        cameras=[
            {
                "name": c.name,
                "host": "pose2sim",
                "role": "client",
                "width": c.size[0],
                "height": c.size[1],
                "frames": frames,
                "expected_frames": frames,
                "dropped": 0,
            }
            for c in cameras
        ],  # fmt: skip
        notes=[f"Pose2Sim's {demo}, built by benchmarks/_real_footage.py"],
    )
    layout.synced.path.mkdir(parents=True, exist_ok=True)
    write_manifest(session, manifest)
    cells = np.tile(np.arange(frames)[:, None], (1, len(cameras)))
    write_match_csv(layout.synced.match_csv, MatchTable.on_grid(list(cameras.names), cells, period))
    for p in poses:
        p.save(layout.pose2d_file(p.camera))
    save_calibration_toml(layout.calibration_toml, list(cameras), {"source": f"{demo} Calib.qca.txt"})
    return session
