"""Where the units of work run: in this process one after another (`SerialBackend`, the reference
the cluster's outputs are compared with), or on Ray (`RayBackend`): a local Ray started bound to
127.0.0.1, or an existing cluster by address.

On Ray, chunked steps go to remote tasks (detect) or to pose actors, one per worker, each holding
its model (steps.PoseEstimator); whole-session steps go to remote tasks when every node sees the
sessions' storage, else they run on the driver. The driver keeps every worker busy with one
chunk at a time and retries a chunk whose worker died or failed (up to `max_attempts`), so every
rerun is known and reported. Ray itself retries nothing (max_retries=0, max_task_retries=0);
actors restart (max_restarts=-1) and the chunk goes to them again.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.cluster.chunks import read_chunk
from controller.cluster.steps import ChunkTask, PoseEstimator, PoseModel, detect_chunk

# on_done(task, result, where) / on_fail(task, attempt, error text, will_retry)
ChunkDone = Callable[[ChunkTask, Any, dict], None]
ChunkFailed = Callable[[ChunkTask, int, str, bool], None]


class ClusterError(RuntimeError):
    """Ray is missing, the cluster cannot be reached, or a chunk failed every attempt."""


@dataclass
class ChunkJob:
    step: str
    model: PoseModel | None = None  # pose
    spec: Any = None  # detect: the BoardSpec


def _where(started: float, frames: int, input_bytes: int = 0) -> dict:
    try:
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    except ImportError:
        node = "local"
    return {
        "node": node,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "seconds": round(time.monotonic() - started, 4),
        "frames": frames,
        "input_bytes": input_bytes,
    }


def _frames(task: ChunkTask, result: Any) -> int:
    return int(result.frames.size) if task.step == "pose" else int(task.chunk.frames)


class SerialBackend:
    """Every unit of work in this process, in plan order: the serial path."""

    name = "serial"
    data = "local"

    def __init__(self) -> None:
        self.nodes: list[str] = ["local"]

    def workers(self) -> int:
        return 1

    def run_chunks(
        self, job: ChunkJob, tasks: list[ChunkTask], on_done: ChunkDone, on_fail: ChunkFailed
    ) -> None:
        estimator = PoseEstimator(job.model) if job.step == "pose" else None
        try:
            for task in tasks:
                started = time.monotonic()
                if estimator is not None:
                    result = estimator.run(task, None)
                else:
                    result = detect_chunk(task, None, job.spec)
                on_done(task, result, _where(started, _frames(task, result)))
        finally:
            if estimator is not None:
                estimator.close()

    def run_session_steps(self, step: str, sessions: list[Path], call: Callable[[Path], dict]) -> list[dict]:
        out = []
        for session in sessions:
            started = time.monotonic()
            result = call(session)
            out.append({**result, **_where(started, result.get("frames", 0))})
        return out

    def close(self) -> None:
        pass


def _remote_detect(task: ChunkTask, packets, spec) -> tuple[Any, dict]:
    started = time.monotonic()
    scan = detect_chunk(task, packets, spec)
    return scan, _where(started, task.chunk.frames, packets.nbytes if packets is not None else 0)


def _remote_session_step(call: Callable[[Path], dict], session: Path) -> dict:
    started = time.monotonic()
    result = call(session)
    return {**result, **_where(started, result.get("frames", 0))}


def _can_see(path: str, size: int) -> bool:
    p = Path(path)
    return p.is_file() and p.stat().st_size == size


class PoseActor:
    """One per worker: holds a PoseEstimator (its model loaded in a worker process) across chunks."""

    def __init__(self, model: PoseModel) -> None:
        self.estimator = PoseEstimator(model)

    def pose(self, task: ChunkTask, packets) -> tuple[Any, dict]:
        started = time.monotonic()
        result = self.estimator.run(task, packets)
        nbytes = packets.nbytes if packets is not None else 0
        return result, _where(started, int(result.frames.size), nbytes)

    def pids(self) -> dict:
        return {"actor": os.getpid(), "pose_workers": self.estimator.worker_pids()}


class RayBackend:
    """Units of work on a Ray cluster (see the module doc)."""

    name = "ray"

    def __init__(
        self, address: str | None, workers: int | None, data: str, probe: Path | None, max_attempts: int = 3
    ) -> None:
        if not address and "RAY_AUTH_MODE" not in os.environ:
            # The local Ray's listeners face the network (Ray 2.60 takes the interface address
            # outside a loopback-only namespace) and Ray's token authentication is off by default:
            # anyone reaching them could run code. So it requires a token of this run's, never
            # stored; set before Ray is imported, which is when its C++ side reads it.
            os.environ["RAY_AUTH_MODE"] = "token"
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
        try:
            import ray
        except ImportError:
            raise ClusterError(
                "Ray is not installed: pip install 'syncrig[cluster]' (or run with --serial)"
            ) from None
        self.ray = ray
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            else:
                # A new Ray of its own ("local": not the latest cluster started on this machine),
                # asked to bind to loopback (Ray 2.60 still takes the interface address outside a
                # loopback-only network namespace: docs/CLUSTER.md); it requires this run's token.
                ray.init(
                    address="local",
                    num_cpus=workers or os.cpu_count(),
                    include_dashboard=False,
                    _node_ip_address="127.0.0.1",
                    log_to_driver=False,
                    logging_level="ERROR",
                )
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterError(f"cannot reach the Ray cluster at {address or 'local'}: {exc}") from None
        alive = [n for n in ray.nodes() if n.get("Alive")]
        self.nodes = [n["NodeID"] for n in alive]
        self.node_addresses = sorted({n["NodeManagerAddress"] for n in alive})
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self._workers = max(1, min(workers or cpus, cpus))
        self.max_attempts = max_attempts
        self.data = self._choose_data(data, probe)
        self._detect = ray.remote(num_cpus=1, max_retries=0)(_remote_detect)
        self._session = ray.remote(num_cpus=1, max_retries=0)(_remote_session_step)
        self._actor_class = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(PoseActor)
        self.object_store_bytes = 0
        self.actors: list = []

    def workers(self) -> int:
        return self._workers

    def _choose_data(self, data: str, probe: Path | None) -> str:
        """shared: workers read the videos from storage every node sees; object-store: the driver
        reads each chunk's packets and Ray ships them. auto: shared if a task pinned to each node
        sees `probe` (a video of the run) with its size."""
        if data != "auto":
            return data
        if probe is None:
            return "shared"
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        check = self.ray.remote(num_cpus=0, max_retries=0)(_can_see)
        size = probe.stat().st_size
        refs = [
            check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
                str(probe.resolve()), size
            )
            for node in self.nodes
        ]
        return "shared" if all(self.ray.get(refs, timeout=120)) else "object-store"

    def _packets(self, task: ChunkTask):
        if self.data != "object-store":
            return None
        packets = read_chunk(task.video, task.chunk)
        self.object_store_bytes += packets.nbytes
        return self.ray.put(packets)

    def run_chunks(
        self, job: ChunkJob, tasks: list[ChunkTask], on_done: ChunkDone, on_fail: ChunkFailed
    ) -> None:
        """Keep every worker busy with one chunk at a time. A chunk whose worker failed goes back to
        the front of the queue, to the next free actor; the failed actor is probed (a cheap call)
        and takes chunks again once Ray has restarted it."""
        ray = self.ray
        queue = [(t, 1) for t in reversed(tasks)]  # pop() from the end takes them in plan order
        pending: dict = {}  # ref → (task, attempt, actor) for chunks, (None, 0, actor) for probes
        free: list = []
        if job.step == "pose":
            self.actors = [self._actor_class.remote(job.model) for _ in range(min(self._workers, len(tasks)))]
            free = list(self.actors)

        def submit() -> None:
            while queue and (job.step != "pose" or free) and len(pending) < 2 * self._workers:
                task, attempt = queue.pop()
                packets = self._packets(task)
                if job.step == "pose":
                    actor = free.pop(0)
                    ref = actor.pose.remote(task, packets)
                else:
                    actor = None
                    ref = self._detect.remote(task, packets, job.spec)
                pending[ref] = (task, attempt, actor)

        try:
            submit()
            while any(task is not None for task, _a, _actor in pending.values()) or queue:
                ready, _ = ray.wait(list(pending), num_returns=1)
                ref = ready[0]
                task, attempt, actor = pending.pop(ref)
                try:
                    value = ray.get(ref)
                except ray.exceptions.RayError as exc:
                    if task is None:  # a probe: the actor is still restarting
                        time.sleep(0.2)
                        pending[actor.pids.remote()] = (None, 0, actor)
                        continue
                    retry = attempt < self.max_attempts
                    on_fail(task, attempt, _short(exc), retry)
                    if not retry:
                        raise ClusterError(
                            f"{task.session}: {task.step} {task.camera} chunk {task.chunk.index} failed "
                            f"{attempt} times; last: {_short(exc)}"
                        ) from None
                    queue.append((task, attempt + 1))
                    if actor is not None:
                        pending[actor.pids.remote()] = (None, 0, actor)
                else:
                    if actor is not None:
                        free.append(actor)  # after its chunk, or a probe that found it back
                    if task is not None:
                        result, where = value
                        where["attempt"] = attempt
                        on_done(task, result, where)
                submit()
        finally:
            for actor in self.actors:
                ray.kill(actor)  # frees its CPU for the next step's tasks
            self.actors = []

    def run_session_steps(self, step: str, sessions: list[Path], call: Callable[[Path], dict]) -> list[dict]:
        if self.data != "shared":
            return SerialBackend().run_session_steps(step, sessions, call)  # only the driver sees them
        refs = [self._session.remote(call, s) for s in sessions]
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as exc:
            raise exc.as_instanceof_cause() from None

    def close(self) -> None:
        self.ray.shutdown()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"[:300]
