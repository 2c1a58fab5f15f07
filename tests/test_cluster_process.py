"""`syncrig process` on a real two-node Ray cluster (`ray start --head` + `ray start --address`,
1 CPU each) inside a network namespace with only loopback up: outputs byte-identical to the
serial path, tasks on both nodes, both data paths (shared storage, object store), a SIGKILLed
pose actor's chunks rerun, and a killed command resumed without recomputing finished chunks.
Pose runs a tiny ONNX model built here (the GPU-ready interface; MediaPipe is benchmarked in
benchmarks/ray_pipeline.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "ray", reason="Ray is not installed (pip install 'syncrig[cluster]'): cluster tests NOT RUN"
)
pytest.importorskip("onnx", reason="onnx is not installed (test extra): cluster tests NOT RUN")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (test extra): cluster tests NOT RUN")

from controller.cluster.chunks import decode_chunk, plan_chunks, read_chunk  # noqa: E402
from controller.cluster.process import ProcessOptions, process  # noqa: E402
from controller.cluster.steps import PoseModel  # noqa: E402
from controller.dataset.pose.run import PoseWorker  # noqa: E402

from cluster_support import LoopbackRay, build_tiny_pose_model, outputs_of, write_sessions  # noqa: E402
from netns_support import netns_unavailable_reason  # noqa: E402

CHUNK = 8  # frames per chunk = the test videos' GOP
OUTPUTS = ["pose2d/*.npz"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("cluster")
    model = build_tiny_pose_model(base / "tiny.onnx", side=128, channels=16, layers=3)
    sessions = write_sessions(base / "serial", sessions=2, cameras=4, frames=32, gop=CHUNK)
    options = ProcessOptions(
        steps=["pose"], serial=True, chunk_frames=CHUNK, pose_model=PoseModel("onnx", model)
    )
    report = process([base / "serial"], options)
    assert report["computed"] == 2 * 4 * 4
    return {"base": base, "model": model, "serial": outputs_of(sessions, OUTPUTS), "sessions": sessions}


@pytest.fixture(scope="module")
def cluster():
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(f"two-node Ray cluster NOT RUN: {reason}")
    ray = LoopbackRay(f"srgray{os.getpid() % 10000}")
    try:
        ray.start()
    except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
        ray.stop()
        pytest.fail(f"could not start the loopback Ray cluster: {exc}")
    yield ray
    ray.stop()


def _copy(work: dict, name: str) -> Path:
    dest = work["base"] / name
    shutil.copytree(work["base"] / "serial", dest, copy_function=shutil.copy2)
    shutil.rmtree(dest / "session0" / "process", ignore_errors=True)
    shutil.rmtree(dest / "session1" / "process", ignore_errors=True)
    for session in dest.iterdir():
        for f in (session / "pose2d").glob("*.npz") if session.is_dir() else []:
            f.unlink()
    return dest


def _command(cluster: LoopbackRay, work: dict, root: Path, *extra: str) -> list[str]:
    return cluster.ns_cmd(
        sys.executable, "-m", "controller", "process", str(root), "--steps", "pose",
        "--ray-address", cluster.address, "--chunk-frames", str(CHUNK),
        "--pose-model", str(work["model"]), *extra,
    )  # fmt: skip


def _outputs(root: Path) -> dict:
    return outputs_of(sorted(p for p in root.iterdir() if p.is_dir()), OUTPUTS)


def test_chunks_start_at_keyframes_and_decode_as_the_whole_video(work) -> None:
    import av

    video = work["sessions"][0] / "synced" / "cam1.mp4"
    chunks = plan_chunks(video, CHUNK)
    assert [c.first_frame for c in chunks] == [0, 8, 16, 24] and sum(c.frames for c in chunks) == 32
    with av.open(str(video)) as container:
        whole = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        container.seek(0)
        keyframes = [i for i, p in enumerate(container.demux(video=0)) if p.size and p.is_keyframe]
    assert [c.first_frame for c in chunks] == keyframes
    for chunk in chunks:
        for k, picture in decode_chunk(read_chunk(video, chunk), chunk):
            assert np.array_equal(picture, whole[k]), f"chunk {chunk.index} frame {k}"
    assert [c.frames for c in plan_chunks(video, 20)] == [24, 8]  # whole GOPs, at least 20


def test_onnx_backend_answers_what_onnxruntime_computes(work) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    frames = [rng.integers(0, 255, (128, 128, 3), np.uint8) for _ in range(3)]
    config = PoseModel("onnx", work["model"]).worker_config()
    with PoseWorker(Path(sys.executable), 128, 128, backend=config) as worker:
        first = dict(worker.estimate(enumerate(frames), keep_open=True))
        again = dict(worker.estimate(enumerate(frames[:1]), keep_open=True))  # same worker after RESET
        assert worker.info["providers"] == ["CPUExecutionProvider"]
        assert worker.info["unavailable_groups"] == ["left_hand", "right_hand", "face"]
    session = ort.InferenceSession(str(work["model"]), providers=["CPUExecutionProvider"])
    for k, rgb in enumerate(frames):
        x = rgb.transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)
        y = session.run(None, {"image": x})[0][0]
        assert np.array_equal(first[k][:33, 0], (y[:, 0] * 128).astype(np.float32))
        assert np.array_equal(first[k][:33, 2], y[:, 2]) and np.isnan(first[k][33:, 0]).all()
    assert np.array_equal(again[0], first[0], equal_nan=True)


def test_two_nodes_match_the_serial_path_with_shared_storage_and_object_store(work, cluster) -> None:
    for data in ("shared", "object-store"):
        root = _copy(work, f"ray-{data}")
        result = subprocess.run(
            _command(cluster, work, root, "--data", data),
            env=cluster.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert _outputs(root) == work["serial"], f"{data}: outputs differ from the serial path"
        report = json.loads((root / "process-report.json").read_text())
        assert report["data"] == data and report["computed"] == 32 and report["reused"] == 0
        nodes = {e["node"] for e in report["entries"]}
        assert len(nodes) == 2, f"{data}: tasks ran on {nodes}, expected both nodes"
        assert (report["object_store_bytes"] > 0) == (data == "object-store")
        assert "session1: 16/16" in result.stderr  # progress per session and step


def _actor_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::PoseActor"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _wait_for_chunks(root: Path, count: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(list(root.glob("session*/process/pose/*/*.pkl"))) >= count:
            return
        assert proc.poll() is None, f"the run ended before {count} chunks were done: {proc.communicate()}"
        time.sleep(0.05)
    pytest.fail(f"fewer than {count} chunks done in {timeout} s")


def test_a_killed_pose_actor_has_its_chunk_rerun(work, cluster) -> None:
    root = _copy(work, "ray-kill")
    proc = subprocess.Popen(
        _command(cluster, work, root),
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_chunks(root, 4, proc)
    victims = _actor_pids()
    assert victims, "no ray::PoseActor process found mid-run"
    os.kill(victims[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    report = json.loads((root / "process-report.json").read_text())
    assert report["reruns"], f"nothing was rerun after killing pid {victims[0]}: {out}"
    # Each failed attempt was followed by a successful one of the same chunk (on a restarted actor).
    done = {(e["session"], e["camera"], e["chunk"]): e["attempt"] for e in report["entries"]}
    for r in report["reruns"]:
        assert r["rerun"] and done[(r["session"], r["camera"], r["chunk"])] > r["attempt"], report["reruns"]
    assert any("PoseActor" in r["error"] or "Actor" in r["error"] for r in report["reruns"]), report["reruns"]
    assert "rerun: session" in out
    assert _outputs(root) == work["serial"]


def test_a_killed_command_resumes_without_recomputing_finished_chunks(work, cluster) -> None:
    root = _copy(work, "ray-restart")
    proc = subprocess.Popen(
        _command(cluster, work, root),
        env=cluster.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for_chunks(root, 6, proc)
    proc.send_signal(signal.SIGKILL)  # `ip netns exec` execs the command: this is the driver itself
    proc.communicate(timeout=60)
    finished = len(list(root.glob("session*/process/pose/*/*.pkl")))
    result = subprocess.run(
        _command(cluster, work, root), env=cluster.env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((root / "process-report.json").read_text())
    assert report["reused"] >= finished >= 6 and report["computed"] == 32 - report["reused"]
    assert _outputs(root) == work["serial"]


@pytest.mark.slow
def test_the_local_default_starts_a_ray_of_its_own(work, cluster) -> None:
    """No --ray-address: a new local Ray (not the cluster running beside it), in the same
    loopback-only namespace (outside one, Ray 2.60 takes the interface address: docs/CLUSTER.md)."""
    root = _copy(work, "ray-local")
    command = _command(cluster, work, root, "--workers", "2")
    at = command.index("--ray-address")
    del command[at : at + 2]
    result = subprocess.run(command, env=cluster.env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((root / "process-report.json").read_text())
    assert report["backend"] == "ray" and len(report["nodes"]) == 1 and report["workers"] == 2
    assert _outputs(root) == work["serial"]
