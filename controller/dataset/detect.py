"""ChArUco detection per camera per synced instant, and board-mismatch detection.

Reads a synced session (`syncrig sync`: synced/match.csv, synced/<cam>.mp4 + .map.csv), decodes
every camera's synced output, maps each output frame to its match row, and runs OpenCV's
CharucoDetector on it. Its corners are already sub-pixel: the detector refines every interpolated
corner with cornerSubPix (a second pass only added error on rendered ground truth). Views with at
least MIN_CORNERS corners are kept; filled frames (`--fill repeat`: a repeat standing in for a
dropped instant) are skipped, they show another instant. Results go to
calibration/detections/<cam>.npz (CameraDetections) and the spec to calibration/board.json.

The board spec must match the printed board, and a mismatch is an error, not a silent bad fit:
- no markers of the spec's dictionary anywhere while another dictionary finds many → which one;
- markers with ids the spec's board does not have → the board has more squares than the spec;
- markers found but the ChArUco corners do not interpolate (OpenCV checks the markers' layout
  against the board) → wrong square counts or legacy-pattern flag; candidate layouts are tried on
  the failing frames to say which.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from syncrig_agent.ids import InvalidName, validate_camera_name

from ..pipeline.matching import read_match_csv
from . import layout
from .board import DICTIONARIES, BoardSpec
from .detections import CameraDetections

__all__ = ["BoardMismatchError", "DetectionError", "MIN_CORNERS", "detect_session"]

MIN_CORNERS = 6  # a view needs this many ChArUco corners to be kept (a homography needs 4, spread)
BOARD_MARKERS = 4  # a frame with this many of the board's markers shows the board
SAMPLE_FRAMES = 4  # frames per camera kept for diagnosing a mismatch (and at most twice that in all)
# A camera stops early (and the session is refused) once this many frames showed the board's
# markers and nearly all of them (EARLY_SHARE) did not fit the spec: no need to decode it all.
EARLY_FRAMES = 10
EARLY_SHARE = 0.8
# Dictionary families tried when the spec's finds nothing (a larger variant holds every id of the
# smaller ones: DICT_4X4_50's markers are DICT_4X4_250's first 50).
FAMILIES = ("DICT_4X4_250", "DICT_5X5_250", "DICT_6X6_250", "DICT_7X7_250", "DICT_ARUCO_ORIGINAL")

Progress = Callable[[int, int], None]


class DetectionError(RuntimeError):
    """The session cannot be searched for the board (not synced, unreadable outputs, no board)."""


class BoardMismatchError(DetectionError):
    """The footage shows a board that does not fit the board spec."""


@dataclass
class _CameraScan:
    camera: str
    detections: CameraDetections
    frames: int = 0
    board_frames: int = 0  # frames with ≥ BOARD_MARKERS of the board's own markers
    failed_frames: int = 0  # ... of which the ChArUco corners did not interpolate
    views: int = 0
    foreign_ids: Counter = field(default_factory=Counter)  # id → frames it was seen in
    foreign_frames: int = 0
    failed_samples: list = field(default_factory=list)  # (gray, marker corners, marker ids)
    even_samples: list = field(default_factory=list)  # gray frames spread over the recording
    stopped_early: bool = False  # the spec clearly does not fit (or another camera found so)

    def keep_sample(self, sample: tuple) -> None:
        """Keep the SAMPLE_FRAMES failing frames with the most markers (the best evidence)."""
        self.failed_samples.append(sample)
        if len(self.failed_samples) > SAMPLE_FRAMES:
            weakest = min(range(len(self.failed_samples)), key=lambda i: len(self.failed_samples[i][2]))
            del self.failed_samples[weakest]

    def clearly_mismatched(self) -> bool:
        bad = max(self.failed_frames, self.foreign_frames)
        return bad >= EARLY_FRAMES and bad >= EARLY_SHARE * max(self.board_frames, self.foreign_frames)


def _read_map(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(match row, filled) of every output frame of a synced output's .map.csv."""
    try:
        header = path.read_text(encoding="ascii").splitlines()[0].split(",")
        data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
        return data[:, header.index("row")], data[:, header.index("filled")].astype(bool)
    except (OSError, IndexError, ValueError) as exc:
        raise DetectionError(f"cannot read {path}: {exc}") from None


def _detector(spec: BoardSpec) -> cv2.aruco.CharucoDetector:
    return cv2.aruco.CharucoDetector(spec.cv_board())


def _scan_camera(
    session: Path, camera: str, spec: BoardSpec, tick: Callable[[int], None], stop: threading.Event
) -> _CameraScan:
    synced = session / "synced"
    video, map_path = synced / f"{camera}.mp4", synced / f"{camera}.map.csv"
    rows, filled = _read_map(map_path)
    detector = _detector(spec)
    even = set(np.linspace(0, max(0, len(rows) - 1), SAMPLE_FRAMES).round().astype(int).tolist())
    scan = _CameraScan(camera, CameraDetections(camera, (0, 0), [], [], np.zeros((0, 2))))
    try:
        container = av.open(str(video))
    except (OSError, av.FFmpegError) as exc:
        raise DetectionError(f"cannot open {video}: {exc}") from None
    with container:
        try:
            _scan_frames(container, scan, rows, filled, detector, spec, even, tick, stop, video, map_path)
        except av.FFmpegError as exc:
            raise DetectionError(f"cannot decode {video}: {exc}") from None
    if scan.stopped_early:
        return scan
    if scan.frames != len(rows):
        raise DetectionError(f"{video} has {scan.frames} frames but {map_path.name} has {len(rows)} rows")
    return scan


def _scan_frames(
    container: av.container.InputContainer,
    scan: _CameraScan,
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
    """Decode one synced output and detect the board in each frame, filling `scan`."""
    board_ids = spec.marker_count
    out_rows: list[np.ndarray] = []
    out_ids: list[np.ndarray] = []
    out_xy: list[np.ndarray] = []
    size = (0, 0)
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    for k, frame in enumerate(container.decode(stream)):
        if k >= len(rows):
            raise DetectionError(f"{video} has more frames than {map_path.name} has rows ({len(rows)})")
        gray = frame.to_ndarray(format="gray")
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
                if n_corners < MIN_CORNERS:
                    scan.failed_frames += 1
            if shows_board and (len(foreign) or n_corners < MIN_CORNERS):
                scan.keep_sample((gray, marker_corners, marker_ids.reshape(-1, 1)))
            if n_corners >= MIN_CORNERS:
                scan.views += 1
                out_rows.append(np.full(n_corners, rows[k], dtype=np.int64))
                out_ids.append(ids.ravel().astype(np.int32))
                out_xy.append(corners.reshape(-1, 2).astype(np.float64))
        tick(1)
        if scan.clearly_mismatched():
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


def _session_cameras(session: Path) -> list[str]:
    match = session / "synced" / "match.csv"
    if not match.is_file():
        raise DetectionError(
            f"{session} is not synced (no synced/match.csv): run `syncrig sync {session}` first"
        )
    try:
        cameras, _cells = read_match_csv(match)
    except (OSError, ValueError) as exc:
        raise DetectionError(f"cannot read {match}: {exc}") from None
    for cam in cameras:
        try:
            validate_camera_name(cam)
        except InvalidName as exc:
            raise DetectionError(f"{match}: bad camera name: {exc}") from None
    # A camera with no matched frame gets no synced output (sync flags it): nothing to detect.
    present = [c for c in cameras if (session / "synced" / f"{c}.mp4").is_file()]
    missing = [c for c in present if not (session / "synced" / f"{c}.map.csv").is_file()]
    if missing:
        raise DetectionError(
            f"synced outputs without their .map.csv: {', '.join(missing)}; run `syncrig sync` again"
        )
    if not present:
        raise DetectionError(f"{session}: no synced outputs (synced/<cam>.mp4); run `syncrig sync {session}`")
    return present


def detect_session(
    session_dir: Path, spec: BoardSpec, progress: Callable[[int, int], None] | None = None
) -> dict[str, CameraDetections]:
    """Detect the board in every synced frame of every camera; write the detections and the spec
    (calibration/detections/<cam>.npz, calibration/board.json) and return them by camera.

    progress(frames done, frames total). Raises DetectionError (session not synced, unreadable,
    no board anywhere) or BoardMismatchError (the footage shows a board that does not fit `spec`)."""
    return scan_session(session_dir, spec, progress)


def scan_session(
    session_dir: Path, spec: BoardSpec, progress: Progress | None = None, workers: int | None = None
) -> dict[str, CameraDetections]:
    """detect_session with a choice of worker threads (default: one per camera, up to the CPUs;
    decoding and detection release the GIL, so cameras run in parallel)."""
    session = Path(session_dir)
    spec = spec.validate()
    cameras = _session_cameras(session)
    total = 0
    for cam in cameras:
        rows, _filled = _read_map(session / "synced" / f"{cam}.map.csv")
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
    stop = threading.Event()

    def scan(camera: str) -> _CameraScan:
        try:
            return _scan_camera(session, camera, spec, tick, stop)
        except BaseException:
            stop.set()  # the other cameras need not finish: the session fails anyway
            raise

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="charuco") as pool:
            scans = list(pool.map(scan, cameras))
    else:
        scans = [scan(cam) for cam in cameras]
    for scan in scans:
        if scan.clearly_mismatched():
            check_board(spec, [scan])  # raises: that camera alone proves the mismatch
    check_board(spec, scans)
    if stop.is_set():  # unreachable: a clear mismatch always raises above; never save a partial scan
        raise DetectionError("detection stopped early without a verdict")
    spec.save(layout.board_file(session))
    for scan in scans:
        scan.detections.save(layout.detections_file(session, scan.camera))
    return {scan.camera: scan.detections for scan in scans}


def check_board(spec: BoardSpec, scans: list[_CameraScan]) -> None:
    """Raise BoardMismatchError if what the cameras saw does not fit `spec` (see module doc)."""
    board_frames = sum(s.board_frames for s in scans)
    failed = sum(s.failed_frames for s in scans)
    foreign_frames = sum(s.foreign_frames for s in scans)
    samples = sorted((x for s in scans for x in s.failed_samples), key=lambda x: -len(x[2]))[
        : 2 * SAMPLE_FRAMES
    ]
    if foreign_frames >= max(3, 0.2 * max(1, board_frames)):
        ids = sorted(set().union(*(s.foreign_ids for s in scans)))
        raise BoardMismatchError(
            f"markers with ids {_id_ranges(ids)} were seen in {foreign_frames} frames, but the spec's "
            f"{spec.squares_x}x{spec.squares_y} board only has ids 0..{spec.marker_count - 1}: "
            f"the printed board has more squares than the spec says. {_diagnose(spec, samples)}"
        )
    if board_frames and failed >= max(3, 0.5 * board_frames):
        foreign = sorted(set().union(*(s.foreign_ids for s in scans)))
        also = f" (and markers with ids {_id_ranges(foreign)} it does not have)" if foreign else ""
        raise BoardMismatchError(
            f"the board's markers were found in {board_frames} frames, but in {failed} of them their "
            f"layout does not fit the spec's {spec.squares_x}x{spec.squares_y} board"
            f"{' (legacy pattern)' if spec.legacy_pattern else ''}{also}, so no ChArUco corners could "
            f"be placed. {_diagnose(spec, samples)}"
        )
    if sum(s.views for s in scans) == 0:
        if board_frames == 0:
            spread = [g for s in scans for g in s.even_samples]
            suggestion = _other_dictionary(spec, spread[:: max(1, -(-len(spread) // 8))])
            if suggestion:
                raise BoardMismatchError(suggestion)
        frames = sum(s.frames for s in scans)
        raise DetectionError(
            f"no camera saw the {spec.squares_x}x{spec.squares_y} {spec.dictionary} board in any of "
            f"{frames} frames (a view needs {MIN_CORNERS} corners)"
        )


def _id_ranges(ids: list[int]) -> str:
    parts: list[str] = []
    for i in ids:
        if parts and parts[-1][1] == i - 1:
            parts[-1] = (parts[-1][0], i)
        else:
            parts.append((i, i))  # type: ignore[arg-type]
    return ", ".join(f"{a}" if a == b else f"{a}..{b}" for a, b in parts)


def _corners_found(spec: BoardSpec, samples: list) -> int:
    detector = _detector(spec)
    found = 0
    for gray, marker_corners, marker_ids in samples:
        _corners, ids, _mc, _mi = detector.detectBoard(
            gray, markerCorners=marker_corners, markerIds=marker_ids
        )
        found += 0 if ids is None else len(ids)
    return found


def _diagnose(spec: BoardSpec, samples: list) -> str:
    """Which board layout the failing frames fit (same dictionary and marker/square ratio)."""
    if not samples:
        return "Check squares_x, squares_y and legacy_pattern against the printed board."
    highest = max(int(ids.max()) for _g, _c, ids in samples)
    # Boards whose markers the frames could show: more than the highest id seen, and not many
    # more than twice that (most of a board is in view in some frames).
    capacity = min(_capacity(spec.dictionary), 2 * (highest + 1) + 4)
    best: tuple[int, BoardSpec] | None = None
    for sx in range(3, 16):
        for sy in range(3, 16):
            for legacy in (False, True):
                if (sx * sy) // 2 <= highest or (sx * sy) // 2 > capacity:
                    continue
                if legacy and sy % 2:  # the legacy pattern differs only for even row counts
                    continue
                candidate = BoardSpec(sx, sy, spec.square_mm, spec.marker_mm, spec.dictionary, legacy)
                found = _corners_found(candidate, samples)
                if best is None or found > best[0]:
                    best = (found, candidate)
    if best is None or best[0] == 0:
        return "No board layout with this dictionary fits either; check the dictionary and the print."
    fit = best[1]
    layout_text = f"{fit.squares_x}x{fit.squares_y}" + (
        " with the legacy pattern" if fit.legacy_pattern else ""
    )
    hints = []
    if (fit.squares_x, fit.squares_y) == (
        spec.squares_x,
        spec.squares_y,
    ) and fit.legacy_pattern != spec.legacy_pattern:
        hints.append(
            f"set legacy_pattern = {str(fit.legacy_pattern).lower()} (boards from OpenCV < 4.6, or "
            "tools built on it, with an even row count use the legacy pattern)"
        )
    elif (fit.squares_x, fit.squares_y) == (spec.squares_y, spec.squares_x):
        hints.append("squares_x and squares_y are swapped")
    else:
        hints.append(f"set squares_x = {fit.squares_x}, squares_y = {fit.squares_y}")
        if fit.legacy_pattern != spec.legacy_pattern:
            hints.append(f"legacy_pattern = {str(fit.legacy_pattern).lower()}")
    return (
        f"The footage fits a {layout_text} board ({best[0]} corners in {len(samples)} sample frames): "
        + "; ".join(hints)
        + ". Measure square_mm on the print too: the scale cannot be seen in the pictures."
    )


def _capacity(dictionary: str) -> int:
    return int(dictionary.rsplit("_", 1)[1]) if dictionary[-1].isdigit() else 1024


def _other_dictionary(spec: BoardSpec, frames: list[np.ndarray]) -> str | None:
    """A message naming the dictionary the footage's markers belong to, if another one fits."""
    if not frames:
        return None
    best: tuple[int, str, int] | None = None
    for family in FAMILIES:
        detector = cv2.aruco.ArucoDetector(cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, family)))
        count, highest = 0, -1
        for gray in frames:
            _corners, ids, _rejected = detector.detectMarkers(gray)
            if ids is not None and len(ids) >= BOARD_MARKERS:  # a board, not a stray false positive
                count += len(ids)
                highest = max(highest, int(ids.max()))
        if count and (best is None or count > best[0]):
            best = (count, family, highest)
    if best is None:
        return None
    count, family, highest = best
    prefix = family.rsplit("_", 1)[0]
    needed = max(highest + 1, spec.marker_count)
    fitting = [d for d in DICTIONARIES if d.startswith(prefix) and _capacity(d) >= needed]
    suggestion = fitting[0] if fitting else family
    if suggestion.rsplit("_", 1)[0] == spec.dictionary.rsplit("_", 1)[0]:
        return None  # same family: the dictionary is right, the board is just not in view
    return (
        f"no {spec.dictionary} markers in any frame, but {count} {prefix}_* markers (ids up to "
        f"{highest}) in {len(frames)} sample frames: the board was printed with another dictionary; "
        f"set dictionary = {suggestion!r}"
    )
