"""For the cluster tests and benchmarks/ray_pipeline.py: short simulated sessions, a tiny ONNX pose
model built here with onnx's helper API, and a real two-node Ray cluster (`ray start` twice)
inside a network namespace that has only loopback up, so no Ray traffic can reach any other
address."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from controller.dataset.synthetic_session import write_synced_session

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
ROOT = Path(__file__).resolve().parent.parent


def build_tiny_pose_model(path: Path, side: int = 64, channels: int = 4, layers: int = 1) -> Path:
    """An ONNX model in worker.py's format: (1, 3, side, side) → (1, 33, 3). Convolutions then a
    mean and a dense layer with a sigmoid: the keypoints depend on every pixel; `channels` and
    `layers` set its cost per frame (the kill test needs chunks that take a while)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    nodes, inits = [], []
    prev, prev_c = "image", 3
    for i in range(layers):
        w = numpy_helper.from_array(rng.normal(0, 0.3, (channels, prev_c, 3, 3)).astype(np.float32), f"w{i}")
        inits.append(w)
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"]))
        prev, prev_c = f"r{i}", channels
    nodes.append(helper.make_node("ReduceMean", [prev], ["m"], axes=[2, 3], keepdims=0))
    inits.append(numpy_helper.from_array(rng.normal(0, 2, (prev_c, 99)).astype(np.float32), "dense"))
    inits.append(numpy_helper.from_array(np.array([1, 33, 3], np.int64), "shape"))
    nodes += [
        helper.make_node("MatMul", ["m", "dense"], ["d"]),
        helper.make_node("Sigmoid", ["d"], ["s"]),
        helper.make_node("Reshape", ["s", "shape"], ["keypoints"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_pose",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, [1, 33, 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def write_sessions(
    root: Path, sessions: int = 2, cameras: int = 4, frames: int = 48, gop: int = 8, size=(96, 128)
) -> list[Path]:
    """Synced sessions of moving noise (I420, libx264, a keyframe every `gop` frames)."""
    out = []
    h, w = size
    for s in range(sessions):
        session = root / f"session{s}"
        pictures = {}
        for c in range(cameras):
            rng = np.random.default_rng(100 * s + c)
            base = rng.integers(0, 255, (h * 3 // 2, w + frames), np.uint8)
            pictures[f"cam{c}"] = [np.ascontiguousarray(base[:, k : k + w]) for k in range(frames)]
        write_synced_session(session, pictures, fps=30, gop=gop)
        out.append(session)
    return out


def npz_members(path: Path) -> dict[str, bytes]:
    """An .npz's members (the .npy bytes): equal members = equal arrays, dtypes and shapes (the zip
    itself also stores each member's write time, which differs between any two runs)."""
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in sorted(z.namelist())}


def outputs_of(sessions: list[Path], relative: list[str]) -> dict[str, bytes | dict]:
    found = {}
    for session in sessions:
        for rel in relative:
            for f in sorted(session.glob(rel)):
                key = f"{session.name}/{f.relative_to(session)}"
                found[key] = npz_members(f) if f.suffix == ".npz" else f.read_bytes()
    return found


class LoopbackRay:
    """`ray start --head` and `ray start --address` (a second node), each with 1 CPU, inside a
    fresh network namespace with only `lo` up; `run(cmd)` runs a command in the namespace."""

    def __init__(self, name: str, port: int = 6390, cpus: int = 1, nodes: int = 2) -> None:
        self.ns, self.port, self.cpus, self.nodes = name, port, cpus, nodes
        self.address = f"127.0.0.1:{port}"
        self.temp = Path(f"/tmp/{name}-ray")
        # A HOME of its own: a local `ray.init()` leaves ~/.ray/auth_token, which a later head node
        # picks up (and then refuses a second node that does not send it).
        self.env = {
            **os.environ,
            **RAY_ENV,
            "PYTHONPATH": f"{ROOT}:{ROOT / 'pi-deploy'}",
            "HOME": str(self.temp / "home"),
        }
        self.ray = str(Path(sys.executable).with_name("ray"))

    def ns_cmd(self, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *cmd]

    def run(self, *cmd: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            self.ns_cmd(*cmd), env=self.env, capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
        return result

    def start(self) -> LoopbackRay:
        subprocess.run(["ip", "netns", "add", self.ns], check=True, capture_output=True)
        subprocess.run(["ip", "netns", "exec", self.ns, "ip", "link", "set", "lo", "up"], check=True)
        shutil.rmtree(self.temp, ignore_errors=True)
        (self.temp / "home").mkdir(parents=True)
        common = ["--num-cpus", str(self.cpus), "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
        self.run(
            self.ray,
            "start",
            "--head",
            "--port",
            str(self.port),
            "--include-dashboard",
            "false",
            "--temp-dir",
            str(self.temp),
            *common,
            timeout=180,
        )
        for _ in range(self.nodes - 1):
            # The same temp dir as the head: the node reads the cluster's session from it (a stale
            # /tmp/ray/session_latest of another local Ray would be taken instead).
            self.run(
                self.ray,
                "start",
                "--address",
                self.address,
                "--temp-dir",
                str(self.temp),
                *common,
                timeout=180,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            probe = self.run(
                sys.executable,
                "-c",
                "import ray; ray.init(address='auto', logging_level='ERROR'); "
                "print(sum(1 for n in ray.nodes() if n['Alive']))",
                check=False,
            )
            if probe.returncode == 0 and probe.stdout.strip().splitlines()[-1:] == [str(self.nodes)]:
                return self
            time.sleep(1)
        raise RuntimeError(f"the Ray cluster did not come up with {self.nodes} nodes")

    def stop(self) -> None:
        self.run(self.ray, "stop", "--force", check=False, timeout=120)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)
        shutil.rmtree(self.temp, ignore_errors=True)
