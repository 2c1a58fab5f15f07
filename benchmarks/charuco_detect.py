"""ChArUco detection throughput: `detect_session` over a synced session of rendered board footage.

Footage: the simulated charuco scene (`syncrig_agent.sim.charuco_scene`, the same frames a simulated
charuco recording carries), rendered for N cameras and written as a synced session (libx264,
synced/<cam>.mp4 + .map.csv + match.csv). Printed, all in this process:
- scene render rate (can a simulated camera film the board in real time at this size?);
- decode-only rate (PyAV → grey), the floor under any detection pass;
- CharucoDetector alone on decoded frames held in memory;
- detect_session with 1 worker thread and with one per camera (up to the CPUs): frames/s and
  the ratio, i.e. what parallel cameras buy on this machine.

    .venv/bin/python benchmarks/charuco_detect.py [--cameras 3 --frames 200 --width 1280 --height 720]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pi-deploy"))

import av  # noqa: E402
import cv2  # noqa: E402

from controller.dataset.board.detect import scan_session  # noqa: E402
from controller.dataset.board.spec import BoardSpec  # noqa: E402
from controller.dataset.synthetic_session import write_synced_session  # noqa: E402
from syncrig_agent.contract.layout import SessionLayout  # noqa: E402
from syncrig_agent.sim.charuco_scene import CharucoScene  # noqa: E402
from syncrig_agent.sim.charuco_sim import camera_config, scene_description  # noqa: E402

T_BASE = 1_790_000_000_000_000_000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=3)
    ap.add_argument("--frames", type=int, default=200, help="frames per camera")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--fps", type=int, default=30, help="capture rate of the footage (board speed per frame)")
    args = ap.parse_args()
    names = [f"cam{i}" for i in range(args.cameras)]
    description = scene_description(names, args.width, args.height)
    spec = BoardSpec(**description["board"])
    step = 1_000_000_000 // args.fps
    print(f"{args.cameras} cameras x {args.frames} frames, {args.width}x{args.height}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="charuco-bench-") as tmp:
        session = Path(tmp)
        render_s = 0.0
        frames = {}
        for name in names:
            scene = CharucoScene(args.width, args.height, name, camera_config(description, name))
            pictures = []
            for k in range(args.frames):
                t = time.perf_counter()
                picture = scene.render(T_BASE + k * step, k).copy()
                render_s += time.perf_counter() - t
                pictures.append(picture)
            frames[name] = pictures
        total = args.cameras * args.frames
        print(
            f"scene render          {total / render_s:8.1f} frames/s  ({1e3 * render_s / total:.2f} ms/frame)"
        )
        write_synced_session(session, frames)
        del frames

        t = time.perf_counter()
        decoded = []
        for name in names:
            with av.open(str(SessionLayout(session).synced.video(name))) as container:
                container.streams.video[0].thread_type = "AUTO"  # as detect_session decodes
                decoded += [f.to_ndarray(format="gray") for f in container.decode(video=0)]
        decode_s = time.perf_counter() - t
        print(f"decode only (PyAV)    {total / decode_s:8.1f} frames/s")

        detector = cv2.aruco.CharucoDetector(spec.cv_board())
        t = time.perf_counter()
        views = sum(
            1 for gray in decoded if (ids := detector.detectBoard(gray)[1]) is not None and len(ids) >= 6
        )
        detect_s = time.perf_counter() - t
        print(f"CharucoDetector only  {total / detect_s:8.1f} frames/s  ({views}/{total} views)")
        del decoded

        rates = {}
        workers_all = min(args.cameras, os.cpu_count() or 1)
        for workers in sorted({1, workers_all}):
            t = time.perf_counter()
            result = scan_session(session, spec, workers=workers)
            elapsed = time.perf_counter() - t
            rates[workers] = total / elapsed
            kept = sum(len(d.rows()) for d in result.values())
            print(f"detect_session, {workers} thread(s) {rates[workers]:8.1f} frames/s  ({kept} views kept)")
        if workers_all > 1:
            print(f"parallel / sequential: {rates[workers_all] / rates[1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
