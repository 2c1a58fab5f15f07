"""`syncrig process`: the dataset steps over many sessions, on Ray or serially, resumable.

Steps run in pipeline order; within a step every session (and, for the chunked steps, every
chunk of every camera) is one unit of work. A finished chunk is saved at once under the session
(`process/<step>/<cam>/<chunk>.pkl`, with the signature of its inputs) and not recomputed by a
later run; the merge into the step's real outputs happens when all of a session's chunks are in,
in chunk order, so the outputs do not depend on where or in which order chunks ran.

The report, `<root>/process-report.json`, has one entry per unit of work (session, step, camera,
chunk, node, worker, seconds, frames, attempt, whether it was reused from an earlier run) and every
rerun with its reason.
"""

from __future__ import annotations

import functools
import json
import os
import pickle
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from controller.cluster.session_steps import is_done, run_session_step
from controller.cluster.steps import (
    CHUNKED_STEPS,
    STEPS,
    ChunkTask,
    PoseModel,
    StepError,
    merge_detect,
    merge_pose,
    plan_session,
)
from syncrig_agent.contract.layout import SessionLayout

# progress(session, step, units done, units total)
StepProgress = Callable[[Path, str, int, int], None]
REPORT_NAME = "process-report.json"


@dataclass
class ProcessOptions:
    steps: list[str] = field(default_factory=lambda: list(STEPS))
    address: str | None = None
    workers: int | None = None
    serial: bool = False
    data: str = "auto"  # auto | shared | object-store
    chunk_frames: int = 120  # a chunk holds at least this many frames (whole GOPs)
    pose_model: PoseModel = field(default_factory=PoseModel)
    board: object = None  # BoardSpec for detect (default: the session's calibration/board.json)
    export_format: str = "trc"
    max_attempts: int = 3


def is_session(path: Path) -> bool:
    layout = SessionLayout(path)
    return layout.manifest.is_file() or layout.synced.match_csv.is_file()


def find_sessions(paths: list[Path]) -> list[Path]:
    """Each path is a session, or a folder whose session subfolders are all taken (sorted)."""
    sessions: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise StepError(f"{path}: not a directory (expected a session or a folder of sessions)")
        if is_session(path):
            sessions.append(path)
            continue
        found = sorted(p for p in path.iterdir() if p.is_dir() and is_session(p))
        if not found:
            raise StepError(f"{path}: neither a session (session.json or a synced match table) nor holds any")
        sessions += found
    return list(dict.fromkeys(p.resolve() for p in sessions))


def report_path(paths: list[Path], sessions: list[Path]) -> Path:
    if len(paths) == 1 and not is_session(paths[0]):
        return paths[0].resolve() / REPORT_NAME
    return Path(os.path.commonpath([str(s.parent) for s in sessions])) / REPORT_NAME


def _load_state(task: ChunkTask, signature: str):
    try:
        with open(task.state_path(), "rb") as fh:
            saved = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        return None
    return saved if saved.get("signature") == signature else None


def _save_state(task: ChunkTask, signature: str, result, where: dict) -> None:
    path = task.state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump({"signature": signature, "result": result, "where": where}, fh)
    tmp.replace(path)


class Run:
    """One `syncrig process` run: state, report entries, progress."""

    def __init__(self, sessions: list[Path], options: ProcessOptions, backend, progress: StepProgress | None):
        self.sessions, self.options, self.backend = sessions, options, backend
        self.progress = progress or (lambda *_a: None)
        self.entries: list[dict] = []
        self.reruns: list[dict] = []
        self.steps: dict[str, dict] = {}

    def _entry(self, session: Path, step: str, camera: str | None, chunk: int | None, where: dict, **extra):
        self.entries.append(
            {
                "session": session.name,
                "step": step,
                "camera": camera,
                "chunk": chunk,
                "node": where.get("node"),
                "worker": where.get("worker"),
                "seconds": where.get("seconds"),
                "frames": where.get("frames"),
                "attempt": where.get("attempt", 1),
                "input_bytes": where.get("input_bytes", 0),
                **extra,
            }
        )

    def run_chunked(self, step: str) -> None:
        def params(session: Path) -> dict:
            if step == "pose":
                return self.options.pose_model.signature()
            return {"board": self._spec(session).as_dict()}

        plans = {s: plan_session(s, step, self.options.chunk_frames) for s in self.sessions}
        results: dict[tuple, object] = {}
        todo: list[ChunkTask] = []
        signatures: dict[tuple, str] = {}
        for session, tasks in plans.items():
            for task in tasks:
                signatures[task.key] = sig = task.signature(params(session))
                saved = _load_state(task, sig)
                if saved is None:
                    todo.append(task)
                    continue
                results[task.key] = saved["result"]
                self._entry(session, step, task.camera, task.chunk.index, saved["where"], reused=True)
        remaining = {s: sum(1 for t in todo if t.session == s) for s in self.sessions}
        for s in self.sessions:
            self.progress(s, step, len(plans[s]) - remaining[s], len(plans[s]))

        def done(task: ChunkTask, result, where: dict) -> None:
            _save_state(task, signatures[task.key], result, where)
            results[task.key] = result
            self._entry(task.session, step, task.camera, task.chunk.index, where, reused=False)
            remaining[task.session] -= 1
            total = len(plans[task.session])
            self.progress(task.session, step, total - remaining[task.session], total)
            if remaining[task.session] == 0:
                self._merge(task.session, step, plans[task.session], results)

        def failed(task: ChunkTask, attempt: int, error: str, retry: bool) -> None:
            self.reruns.append(
                {
                    "session": task.session.name,
                    "step": step,
                    "camera": task.camera,
                    "chunk": task.chunk.index,
                    "attempt": attempt,
                    "error": error,
                    "rerun": retry,
                }
            )

        from controller.cluster.engine import ChunkJob

        if step == "pose":
            self.backend.run_chunks(ChunkJob(step, model=self.options.pose_model), todo, done, failed)
        else:
            # One job per board spec (sessions filmed with different boards run as separate jobs).
            by_spec: dict[str, list[ChunkTask]] = defaultdict(list)
            for task in todo:
                by_spec[json.dumps(self._spec(task.session).as_dict(), sort_keys=True)].append(task)
            for tasks in by_spec.values():
                spec = self._spec(tasks[0].session)
                self.backend.run_chunks(ChunkJob(step, spec=spec), tasks, done, failed)
        for s in self.sessions:
            if remaining[s] == 0 and not any(t.session == s for t in todo):
                self._merge(s, step, plans[s], results)  # everything was reused

    def _spec(self, session: Path):
        from controller.dataset.calibrate import resolve_board

        return resolve_board(session, self.options.board)

    def _merge(self, session: Path, step: str, tasks: list[ChunkTask], results: dict) -> None:
        by_camera: dict[str, list] = defaultdict(list)
        for task in tasks:
            by_camera[task.camera].append(results[task.key])
        if step == "detect":
            merge_detect(session, self._spec(session), dict(by_camera))
        else:
            for camera, chunk_results in by_camera.items():
                merge_pose(session, camera, chunk_results)

    def run_session_step(self, step: str) -> None:
        todo = [s for s in self.sessions if not is_done(s, step, self.options.export_format)]
        for s in self.sessions:
            if s not in todo:
                self._entry(s, step, None, None, {"frames": 0, "seconds": 0}, reused=True)
            self.progress(s, step, 0 if s in todo else 1, 1)
        call = functools.partial(run_session_step, step=step, export_format=self.options.export_format)
        for session, result in zip(todo, self.backend.run_session_steps(step, todo, call), strict=True):
            self._entry(session, step, None, None, result, reused=False)
            self.progress(session, step, 1, 1)

    def run(self) -> dict:
        started = time.monotonic()
        for step in STEPS:
            if step not in self.options.steps:
                continue
            t0 = time.monotonic()
            if step in CHUNKED_STEPS:
                self.run_chunked(step)
            else:
                self.run_session_step(step)
            self.steps[step] = {"seconds": round(time.monotonic() - t0, 3)}
        return self.summary(time.monotonic() - started)

    def summary(self, seconds: float) -> dict:
        computed = [e for e in self.entries if not e.get("reused")]
        return {
            "backend": self.backend.name,
            "data": self.backend.data,
            "workers": self.backend.workers(),
            "nodes": sorted({e["node"] for e in computed if e["node"]}),
            "sessions": [s.name for s in self.sessions],
            "steps": self.steps,
            "seconds": round(seconds, 3),
            "units": len(self.entries),
            "computed": len(computed),
            "reused": len(self.entries) - len(computed),
            "reruns": self.reruns,
            "object_store_bytes": getattr(self.backend, "object_store_bytes", 0),
            "entries": self.entries,
        }


def _cameras(session: Path) -> list[str]:
    from controller.session.synced import NotSynced, synced_cameras

    try:
        return synced_cameras(session)
    except NotSynced:
        return []


def process(paths: list[Path], options: ProcessOptions, progress: StepProgress | None = None) -> dict:
    """Run the steps; write and return the report (with "report": its path)."""
    unknown = [s for s in options.steps if s not in STEPS]
    if unknown:
        raise StepError(f"--steps: unknown step(s) {', '.join(unknown)}; expected some of {','.join(STEPS)}")
    model = options.pose_model.model
    onnx = options.pose_model.backend == "onnx" and "pose" in options.steps
    if onnx and not (model and Path(model).is_file()):
        raise StepError(f"--pose-model: {options.pose_model.model}: no such ONNX model file")
    sessions = find_sessions(paths)
    from controller.cluster.engine import RayBackend, SerialBackend

    if options.serial:
        backend = SerialBackend()
    else:
        videos = (SessionLayout(s).synced.video(c) for s in sessions for c in _cameras(s))
        probe = next((v for v in videos if v.is_file()), None)
        backend = RayBackend(options.address, options.workers, options.data, probe, options.max_attempts)
    try:
        report = Run(sessions, options, backend, progress).run()
    finally:
        backend.close()
    path = report_path(paths, sessions)
    report["report"] = str(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(path)
    return report
