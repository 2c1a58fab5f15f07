"""Frame times of footage from another rig: a sidecar next to the video, or the container's own.

Sidecars, looked up by the video's stem (the camera name):
- `<cam>.pts`: mkvmerge's "timestamp format v2" (ms since the file's start) or SqueakShot's integer
  µs since the camera's own first frame (contract/formats/pts.py reads both);
- `<cam>.csv`: a header, then one row per frame; the time column is the first whose name ends in
  its unit (`_s`, `_ms`, `_us`, `_ns`: `time_ms`, `timestamp_ns`, `unix_time_s`...).

Times are comparable across cameras only when they come from one clock. A CSV column named after
the wall clock (`unix`, `epoch` or `wall` in its name) states that; every other source counts from
each file's own start, so the import marks it relative (the start offsets between cameras unknown).
The frame rate is made exact: a rate measured from timestamps rounded to µs (16667 µs → 59.9988 fps)
is snapped to the nearest rate of the form N or N·1000/1001 when within 0.1 %.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from controller.pipeline.sources import SessionError
from syncrig_agent.contract.formats import read_pts

UNIT_NS = {"_ns": 1, "_us": 1_000, "_ms": 1_000_000, "_s": 1_000_000_000}
SHARED_CLOCK_WORDS = ("unix", "epoch", "wall")
SIDECAR_SUFFIXES = (".pts", ".csv")
SNAP_TOLERANCE = 1e-3  # relative: how far a measured rate may be from the exact one it snaps to


@dataclass
class FrameTimes:
    times_ns: np.ndarray  # int64 per frame, in presentation order
    shared_clock: bool  # True: the same clock for every camera (comparable across cameras)
    source: str  # where they came from, for the report ("cam1.pts (SqueakShot µs)", "container")


def find_sidecar(video: Path) -> Path | None:
    """The video's sidecar (`<stem>.pts` first, then `<stem>.csv`), or None."""
    for suffix in SIDECAR_SUFFIXES:
        candidate = video.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def read_sidecar(path: Path) -> FrameTimes:
    """Frame times from a `.pts` or `.csv` sidecar; SessionError naming the file when unreadable."""
    if path.suffix == ".pts":
        try:
            pts = read_pts(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SessionError(f"{path}: {exc}") from None
        kind = "mkvmerge v2 ms" if pts.source_format == "v2" else "SqueakShot µs"
        return FrameTimes(pts.times_ns, False, f"{path.name} ({kind})")
    return _read_csv_times(path)


def _read_csv_times(path: Path) -> FrameTimes:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionError(f"{path}: cannot read it ({exc})") from None
    if not rows:
        raise SessionError(f"{path}: empty; expected a header and one time per frame")
    header = [h.strip() for h in rows[0]]
    column = next((i for i, name in enumerate(header) if _unit_of(name)), None)
    if column is None:
        raise SessionError(
            f"{path}: no time column with a unit in its name (header {header}); name it e.g. "
            "time_s, time_ms, time_us or time_ns (unix_time_ns for wall-clock times)"
        )
    name = header[column]
    scale = UNIT_NS[_unit_of(name)]
    values = []
    for line, row in enumerate(rows[1:], start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            values.append(_to_ns(row[column], scale))
        except (IndexError, ValueError):
            raise SessionError(f"{path} line {line}: {name} is not a number ({row!r})") from None
    shared = any(word in name.lower() for word in SHARED_CLOCK_WORDS)
    return FrameTimes(np.asarray(values, dtype=np.int64), shared, f"{path.name} column {name}")


def _unit_of(column: str) -> str | None:
    lowered = column.lower()
    return next((suffix for suffix in UNIT_NS if lowered.endswith(suffix)), None)


def _to_ns(text: str, scale: int) -> int:
    """A decimal in the column's unit → integer ns, exactly (no float rounding for long epochs)."""
    return int(Fraction(text.strip()) * scale)


def exact_rate(rate: Fraction) -> Fraction:
    """The nearest rate of the form N or N·1000/1001 (within SNAP_TOLERANCE), else the rate as is."""
    candidates = [Fraction(round(rate)), Fraction(round(rate * Fraction(1001, 1000)) * 1000, 1001)]
    best = min(candidates, key=lambda c: abs(c - rate))
    if best > 0 and abs(best - rate) / best <= SNAP_TOLERANCE:
        return best
    return rate


def rate_from_times(times_ns: np.ndarray, where: str) -> Fraction:
    """The frame rate the timestamps show (median frame interval), made exact (exact_rate)."""
    return rate_from_intervals(np.diff(np.asarray(times_ns, dtype=np.int64)), where)


def rate_from_intervals(intervals_ns: np.ndarray, where: str) -> Fraction:
    """The frame rate of these frame intervals (their median; gaps from drops do not move it)."""
    steps = np.asarray(intervals_ns, dtype=np.int64)
    steps = steps[steps > 0]
    if steps.size == 0:
        raise SessionError(f"{where}: the frame times do not increase; cannot tell the frame rate")
    return exact_rate(Fraction(10**9) / Fraction(int(np.median(steps))))


__all__ = [
    "FrameTimes",
    "exact_rate",
    "find_sidecar",
    "rate_from_intervals",
    "rate_from_times",
    "read_sidecar",
]
