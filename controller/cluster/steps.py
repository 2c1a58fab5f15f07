"""The dataset steps as units of work for `syncrig process`, reusing each step's own functions.

- Chunked steps (detect, pose) run per keyframe-aligned chunk of each camera's synced output
  (chunks.py): `ChunkInput` is what a worker needs (the chunk's packets, or its video's path on
  storage every node sees, plus the chunk's match rows); the results merge in chunk order into the
  very files the serial commands write (`syncrig detect`, `syncrig pose`).
- Whole-session steps (sync, calibrate, triangulate, export) call the serial use case as is.

Pose chunks start from a fresh tracking state (worker.py's RESET), wherever and in whatever order
they run, so the merged result depends on the chunk plan only, never on the scheduling.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.cluster.chunks import Chunk, ChunkPackets, decode_chunk, plan_chunks, read_chunk
from controller.dataset.board.detect import (
    CameraScan,
    board_detector,
    detection_cameras,
    even_sample_frames,
    save_scans,
    scan_frames,
)
from controller.dataset.board.detections import CameraDetections
from controller.dataset.board.spec import BoardSpec
from controller.dataset.pose.keypoints import KEYPOINT_NAMES
from controller.dataset.pose.pose2d import Pose2D, read_synced_frames
from controller.dataset.pose.run import PoseError, PoseWorker
from syncrig_agent.contract.layout import SessionLayout

STEPS = ("sync", "detect", "calibrate", "pose", "triangulate", "export")
CHUNKED_STEPS = ("detect", "pose")


class StepError(RuntimeError):
    """A step cannot run on a session; the message names the session, step and what is missing."""


@dataclass(frozen=True)
class PoseModel:
    """Which estimator the pose workers run: MediaPipe (CPU, the default) or an ONNX model on
    ONNX Runtime's CPU or CUDA execution provider."""

    backend: str = "mediapipe"  # mediapipe | onnx
    model: Path | None = None
    device: str = "cpu"  # cpu | cuda (onnx only)

    def worker_config(self) -> dict | None:
        if self.backend != "onnx":
            return None
        providers = ["CPUExecutionProvider"]
        if self.device == "cuda":
            providers.insert(0, "CUDAExecutionProvider")
        return {"backend": "onnx", "model": str(self.model), "providers": providers}

    def python(self) -> Path:
        """The interpreter that runs worker.py: the pose side environment for MediaPipe; this one for
        ONNX (onnxruntime installs beside SyncRig)."""
        if self.backend == "onnx":
            return Path(sys.executable)
        from controller.dataset.pose.env import ensure_pose_env

        return ensure_pose_env()

    def signature(self) -> dict:
        if self.backend != "onnx":
            return {"backend": self.backend}
        digest = hashlib.sha256(Path(self.model).read_bytes()).hexdigest()
        return {"backend": "onnx", "model_sha256": digest, "device": self.device}


@dataclass(frozen=True)
class ChunkTask:
    session: Path
    step: str
    camera: str
    chunk: Chunk
    video: Path
    rows: np.ndarray = field(repr=False)  # match row of each of the chunk's frames
    filled: np.ndarray = field(repr=False)  # a repeat standing in for a dropped instant
    even: frozenset[int] = frozenset()  # detect: frames (chunk-relative) kept as mismatch evidence
    video_frames: int = 0

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (str(self.session), self.step, self.camera, self.chunk.index)

    def state_path(self) -> Path:
        return SessionLayout(self.session).process_chunk(self.step, self.camera, self.chunk.index)

    def signature(self, params: dict) -> str:
        """What the chunk's result depends on: its video (size, mtime), its place, the step's options."""
        st = self.video.stat()
        return json.dumps(
            {
                "video_bytes": st.st_size,
                "video_mtime_ns": st.st_mtime_ns,
                "chunk": [self.chunk.first_frame, self.chunk.frames],
                "params": params,
            },
            sort_keys=True,
        )


def step_cameras(session: Path, step: str) -> list[str]:
    from controller.session.synced import NotSynced, synced_cameras

    try:
        if step == "detect":
            return detection_cameras(session)
        return synced_cameras(session)
    except (NotSynced, RuntimeError) as exc:
        raise StepError(f"{session}: {step}: {exc}") from None


def plan_session(session: Path, step: str, min_frames: int) -> list[ChunkTask]:
    """Every chunk of every camera of one session for a chunked step, in merge order."""
    tasks = []
    for camera in step_cameras(session, step):
        sf = read_synced_frames(session, camera)
        chunks = plan_chunks(sf.video, min_frames)
        total = sum(c.frames for c in chunks)
        if total != len(sf.row):
            raise StepError(f"{sf.video} has {total} frames but its map has {len(sf.row)} rows")
        even = even_sample_frames(len(sf.row))
        for c in chunks:
            tasks.append(
                ChunkTask(
                    session,
                    step,
                    camera,
                    c,
                    sf.video,
                    sf.row[c.first_frame : c.end_frame],
                    sf.filled[c.first_frame : c.end_frame],
                    frozenset(e - c.first_frame for e in even if c.first_frame <= e < c.end_frame),
                    len(sf.row),
                )
            )
    return tasks


def chunk_frames(task: ChunkTask, packets: ChunkPackets | None, fmt: str):
    """(chunk-relative frame index, picture): from the packets sent, else from the video's path."""
    data = packets if packets is not None else read_chunk(task.video, task.chunk)
    first = task.chunk.first_frame
    return ((k - first, picture) for k, picture in decode_chunk(data, task.chunk, fmt))


# -- detect --------------------------------------------------------------------------------------
def detect_chunk(task: ChunkTask, packets: ChunkPackets | None, spec: BoardSpec) -> CameraScan:
    scan = CameraScan(camera=task.camera)
    scan_frames(
        chunk_frames(task, packets, "gray"),
        scan,
        task.rows,
        task.filled,
        board_detector(spec),
        spec,
        set(task.even),
        lambda _n: None,
        threading.Event(),
        task.video,
        SessionLayout(task.session).synced.map(task.camera),
    )
    return scan


def merge_detect(session: Path, spec: BoardSpec, results: dict[str, list[CameraScan]]) -> list[str]:
    """Chunk scans (in chunk order, per camera) → the camera scans detect_session makes → saved."""
    merged = []
    for camera, scans in results.items():
        total = CameraScan(camera=camera)
        for s in scans:
            total.frames += s.frames
            total.board_frames += s.board_frames
            total.failed_frames += s.failed_frames
            total.views += s.views
            total.foreign_ids.update(s.foreign_ids)
            total.foreign_frames += s.foreign_frames
            for sample in s.failed_samples:
                total.keep_sample(sample)
            total.even_samples += s.even_samples
            total.stopped_early |= s.stopped_early
        dets = [s.detections for s in scans if s.detections is not None]
        size = next((d.image_size for d in dets if d.image_size != (0, 0)), (0, 0))
        total.detections = CameraDetections(
            camera,
            size,
            np.concatenate([d.row for d in dets]) if dets else np.zeros(0, np.int64),
            np.concatenate([d.corner_id for d in dets]) if dets else np.zeros(0, np.int32),
            np.concatenate([d.xy for d in dets]) if dets else np.zeros((0, 2)),
        )
        merged.append(total)
    save_scans(session, spec, merged)
    layout = SessionLayout(session)
    return [str(layout.board_file)] + [str(layout.detections_file(s.camera)) for s in merged]


# -- pose ------------------------------------------------------------------------------------------
@dataclass
class PoseChunkResult:
    frames: np.ndarray  # output frame indices estimated (the chunk's frames that are not filled)
    keypoints: np.ndarray  # (n, K, 3)
    info: dict  # the model's description (worker.py)
    image_size: tuple[int, int]


class PoseEstimator:
    """What a pose actor holds: one worker process per frame size, each with its model loaded,
    used chunk after chunk (RESET between chunks)."""

    def __init__(self, model: PoseModel) -> None:
        self.model = model
        self.python = model.python()
        self.workers: dict[tuple[int, int], PoseWorker] = {}

    def worker_pids(self) -> list[int]:
        return [w.proc.pid for w in self.workers.values()]

    def run(self, task: ChunkTask, packets: ChunkPackets | None) -> PoseChunkResult:
        want = ((k, rgb) for k, rgb in chunk_frames(task, packets, "rgb24") if not task.filled[k])
        first = next(want, None)
        if first is None:
            empty = np.zeros((0, len(KEYPOINT_NAMES), 3), np.float32)
            return PoseChunkResult(np.zeros(0, np.int64), empty, {}, (0, 0))
        size = (first[1].shape[1], first[1].shape[0])
        worker = self.workers.get(size)
        if worker is None:
            worker = PoseWorker(self.python, size[0], size[1], backend=self.model.worker_config())
            self.workers[size] = worker

        def frames():
            yield first
            yield from want

        try:
            out = list(worker.estimate(frames(), keep_open=True))
        except (PoseError, OSError):
            self.workers.pop(size).close()  # a fresh worker for the retry
            raise
        local = np.array([k for k, _ in out], np.int64)
        expected = np.flatnonzero(~task.filled)
        if not np.array_equal(local, expected):
            self.workers.pop(size).close()
            raise PoseError(f"{task.video} chunk {task.chunk.index}: the worker answered other frames")
        kp = np.stack([r for _, r in out]).astype(np.float32)
        info = {k: v for k, v in worker.info.items() if k != "groups"}
        return PoseChunkResult(local + task.chunk.first_frame, kp, info, size)

    def close(self) -> None:
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()


def merge_pose(session: Path, camera: str, results: list[PoseChunkResult]) -> list[str]:
    """Chunk results (in chunk order) → pose2d/<cam>.npz, as `syncrig pose` writes it."""
    from controller.dataset.pose.run import pose_signature

    sf = read_synced_frames(session, camera)
    todo = np.flatnonzero(~sf.filled)
    frames = np.concatenate([r.frames for r in results]) if results else np.zeros(0, np.int64)
    if not np.array_equal(frames, todo):
        raise StepError(f"{session}: pose {camera}: the chunks cover {frames.size} of {todo.size} frames")
    done = [r for r in results if r.frames.size]
    kp = np.concatenate([r.keypoints for r in done]) if done else np.zeros((0, len(KEYPOINT_NAMES), 3))
    info = dict(done[0].info) if done else {}
    info["source"] = pose_signature(sf.video, len(sf.row))
    info["chunks"] = {"count": len(results), "tracking": "restarted at each keyframe-aligned chunk"}
    size = done[0].image_size if done else (0, 0)
    path = SessionLayout(session).pose2d_file(camera)
    Pose2D(camera, kp.astype(np.float32), sf.row[todo], sf.capture_ns[todo], KEYPOINT_NAMES, size, info).save(
        path
    )
    return [str(path)]
