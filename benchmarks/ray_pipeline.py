"""`syncrig process` on a real two-node Ray cluster (1 CPU per node, `ray start` twice) inside a
loopback-only network namespace: serial path vs one worker vs two workers (shared storage, and
chunks through the object store), a pose actor SIGKILLed mid-run, and the per-chunk overhead
(an ONNX model that does almost nothing). Sessions: Pose2Sim's real demo footage (4 cameras),
scaled and re-encoded with a keyframe every --gop frames, as 2 sessions (the second a time-shifted
copy). Prints a table and writes JSON (every run's report summary and the scaling figures).

    .venv/bin/python benchmarks/ray_pipeline.py [--frames 60 --scale 0.25 --gop 15 --pose mediapipe]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "pi-deploy"), str(ROOT / "tests")]

from controller.dataset.sample_data import pose2sim_demo  # noqa: E402
from controller.dataset.synthetic_session import write_synced_session  # noqa: E402

from cluster_support import LoopbackRay, build_tiny_pose_model, outputs_of  # noqa: E402


def demo_sessions(root: Path, frames: int, scale: float, gop: int) -> list[Path]:
    import av
    from PIL import Image

    videos = sorted((pose2sim_demo("Demo_SinglePerson") / "videos").glob("*.mp4"))
    pictures: dict[str, list[np.ndarray]] = {}
    for video in videos:
        out = []
        with av.open(str(video)) as container:
            for frame in container.decode(video=0):
                rgb = frame.to_image()
                w, h = int(rgb.width * scale) // 2 * 2, int(rgb.height * scale) // 2 * 2
                small = av.VideoFrame.from_image(rgb.resize((w, h), Image.BILINEAR))
                out.append(small.reformat(format="yuv420p").to_ndarray())
                if len(out) == frames:
                    break
        pictures[video.stem] = out
    sessions = []
    for s, shift in enumerate((0, frames // 3)):
        session = root / f"demo{s}"
        write_synced_session(
            session, {c: p[shift:] + p[:shift] for c, p in pictures.items()}, fps=60, gop=gop
        )
        sessions.append(session)
    return sessions


def detect_cpu(base: Path, frames: int, gop: int) -> dict:
    """Board detection's CPU cost per frame on the serial path (rendered ChArUco footage, 640x480,
    2 cameras): the chunked units of work Ray runs, in this process."""
    from controller.cluster.process import ProcessOptions, process
    from controller.dataset.board.spec import BoardSpec
    from syncrig_agent.contract.layout import SessionLayout
    from syncrig_agent.sim.charuco_scene import CharucoScene
    from syncrig_agent.sim.charuco_sim import camera_config, scene_description

    cameras = ["cam0", "cam1"]
    description = scene_description(cameras, 640, 480)
    session = base / "detect" / "board"
    pictures = {}
    for cam in cameras:
        scene = CharucoScene(640, 480, cam, camera_config(description, cam))
        pictures[cam] = [
            scene.render(1_790_000_000_000_000_000 + k * 50_000_000, k).copy() for k in range(frames)
        ]
    write_synced_session(session, pictures, gop=gop)
    BoardSpec(**description["board"]).save(SessionLayout(session).board_file)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    report = process([base / "detect"], ProcessOptions(steps=["detect"], serial=True, chunk_frames=gop))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    total = frames * len(cameras)
    return {
        "frames": total,
        "chunks": report["units"],
        "cpu_s": round(cpu, 2),
        "wall_s": round(time.monotonic() - started, 2),
        "detect_frames_per_cpu_second": round(total / cpu, 1),
    }


def run(
    cluster: LoopbackRay,
    root: Path,
    args: argparse.Namespace,
    *extra: str,
    kill_after: int = 0,
    chunk_frames: int = 0,
) -> dict:
    cmd = [sys.executable, "-m", "controller", "process", str(root), "--steps", "pose", "--quiet"]
    cmd += ["--chunk-frames", str(chunk_frames or args.gop), *extra]
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        cluster.ns_cmd(*cmd), env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    killed = None
    if kill_after:
        while len(list(root.glob("*/process/pose/*/*.pkl"))) < kill_after and proc.poll() is None:
            time.sleep(0.05)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (entry / "cmdline").read_bytes().startswith(b"ray::PoseActor"):
                        killed = int(entry.name)
                        os.kill(killed, signal.SIGKILL)
                        break
                except OSError:
                    continue
    out, err = proc.communicate(timeout=1800)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU of the command and every process it waited for: the whole work on the serial path (the
    # pose worker is its child), the driver's share on Ray (actors are the raylets' children).
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{err.decode()[-3000:]}")
    report = json.loads((root / "process-report.json").read_text())
    report["wall_s"] = round(wall, 2)
    report["command_cpu_s"] = round(cpu, 2)
    report["killed_pid"] = killed
    return report


def fresh(base: Path, name: str) -> Path:
    dest = base / name
    shutil.copytree(base / "pristine", dest, copy_function=shutil.copy2)
    return dest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=60, help="frames per camera per session")
    ap.add_argument("--scale", type=float, default=0.25, help="of the demo's 1080x1920")
    ap.add_argument("--gop", type=int, default=15, help="keyframe interval = chunk length")
    ap.add_argument("--pose", choices=["mediapipe", "onnx"], default="mediapipe")
    ap.add_argument("--json", type=Path, default=Path("ray_pipeline.json"))
    ap.add_argument("--detect-only", action="store_true", help="only the detect step's CPU cost per frame")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="ray-bench-"))
    detect = detect_cpu(base, 2 * args.frames, args.gop)
    print(f"detect (serial path, 640x480 ChArUco footage): {json.dumps(detect)}")
    if args.detect_only:
        shutil.rmtree(base, ignore_errors=True)
        return 0
    sessions = demo_sessions(base / "pristine", args.frames, args.scale, args.gop)
    model = build_tiny_pose_model(base / "tiny.onnx", side=128, channels=16, layers=3)
    trivial = build_tiny_pose_model(base / "trivial.onnx", side=4, channels=1, layers=1)
    pose = ["--pose-model", str(model)] if args.pose == "onnx" else []
    frames = len(sessions) * 4 * args.frames
    cluster = LoopbackRay(f"srgbench{os.getpid() % 10000}", port=6391)
    results: dict[str, dict] = {}
    try:
        cluster.start()
        results["serial"] = run(cluster, fresh(base, "serial"), args, "--serial", *pose)
        reference = outputs_of([base / "serial" / s.name for s in sessions], ["pose2d/*.npz"])
        address = ["--ray-address", cluster.address]
        plans = {
            "ray_1_worker": [*address, "--workers", "1", "--data", "shared", *pose],
            "ray_2_shared": [*address, "--workers", "2", "--data", "shared", *pose],
            "ray_2_object_store": [*address, "--workers", "2", "--data", "object-store", *pose],
        }
        for name, extra in plans.items():
            results[name] = run(cluster, fresh(base, name), args, *extra)
        chunks = results["serial"]["units"]
        results["ray_2_killed"] = run(
            cluster, fresh(base, "ray_2_killed"), args, *plans["ray_2_shared"], kill_after=chunks // 3
        )
        for name in [*plans, "ray_2_killed"]:
            got = outputs_of([base / name / s.name for s in sessions], ["pose2d/*.npz"])
            results[name]["identical_to_serial"] = got == reference
        # CPU per chunk: the same trivial work cut into chunks of one GOP and of two GOPs.
        for name, frames_per_chunk in (
            ("trivial_serial_1gop", args.gop),
            ("trivial_serial_2gop", 2 * args.gop),
        ):
            results[name] = run(
                cluster, fresh(base, name), args, "--serial", "--pose-model", str(trivial),
                chunk_frames=frames_per_chunk,
            )  # fmt: skip
        results["overhead_trivial_model"] = run(
            cluster,
            fresh(base, "trivial"),
            args,
            *address,
            "--workers",
            "2",
            "--data",
            "shared",
            "--pose-model",
            str(trivial),
        )
    finally:
        cluster.stop()
    print(
        f"{frames} frames ({len(sessions)} sessions x 4 cameras x {args.frames}), pose: {args.pose}, "
        f"chunks of {args.gop}"
    )
    print(
        f"{'run':<24}{'wall s':>8}{'step s':>8}{'frames/s':>10}{'nodes':>6}{'reruns':>7}{'store MB':>9}"
        "  identical"
    )
    for name, r in results.items():
        step = r["steps"]["pose"]["seconds"]
        print(
            f"{name:<24}{r['wall_s']:>8.1f}{step:>8.1f}{frames / step:>10.1f}{len(r['nodes']):>6}"
            f"{len(r['reruns']):>7}"
            f"{r['object_store_bytes'] / 1e6:>9.2f}  {r.get('identical_to_serial', '-')}"
        )
    one, two = results["trivial_serial_1gop"], results["trivial_serial_2gop"]
    serial_cpu = results["serial"]["command_cpu_s"]
    concurrency = {
        name: round(sum(e["seconds"] for e in r["entries"]) / r["steps"]["pose"]["seconds"], 2)
        for name, r in results.items()
        if name.startswith("ray_")
    }
    computed = [e for e in results["ray_1_worker"]["entries"] if not e.get("reused")]
    per_frame = sum(e["seconds"] for e in computed) / max(1, sum(e["frames"] for e in computed))
    trivial_entries = results["overhead_trivial_model"]["entries"]
    trivial_step = results["overhead_trivial_model"]["steps"]["pose"]["seconds"]
    scaling = {
        "pose_frames_per_cpu_second_serial": round(frames / serial_cpu, 2),
        "cpu_s_per_chunk": round(
            (one["command_cpu_s"] - two["command_cpu_s"]) / (one["units"] - two["units"]), 4
        ),
        "driver_cpu_s_per_chunk_ray_2": round(results["ray_2_shared"]["command_cpu_s"] / one["units"], 4),
        "mean_busy_workers": concurrency,
        "load_average_1min_at_end": os.getloadavg()[0],
        "detect": detect,
        "frames_per_s_per_core": round(1 / per_frame, 2),
        "chunk_task_seconds_trivial_model_mean": round(
            float(np.mean([e["seconds"] for e in trivial_entries])), 4
        ),
        "per_chunk_overhead_s": round(trivial_step * 2 / len(trivial_entries), 4),
        "object_store_bytes_per_frame": round(
            results["ray_2_object_store"]["object_store_bytes"] / frames, 1
        ),
        "speedup_2_vs_1_worker": round(
            results["ray_1_worker"]["steps"]["pose"]["seconds"]
            / results["ray_2_shared"]["steps"]["pose"]["seconds"],
            2,
        ),
        "reruns_after_kill": results["ray_2_killed"]["reruns"],
    }
    print(json.dumps(scaling, indent=1))
    args.json.write_text(
        json.dumps(
            {"args": vars(args) | {"json": str(args.json)}, "runs": results, "scaling": scaling}, indent=1
        )
    )
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
