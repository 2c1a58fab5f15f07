"""ChArUco detection per camera per synced instant.

Reads a synced session (`syncrig sync`: synced/match.csv, synced/<cam>.mp4 + .map.csv), decodes
every camera's synced output, maps each output frame to its match row, and runs OpenCV's
CharucoDetector on it. Its corners are already sub-pixel: the detector refines every interpolated
corner with cornerSubPix (a second pass only added error on rendered ground truth). Views with at
least MIN_CORNERS corners are kept; filled frames (`--fill repeat`: a repeat standing in for a
dropped instant) are skipped, they show another instant. Results go to
calibration/detections/<cam>.npz (CameraDetections) and the spec to calibration/board.json.

The board spec must match the printed board: what the frames show is gathered as it goes and
judged by `board.check` over every camera together (a clear BoardMismatchError, not a silent bad
fit). A camera whose frames clearly do not fit stops early, and so do the others; if the session as a
whole then supports the spec after all, it is scanned again in full.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np

from controller.dataset.board.check import (
    BOARD_MARKERS,
    MIN_CORNERS,
    SAMPLE_FRAMES,
    BoardEvidence,
    BoardMismatchError,
    DetectionError,
    check_board,
)
from controller.dataset.board.detections import CameraDetections
from controller.dataset.board.spec import BoardSpec
from controller.pipeline.outputs import read_map_csv
from controller.progress import CountProgress
from controller.session.synced import NotSynced, synced_cameras
from syncrig_agent.contract.layout import SessionLayout

__all__ = ["BoardMismatchError", "DetectionError", "MIN_CORNERS", "detect_session"]


@dataclass
class CameraScan(BoardEvidence):
    camera: str = ""
    detections: CameraDetections | None = None
    stopped_early: bool = False  # the spec clearly does not fit (or another camera found so)
    may_stop_early: bool = True  # False: scan every frame whatever they show


def read_rows_filled(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(match row, filled) of every output frame of a synced output's map."""
    try:
        mapping = read_map_csv(path)
    except (OSError, ValueError) as exc:
        raise DetectionError(f"cannot read {path}: {exc}") from None
    return mapping["row"], mapping["filled"].astype(bool)


def even_sample_frames(frames: int) -> set[int]:
    """The output frames kept for diagnosing a mismatch (SAMPLE_FRAMES, spread over the video)."""
    return set(np.linspace(0, max(0, frames - 1), SAMPLE_FRAMES).round().astype(int).tolist())


def board_detector(spec: BoardSpec) -> cv2.aruco.CharucoDetector:
    return cv2.aruco.CharucoDetector(spec.cv_board())


def _scan_camera(
    session: Path,
    camera: str,
    spec: BoardSpec,
    tick: Callable[[int], None],
    stop: threading.Event,
    may_stop_early: bool = True,
) -> CameraScan:
    synced = SessionLayout(session).synced
    video, map_path = synced.video(camera), synced.map(camera)
    rows, filled = read_rows_filled(map_path)
    detector = board_detector(spec)
    even = even_sample_frames(len(rows))
    scan = CameraScan(camera=camera, may_stop_early=may_stop_early)
    try:
        container = av.open(str(video))
    except (OSError, av.FFmpegError) as exc:
        raise DetectionError(f"cannot open {video}: {exc}") from None
    with container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = enumerate(f.to_ndarray(format="gray") for f in container.decode(stream))
        try:
            scan_frames(frames, scan, rows, filled, detector, spec, even, tick, stop, video, map_path)
        except av.FFmpegError as exc:
            raise DetectionError(f"cannot decode {video}: {exc}") from None
    if scan.stopped_early:
        return scan
    if scan.frames != len(rows):
        raise DetectionError(f"{video} has {scan.frames} frames but {map_path.name} has {len(rows)} rows")
    return scan


def scan_frames(
    frames: Iterable[tuple[int, np.ndarray]],
    scan: CameraScan,
    rows: np.ndarray,
    filled: np.ndarray,
    detector: cv2.aruco.CharucoDetector,
    spec: BoardSpec,
    even: set[int],
    tick: Callable[[int], None],
    stop: threading.Event,
    video: Path,
    map_path: Path,
) -> None:
    """Detect the board in each (output frame index, gray picture) of one synced output (all of
    it, or a chunk: the cluster's `syncrig process`), filling `scan`."""
    board_ids = spec.marker_count
    out_rows: list[np.ndarray] = []
    out_ids: list[np.ndarray] = []
    out_xy: list[np.ndarray] = []
    size = (0, 0)
    for k, gray in frames:
        if k >= len(rows):
            raise DetectionError(f"{video} has more frames than {map_path.name} has rows ({len(rows)})")
        size = (gray.shape[1], gray.shape[0])
        scan.frames += 1
        if k in even:
            scan.even_samples.append(gray)
        if filled[k]:
            tick(1)
            continue
        corners, ids, marker_corners, marker_ids = detector.detectBoard(gray)
        if marker_ids is not None:
            marker_ids = marker_ids.ravel()
            foreign = marker_ids[marker_ids >= board_ids]
            own = len(marker_ids) - len(foreign)
            # Only frames showing a board (several markers) count: a lone marker-like blob
            # elsewhere in the picture is no evidence about the board.
            shows_board = len(marker_ids) >= BOARD_MARKERS
            if len(foreign) and shows_board:
                scan.foreign_frames += 1
                scan.foreign_ids.update(int(i) for i in set(foreign.tolist()))
            n_corners = 0 if ids is None else len(ids)
            if own >= BOARD_MARKERS:
                scan.board_frames += 1
                if n_corners == 0:  # a few corners: a partial view, not a layout that does not fit
                    scan.failed_frames += 1
            if shows_board and (len(foreign) or n_corners == 0):
                scan.keep_sample((gray, marker_corners, marker_ids.reshape(-1, 1)))
            if n_corners >= MIN_CORNERS:
                scan.views += 1
                out_rows.append(np.full(n_corners, rows[k], dtype=np.int64))
                out_ids.append(ids.ravel().astype(np.int32))
                out_xy.append(corners.reshape(-1, 2).astype(np.float64))
        tick(1)
        if scan.may_stop_early and scan.clearly_mismatched():
            stop.set()
        if stop.is_set():
            scan.stopped_early = True
            break
    scan.detections = CameraDetections(
        scan.camera,
        size,
        np.concatenate(out_rows) if out_rows else np.zeros(0, np.int64),
        np.concatenate(out_ids) if out_ids else np.zeros(0, np.int32),
        np.concatenate(out_xy) if out_xy else np.zeros((0, 2)),
    )


def detection_cameras(session: Path) -> list[str]:
    try:
        cameras = synced_cameras(session)
    except NotSynced as exc:
        raise DetectionError(str(exc)) from None
    synced = SessionLayout(session).synced
    # A camera with no matched frame gets no synced output (sync flags it): nothing to detect.
    present = [c for c in cameras if synced.video(c).is_file()]
    missing = [c for c in present if not synced.map(c).is_file()]
    if missing:
        raise DetectionError(
            f"synced outputs without their .map.csv: {', '.join(missing)}; run `syncrig sync` again"
        )
    if not present:
        raise DetectionError(f"{session}: no synced outputs (synced/<cam>.mp4); run `syncrig sync {session}`")
    return present


def detect_session(
    session_dir: Path, spec: BoardSpec, progress: CountProgress | None = None
) -> dict[str, CameraDetections]:
    """Detect the board in every synced frame of every camera; write the detections and the spec
    (calibration/detections/<cam>.npz, calibration/board.json) and return them by camera.

    progress(frames done, frames total). Raises DetectionError (session not synced, unreadable,
    no board anywhere) or BoardMismatchError (the footage shows a board that does not fit `spec`)."""
    return scan_session(session_dir, spec, progress)


def scan_session(
    session_dir: Path, spec: BoardSpec, progress: CountProgress | None = None, workers: int | None = None
) -> dict[str, CameraDetections]:
    """detect_session with a choice of worker threads (default: one per camera, up to the CPUs;
    decoding and detection release the GIL, so cameras run in parallel)."""
    session = Path(session_dir)
    spec = spec.validate()
    if spec.is_checkerboard:
        raise DetectionError(
            f"the {spec.describe()} gives each camera's intrinsics (`syncrig intrinsics`); finding the board "
            "in a session's synced frames (extrinsics) needs a ChArUco board: its corners are told apart"
        )
    cameras = detection_cameras(session)
    total = 0
    for cam in cameras:
        rows, _filled = read_rows_filled(SessionLayout(session).synced.map(cam))
        total += len(rows)
    done = 0
    lock = threading.Lock()

    def tick(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            if progress is not None:
                progress(done, total)

    workers = workers or min(len(cameras), os.cpu_count() or 1)

    def scan_all(may_stop_early: bool) -> tuple[list[CameraScan], bool]:
        stop = threading.Event()

        def scan(camera: str) -> CameraScan:
            try:
                return _scan_camera(session, camera, spec, tick, stop, may_stop_early)
            except BaseException:
                stop.set()  # the other cameras need not finish: the session fails anyway
                raise

        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="charuco") as pool:
                return list(pool.map(scan, cameras)), stop.is_set()
        return [scan(cam) for cam in cameras], stop.is_set()

    scans, stopped = scan_all(may_stop_early=True)
    check_board(spec, scans)  # the verdict weighs every camera's frames together
    if stopped or any(s.stopped_early for s in scans):
        # One camera's first frames spoke against the spec, yet the session as a whole supports
        # it (that camera saw the board edge-on, say): scan everything, with no early stop.
        done = 0
        scans, stopped = scan_all(may_stop_early=False)
    return save_scans(session, spec, scans, stopped=stopped)


def save_scans(
    session: Path, spec: BoardSpec, scans: list[CameraScan], stopped: bool = False
) -> dict[str, CameraDetections]:
    """Judge the cameras' evidence against the spec (BoardMismatchError: the verdict weighs every
    camera's frames together), then write the spec and every camera's detections. Shared by
    detect_session and the cluster's chunked detection."""
    check_board(spec, scans)
    if stopped or any(s.stopped_early for s in scans):
        # unreachable: scans that stopped early are redone in full above; never save a partial scan
        raise DetectionError("detection stopped early without a verdict")
    layout = SessionLayout(session)
    spec.save(layout.board_file)
    for scan in scans:
        scan.detections.save(layout.detections_file(scan.camera))
    return {scan.camera: scan.detections for scan in scans}
