"""Does the footage show the board the spec describes? Evidence gathered while detecting, and the
verdict: a clear BoardMismatchError that says what to change, never a silent bad fit.

- no markers of the spec's dictionary anywhere while another dictionary finds many → which one;
- markers with ids the spec's board does not have → the board has more squares than the spec;
- markers found but no ChArUco corner interpolates (OpenCV checks the markers' layout against the
  board) → wrong square counts or legacy-pattern flag; candidate layouts are tried on the failing
  frames to say which.

The evidence of every camera and frame is weighed together: frames in which the spec places its
corners prove that it fits (a wrong layout places none), so frames that fail for other reasons (the
board at the image border, edge-on, blurred: a few corners or none) never refuse a spec that other
frames or cameras support. A frame with some corners but fewer than MIN_CORNERS is a partial view,
no evidence against the spec.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import cv2
import numpy as np

from controller.dataset.board.spec import DICTIONARIES, BoardSpec

MIN_CORNERS = 6  # a view needs this many ChArUco corners to be kept (a homography needs 4, spread)
BOARD_MARKERS = 4  # a frame with this many of the board's markers shows the board
SAMPLE_FRAMES = 4  # frames per camera kept for diagnosing a mismatch (and at most twice that in all)
# A camera stops early once this many frames showed the board's markers, nearly all of them
# (EARLY_SHARE) did not fit the spec and none fit it: no need to decode it all when the spec is
# wrong. The verdict is still the whole session's (check_board over every camera).
EARLY_FRAMES = 10
EARLY_SHARE = 0.8
# The spec is supported (never refused) when the frames it fits are at least this share of the
# frames that speak against it: a wrong layout fits (almost) none.
SUPPORT_SHARE = 0.25
# Dictionary families tried when the spec's finds nothing (a larger variant holds every id of the
# smaller ones: DICT_4X4_50's markers are DICT_4X4_250's first 50).
FAMILIES = ("DICT_4X4_250", "DICT_5X5_250", "DICT_6X6_250", "DICT_7X7_250", "DICT_ARUCO_ORIGINAL")


class DetectionError(RuntimeError):
    """The session cannot be searched for the board (not synced, unreadable outputs, no board)."""


class BoardMismatchError(DetectionError):
    """The footage shows a board that does not fit the board spec."""


@dataclass
class BoardEvidence:
    """What one camera's frames say about the board spec (counts, and a few frames to diagnose)."""

    frames: int = 0
    board_frames: int = 0  # frames with ≥ BOARD_MARKERS of the board's own markers
    failed_frames: int = 0  # ... of which not one ChArUco corner interpolated
    views: int = 0
    foreign_ids: Counter = field(default_factory=Counter)  # id → frames it was seen in
    foreign_frames: int = 0
    failed_samples: list = field(default_factory=list)  # (gray, marker corners, marker ids)
    even_samples: list = field(default_factory=list)  # gray frames spread over the recording

    def keep_sample(self, sample: tuple) -> None:
        """Keep the SAMPLE_FRAMES failing frames with the most markers (the best evidence)."""
        self.failed_samples.append(sample)
        if len(self.failed_samples) > SAMPLE_FRAMES:
            weakest = min(range(len(self.failed_samples)), key=lambda i: len(self.failed_samples[i][2]))
            del self.failed_samples[weakest]

    def clearly_mismatched(self) -> bool:
        bad = max(self.failed_frames, self.foreign_frames)
        return (
            self.views == 0
            and bad >= EARLY_FRAMES
            and bad >= EARLY_SHARE * max(self.board_frames, self.foreign_frames)
        )


def spec_supported(scans: list[BoardEvidence]) -> bool:
    """Do the frames the spec fits (every camera's) outweigh those that speak against it?"""
    views = sum(s.views for s in scans)
    bad = max(sum(s.failed_frames for s in scans), sum(s.foreign_frames for s in scans))
    return views > 0 and views >= SUPPORT_SHARE * bad


def check_board(spec: BoardSpec, scans: list[BoardEvidence]) -> None:
    """Raise BoardMismatchError if what the cameras saw, all together, does not fit `spec` (see
    module doc); DetectionError if no camera saw the board at all."""
    if spec_supported(scans):
        return
    board_frames = sum(s.board_frames for s in scans)
    failed = sum(s.failed_frames for s in scans)
    foreign_frames = sum(s.foreign_frames for s in scans)
    views = sum(s.views for s in scans)
    samples = sorted((x for s in scans for x in s.failed_samples), key=lambda x: -len(x[2]))[
        : 2 * SAMPLE_FRAMES
    ]
    fitting = f" (it fits only {views})" if views else ""
    if foreign_frames >= max(3, 0.2 * max(1, board_frames)):
        ids = sorted(set().union(*(s.foreign_ids for s in scans)))
        raise BoardMismatchError(
            f"markers with ids {_id_ranges(ids)} were seen in {foreign_frames} frames{fitting}, but the "
            f"spec's {spec.squares_x}x{spec.squares_y} board only has ids 0..{spec.marker_count - 1}: "
            f"the printed board has more squares than the spec says. {_diagnose(spec, samples)}"
        )
    if board_frames and failed >= max(3, 0.5 * board_frames):
        foreign = sorted(set().union(*(s.foreign_ids for s in scans)))
        also = f" (and markers with ids {_id_ranges(foreign)} it does not have)" if foreign else ""
        raise BoardMismatchError(
            f"the board's markers were found in {board_frames} frames, but in {failed} of them their "
            f"layout does not fit the spec's {spec.squares_x}x{spec.squares_y} board{fitting}"
            f"{' (legacy pattern)' if spec.legacy_pattern else ''}{also}, so no ChArUco corners could "
            f"be placed. {_diagnose(spec, samples)}"
        )
    if views == 0:
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
    detector = cv2.aruco.CharucoDetector(spec.cv_board())
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
