"""A synced session made straight from pictures, in `syncrig sync`'s file formats (synced/match.csv,
synced/<cam>.mp4 + .map.csv): for tests and benchmarks of the dataset stages that need footage no
simulated rig can record in reasonable time (hundreds of frames, another printed board).
Every camera has a frame for every row; row k is output frame k, captured at k / fps."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from controller.pipeline.matching import MatchTable, write_match_csv
from controller.pipeline.outputs import write_map_csv
from syncrig_agent.contract.layout import SessionLayout


def write_synced_session(
    session: Path, frames: dict[str, Iterable[np.ndarray]], fps: int = 15, gop: int | None = None
) -> int:
    """Encode each camera's I420 pictures ((H*3/2, W) uint8) to synced/<cam>.mp4 (libx264, crf 12)
    with its .map.csv, and the match table; returns the row count. `gop`: a keyframe every `gop`
    frames (default: libx264's 250), as a camera's encoder would set it."""
    synced = SessionLayout(session).synced
    synced.path.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, pictures in frames.items():
        count = 0
        with av.open(str(synced.video(name)), "w") as container:
            stream = None
            for picture in pictures:
                if stream is None:
                    stream = container.add_stream("libx264", rate=fps)
                    stream.height, stream.width = picture.shape[0] * 2 // 3, picture.shape[1]
                    stream.pix_fmt = "yuv420p"
                    stream.time_base = Fraction(1, fps)
                    stream.options = {"crf": "12", "preset": "ultrafast", "tune": "zerolatency"}
                    if gop is not None:
                        stream.options = {**stream.options, "g": str(gop)}
                frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
                frame.pts = count
                container.mux(stream.encode(frame))
                count += 1
            if stream is not None:
                container.mux(stream.encode(None))
        times = np.arange(count, dtype=np.int64) * 1_000_000_000 // fps
        zeros = np.zeros(count, dtype=np.int64)
        table = np.column_stack(
            [np.arange(count), np.arange(count), np.arange(count), times, times, zeros, zeros]
        )
        write_map_csv(synced.map(name), table)
        counts[name] = count
    rows = min(counts.values())
    period_ns = 1_000_000_000 // fps
    cells = np.repeat(np.arange(rows, dtype=np.int64)[:, None], len(frames), axis=1)
    write_match_csv(synced.match_csv, MatchTable.on_grid(list(frames), cells, period_ns))
    return rows


def write_charuco_session(
    session: Path,
    cameras: int,
    width: int,
    height: int,
    fps: int,
    seconds: float,
    start_ns: int,
    board: dict | None = None,
) -> int:
    """A synced session of the simulated ChArUco scene (the very scene `syncrig record --sim-scene
    charuco` films: camera ring, board trajectory, renderer) starting at true time `start_ns`, with
    its ground_truth.json; no rig, so any camera count, size, length and start phase is quick to
    make. Returns the row count."""
    import json

    from syncrig_agent.sim.charuco_scene import CharucoScene
    from syncrig_agent.sim.charuco_sim import camera_config, scene_description

    names = [f"cam{i}" for i in range(cameras)]
    description = scene_description(names, width, height, board)
    count = int(round(seconds * fps))
    period_ns = 1_000_000_000 // fps

    def pictures(name: str) -> Iterable[np.ndarray]:
        scene = CharucoScene(width, height, name, camera_config(description, name))
        for k in range(count):
            yield scene.render(start_ns + k * period_ns, k)

    rows = write_synced_session(session, {n: pictures(n) for n in names}, fps=fps)
    truth = SessionLayout(session).ground_truth_file
    truth.write_text(json.dumps(description, indent=2) + "\n")
    return rows
