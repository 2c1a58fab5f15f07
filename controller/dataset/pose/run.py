"""`syncrig pose`: 2D keypoints for every synced frame of every camera → `pose2d/<cam>.npz`.

The model runs in a worker process inside the pose side environment (pose/env.py,
pose/worker.py). The parent decodes `synced/<cam>.mp4` with PyAV and streams raw RGB frames to the
worker over a pipe: the side environment stays lean (no PyAV there), and decoding the next frame
overlaps with inference on the other core. Frames that the synced output repeats (filled) are
decoded but not estimated. Every `checkpoint_every` frames the keypoints so far go to
`pose2d/.<cam>.partial.npz` (with the video's size/mtime), so an interrupted run resumes where it
stopped; a camera whose `pose2d/<cam>.npz` matches its video is skipped unless `force`.
"""

from __future__ import annotations

import contextlib
import json
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from controller.dataset.pose.env import WORKER, ensure_pose_env
from controller.dataset.pose.keypoints import GROUPS, KEYPOINT_NAMES
from controller.dataset.pose.pose2d import Pose2D, Pose2DError, read_synced_frames
from controller.progress import Progress
from controller.session.synced import NotSynced, synced_cameras
from syncrig_agent.contract.layout import SessionLayout

K = len(KEYPOINT_NAMES)
RESULT_BYTES = 8 + K * 3 * 4
RESET_TAG = -2  # worker.py's end of a sequence (the worker stays up, tracking state dropped)


class PoseError(RuntimeError):
    pass


class PoseWorker:
    """One worker process for frames of one size: `estimate(frames)` yields (tag, (K, 3) array)."""

    def __init__(
        self,
        python: Path,
        width: int,
        height: int,
        static_image_mode: bool = False,
        launcher: list[str] | None = None,
        backend: dict | None = None,
    ) -> None:
        """`launcher`: a command prefix for the worker (the tests run it under `unshare --net` to
        prove it needs no network). `backend`: extra configuration for worker.py (the ONNX backend:
        {"backend": "onnx", "model": path, "providers": [...]}); None: MediaPipe."""
        self.width, self.height = width, height
        self._log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [*(launcher or []), str(python), str(WORKER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        config = {"width": width, "height": height, "static_image_mode": static_image_mode, **(backend or {})}
        self._send(json.dumps(config).encode() + b"\n")
        line = self.proc.stdout.readline()
        if not line:
            raise PoseError(f"the pose worker did not start:\n{self.log_tail()}")
        self.info = json.loads(line)
        sizes = tuple(self.info["groups"].values())
        if sizes != tuple(len(g) for g in GROUPS):
            raise PoseError(f"the pose worker reports groups {self.info['groups']}, expected keypoints.py's")
        self.worker_error: BaseException | None = None

    def _send(self, data: bytes) -> None:
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise PoseError(f"the pose worker exited:\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 15) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def estimate(
        self, frames: Iterable[tuple[int, np.ndarray]], keep_open: bool = False
    ) -> Iterator[tuple[int, np.ndarray]]:
        """frames: (tag ≥ 0, RGB uint8 (H, W, 3)); results come back in order, as they are ready.
        Frames are written from a thread, so the next one is decoded while the worker infers.
        keep_open: end with RESET instead of closing the stream, so the same worker (and its loaded
        model) can estimate another sequence, starting from a fresh tracking state."""
        sent: list[int] = []
        done = threading.Event()

        def feed() -> None:
            try:
                for tag, rgb in frames:
                    if rgb.shape != (self.height, self.width, 3):
                        raise PoseError(
                            f"frame {tag} is {rgb.shape}, worker expects {(self.height, self.width, 3)}"
                        )
                    sent.append(tag)
                    self.proc.stdin.write(
                        struct.pack("<q", tag) + np.ascontiguousarray(rgb, np.uint8).tobytes()
                    )
                self.proc.stdin.write(struct.pack("<q", RESET_TAG if keep_open else -1))
                self.proc.stdin.flush()
            except BaseException as exc:  # noqa: BLE001 - reported by the reading side
                self.worker_error = exc
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            finally:
                done.set()

        feeder = threading.Thread(target=feed, name="pose-feed", daemon=True)
        feeder.start()
        received = 0
        while True:
            if not keep_open and done.is_set() and received >= len(sent):
                break
            data = self.proc.stdout.read(RESULT_BYTES)
            if not data:
                break
            if len(data) != RESULT_BYTES:
                raise PoseError(f"the pose worker sent a short result:\n{self.log_tail()}")
            (tag,) = struct.unpack("<q", data[:8])
            if tag == RESET_TAG:
                break
            received += 1
            yield tag, np.frombuffer(data[8:], dtype="<f4").reshape(K, 3).copy()
        feeder.join()
        if isinstance(self.worker_error, PoseError):
            raise self.worker_error
        if self.worker_error is not None and not isinstance(self.worker_error, BrokenPipeError):
            raise PoseError(f"feeding the pose worker failed: {self.worker_error}")
        if received < len(sent):
            raise PoseError(
                f"the pose worker stopped after {received}/{len(sent)} frames:\n{self.log_tail()}"
            )

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> PoseWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def estimate_images(
    images: list[np.ndarray],
    python: Path | None = None,
    static: bool = True,
    launcher: list[str] | None = None,
) -> tuple[np.ndarray, dict]:
    """2D keypoints (N, K, 3) of RGB images of one size (photos: static_image_mode) + model info."""
    python = python or ensure_pose_env()
    h, w = images[0].shape[:2]
    with PoseWorker(python, w, h, static_image_mode=static, launcher=launcher) as worker:
        out = dict(worker.estimate(enumerate(images)))
        info = worker.info
    return np.stack([out[i] for i in range(len(images))]), info


def pose_signature(video: Path, frames: int) -> dict:
    st = video.stat()
    return {"video_bytes": st.st_size, "video_mtime_ns": st.st_mtime_ns, "frames": frames}


def pose_camera(
    session: Path,
    camera: str,
    python: Path,
    progress: Progress | None = None,
    checkpoint_every: int = 200,
    force: bool = False,
    stop_after: int | None = None,
) -> dict:
    """Estimate one camera; return a summary. `stop_after` (tests, benchmarks) stops after that many
    estimated frames, leaving the checkpoint as an interrupted run would."""
    import av

    sf = read_synced_frames(session, camera)
    layout = SessionLayout(session)
    final, partial_path = layout.pose2d_file(camera), layout.pose2d_partial(camera)
    sig = pose_signature(sf.video, len(sf.row))
    if final.is_file() and not force:
        try:
            if Pose2D.load(final).meta.get("source") == sig:
                return {"camera": camera, "status": "up to date", "frames": int((~sf.filled).sum())}
        except Pose2DError:
            pass
    todo = np.flatnonzero(~sf.filled)  # output frames to estimate, in order
    kp = np.full((todo.size, K, 3), np.nan, np.float32)
    kp[..., 2] = 0
    done = 0
    info: dict = {}
    if partial_path.is_file() and not force:
        try:
            part = Pose2D.load(partial_path)
            if part.meta.get("source") == sig and len(part.rows) <= todo.size:
                done = len(part.rows)
                kp[:done] = part.keypoints
                info = part.meta
        except Pose2DError:
            done = 0
    started, estimated = time.monotonic(), 0

    def save(n: int, path: Path, meta: dict) -> None:
        Pose2D(camera, kp[:n], sf.row[todo[:n]], sf.capture_ns[todo[:n]], KEYPOINT_NAMES, size, meta).save(
            path
        )

    with av.open(str(sf.video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        size = (stream.codec_context.width, stream.codec_context.height)
        want = set(todo[done:].tolist())
        position = {int(f): i for i, f in enumerate(todo)}
        last = (
            int(todo[min(done + stop_after, todo.size) - 1]) if stop_after is not None and todo.size else None
        )

        def frames() -> Iterator[tuple[int, np.ndarray]]:
            for index, frame in enumerate(container.decode(stream)):
                if index in want:
                    yield index, frame.to_ndarray(format="rgb24")
                if last is not None and index >= last:
                    return

        if want:
            with PoseWorker(python, size[0], size[1]) as worker:
                meta = {k: v for k, v in worker.info.items() if k != "groups"}
                meta["source"] = sig
                last_save = time.monotonic()
                for tag, result in worker.estimate(frames()):
                    kp[position[tag]] = result
                    done = position[tag] + 1
                    estimated += 1
                    if progress is not None:
                        progress(done / todo.size, f"{camera}: frame {done}/{todo.size}")
                    if estimated % checkpoint_every == 0 or time.monotonic() - last_save > 30:
                        save(done, partial_path, meta)
                        last_save = time.monotonic()
                info = meta
        if done < todo.size:
            save(done, partial_path, info)
            return {"camera": camera, "status": "interrupted", "frames": done, "of": int(todo.size)}
    info["source"] = sig
    save(todo.size, final, info)
    partial_path.unlink(missing_ok=True)
    elapsed = time.monotonic() - started
    return {
        "camera": camera,
        "status": "done",
        "frames": int(todo.size),
        "estimated_now": estimated,
        "seconds": round(elapsed, 2),
        "fps": round(estimated / elapsed, 2) if elapsed > 0 and estimated else None,
        "unavailable_groups": info.get("unavailable_groups", []),
        "model": info.get("model"),
    }


def pose_session(
    session: Path,
    cameras: list[str] | None = None,
    progress: Progress | None = None,
    say: Callable[[str], None] | None = None,
    force: bool = False,
) -> list[dict]:
    session = Path(session)
    try:
        names = synced_cameras(session)
    except NotSynced as exc:
        raise PoseError(str(exc)) from None
    if cameras:
        unknown = [c for c in cameras if c not in names]
        if unknown:
            raise PoseError(f"unknown camera(s) {', '.join(unknown)}; this session has {', '.join(names)}")
    selected = cameras or names
    for cam in selected:
        read_synced_frames(session, cam)  # every camera's synced output exists, before the long part
    python = ensure_pose_env(say=say)
    results = []
    for i, cam in enumerate(selected):

        def cam_progress(f: float, msg: str, i: int = i) -> None:
            if progress is not None:
                progress((i + f) / len(selected), msg)

        results.append(pose_camera(session, cam, python, progress=cam_progress, force=force))
    return results


if __name__ == "__main__":  # pragma: no cover - manual use: python -m controller.dataset.pose.run SESSION
    print(json.dumps(pose_session(Path(sys.argv[1])), indent=2))
