"""2D pose throughput (issue 7 measurement): frames/s and frames per CPU-second ("per core").

A synced-style video of a real photograph (matplotlib's grace_hopper.jpg, placed on a WxH canvas
with a slow drift so tracking has work to do) goes through exactly what `syncrig pose` runs:
PyAV decode in this process → raw RGB over a pipe → the MediaPipe Holistic worker in the pose side
environment → pose2d/<cam>.npz. Reported: wall-clock frames/s; CPU seconds per frame of the worker
(inference) and of this process (decode + pipe), so frames per CPU-second; and, in the same run,
the decode-only and decode+pipe costs, which is why the parent decodes (it is a small fraction of
inference, overlaps with it on the other core, and keeps PyAV out of the numpy<2 environment).

    .venv/bin/python benchmarks/pose2d.py [--frames 150 --width 1280 --height 720]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from controller.dataset.pose.env import ensure_pose_env
from controller.dataset.pose.run import pose_camera
from controller.pipeline.outputs import write_map_csv
from syncrig_agent.contract.layout import SessionLayout


def make_video(folder: Path, frames: int, width: int, height: int, fps: float = 30.0) -> Path:
    import matplotlib.cbook
    from PIL import Image

    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as fh:
        photo = np.asarray(Image.open(fh).convert("RGB"))
    scale = min(1.0, 0.9 * height / photo.shape[0])
    photo = np.asarray(
        Image.fromarray(photo).resize((int(photo.shape[1] * scale), int(photo.shape[0] * scale)))
    )
    ph, pw = photo.shape[:2]
    synced = SessionLayout(folder).synced
    synced.path.mkdir(parents=True)
    period = round(1e9 / fps)
    with av.open(str(synced.video("cam0")), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(round(fps)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for k in range(frames):
            canvas = np.full((height, width, 3), 90, np.uint8)
            x = int((width - pw) * (0.5 + 0.4 * np.sin(k / 40)))
            canvas[(height - ph) // 2 : (height - ph) // 2 + ph, x : x + pw] = photo
            frame = av.VideoFrame.from_ndarray(canvas, format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    k = np.arange(frames)
    zeros = np.zeros(frames, np.int64)
    write_map_csv(synced.map("cam0"), np.column_stack([k, k, k, k * period, k * period, zeros, zeros]))
    return synced.video("cam0")


def cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    args = ap.parse_args()
    t = time.monotonic()
    python = ensure_pose_env()
    print(f"pose environment ready in {time.monotonic() - t:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        session = Path(tmp)
        video = make_video(session, args.frames, args.width, args.height)
        # Decode only, then decode + write to a pipe that a child drains (the parent's share).
        t, c = time.monotonic(), cpu(resource.RUSAGE_SELF)
        with av.open(str(video)) as container:
            n = sum(1 for f in container.decode(video=0) if f.to_ndarray(format="rgb24") is not None)
        decode_s, decode_cpu = time.monotonic() - t, cpu(resource.RUSAGE_SELF) - c
        import subprocess

        sink = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        t = time.monotonic()
        with av.open(str(video)) as container:
            for f in container.decode(video=0):
                sink.stdin.write(f.to_ndarray(format="rgb24").tobytes())
        sink.stdin.close()
        sink.wait()
        pipe_s = time.monotonic() - t
        child0, self0, t = cpu(resource.RUSAGE_CHILDREN), cpu(resource.RUSAGE_SELF), time.monotonic()
        result = pose_camera(session, "cam0", python, force=True)
        wall = time.monotonic() - t
        child_cpu = cpu(resource.RUSAGE_CHILDREN) - child0
        self_cpu = cpu(resource.RUSAGE_SELF) - self0
    frames = result["frames"]
    print(f"{frames} frames {args.width}x{args.height}, MediaPipe Holistic (model_complexity=1), video mode:")
    print(f"  end to end: {frames / wall:.1f} frames/s wall ({wall:.1f} s)")
    print(
        f"  worker CPU {1000 * child_cpu / frames:.1f} ms/frame, "
        f"parent CPU {1000 * self_cpu / frames:.1f} ms/frame "
        f"-> {frames / (child_cpu + self_cpu):.1f} frames per CPU-second (per core)"
    )
    print(
        f"  parent alone: decode {1000 * decode_s / n:.2f} ms/frame ({1000 * decode_cpu / n:.2f} ms CPU), "
        f"decode + pipe {1000 * pipe_s / n:.2f} ms/frame = {100 * pipe_s / wall:.0f}% of the end-to-end time"
    )


if __name__ == "__main__":
    main()
