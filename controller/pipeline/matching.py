"""Frame matching across N cameras on the shared clock: the one home for matching.

A match table has one row per output instant and one column per camera; a cell is the index of
that camera's frame in its `.pts` (stream) order, or EMPTY where the camera has no frame for the
instant. A neighbour never stands in for a missing frame: a frame belongs to the single instant
nearest to it, and only if it lies within the tolerance (default half a period) of that instant.

Two ways to lay out the instants:
- grid: phase-locked SyncRig recordings carry the grid index n of every frame, so row n is the
  grid slot Tn = n·P (since T0) and a frame sits in the row of its own index.
- time: anything else (free-running cameras, imported recordings): the instants follow a reference
  camera's own frames, with its gaps filled at its own measured period and extended at both ends to
  cover the other cameras; every camera's frames then go to their nearest instant.

Everything is vectorised (sorted search over monotonic times, no per-frame Python loop).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EMPTY = -1


@dataclass
class MatchTable:
    cameras: list[str]
    cells: np.ndarray  # (rows, cameras) int64: frame index in that camera's stream order, or EMPTY
    instants_ns: np.ndarray  # (rows,) int64: the reference instant of each row (same origin as the times)
    mode: str  # "grid" or "time"
    period_ns: int
    tolerance_ns: int
    reference: str | None = None  # time mode: camera whose frames define the instants
    grid_indices: np.ndarray | None = None  # grid mode: grid index n of each row
    # Frames of each camera that are in no row (outside the tolerance of every instant, or a second
    # frame nearer to an instant that already has a nearer one): never silently used.
    unmatched: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def on_grid(cls, cameras: list[str], cells: np.ndarray, period_ns: int) -> MatchTable:
        """A table whose row r is grid slot r (instant r·P from T0): what a simulated session that
        drew its own frames on the grid writes, with nothing left to tolerate."""
        slots = np.arange(len(cells), dtype=np.int64)
        return cls(
            cameras=list(cameras),
            cells=np.asarray(cells, dtype=np.int64),
            instants_ns=slots * period_ns,
            mode="grid",
            period_ns=period_ns,
            tolerance_ns=0,
            grid_indices=slots,
        )

    @property
    def rows(self) -> int:
        return int(self.cells.shape[0])

    def column(self, camera: str) -> np.ndarray:
        return self.cells[:, self.cameras.index(camera)]

    def complete_rows(self) -> np.ndarray:
        """Row numbers where every camera has a frame."""
        return np.flatnonzero(np.all(self.cells != EMPTY, axis=1))

    def residuals_ns(self, times_ns: dict[str, np.ndarray]) -> np.ndarray:
        """(rows, cameras) float64: frame time − row instant, NaN in empty cells."""
        out = np.full(self.cells.shape, np.nan)
        for c, name in enumerate(self.cameras):
            col = self.cells[:, c]
            present = col != EMPTY
            out[present, c] = times_ns[name][col[present]] - self.instants_ns[present]
        return out


def default_tolerance_ns(period_ns: int) -> int:
    return int(period_ns) // 2


def _check_tolerance(period_ns: int, tolerance_ns: int | None) -> int:
    if period_ns <= 0:
        raise ValueError(f"period_ns must be positive, got {period_ns}")
    tol = default_tolerance_ns(period_ns) if tolerance_ns is None else int(tolerance_ns)
    if not 0 < tol <= period_ns // 2:
        # Wider than half a period, a frame could be taken for its neighbour's instant: exactly
        # how a dropped frame got replaced by a duplicate in SqueakShot (20 ms at 56 fps).
        raise ValueError(f"tolerance must be in (0, {period_ns // 2}] ns (half a frame period), got {tol} ns")
    return tol


def _check_monotonic(name: str, times: np.ndarray) -> None:
    if times.size > 1:
        bad = np.flatnonzero(np.diff(times) <= 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{name}: timestamps are not strictly increasing in stream order "
                f"(frame {i + 1}: {int(times[i + 1])} ns after frame {i}: {int(times[i])} ns)"
            )


def _assign(
    rows: np.ndarray, dist: np.ndarray, frames: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Put each frame in its row, keeping the nearest frame when several want the same row.

    `rows` must be non-decreasing (true for monotonic times against sorted instants), so frames
    competing for one row are adjacent and the conflict check is a single comparison pass.
    Returns (column of frame indices per row, frames left out)."""
    column = np.full(n_rows, EMPTY, dtype=np.int64)
    if rows.size == 0:
        return column, np.empty(0, dtype=np.int64)
    same = np.flatnonzero(rows[1:] == rows[:-1])  # i where frames i and i+1 want the same row
    if same.size == 0:  # the usual case
        column[rows] = frames
        return column, np.empty(0, dtype=np.int64)
    winner = np.ones(rows.size, dtype=bool)
    if np.all(np.diff(same) > 1):
        # A drifting camera at a phase slip: pairs of frames around one instant; the nearer wins
        # (the earlier on a tie).
        winner[np.where(dist[same] <= dist[same + 1], same + 1, same)] = False
    else:
        # Three or more frames in one row's window (a camera faster than twice the rate): the
        # nearest of each run wins. Linear passes, no sort.
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        run_of = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, rows.size]))
        is_best = dist == np.minimum.reduceat(dist, starts)[run_of]
        candidates = np.flatnonzero(is_best)
        first = candidates[np.r_[True, run_of[candidates][1:] != run_of[candidates][:-1]]]
        winner[:] = False
        winner[first] = True
    column[rows[winner]] = frames[winner]
    return column, frames[~winner]


def match_by_grid(
    cameras: list[str],
    grid_indices: list[np.ndarray],
    times_ns: list[np.ndarray],
    period_ns: int,
    tolerance_ns: int | None = None,
    row_range: tuple[int, int] | None = None,
) -> MatchTable:
    """Phase-locked recordings: row n = grid slot n; a frame goes to the row of its grid index if
    its time (ns since T0) lies within the tolerance of n·P, else it is left unmatched.

    `row_range` = (first, end) grid indices to lay out (default: every index any camera has)."""
    tol = _check_tolerance(period_ns, tolerance_ns)
    if len(cameras) != len(grid_indices) or len(cameras) != len(times_ns):
        raise ValueError("one grid index array and one time array per camera")
    present = [g for g in grid_indices if g.size]
    if row_range is None:
        if not present:
            row_range = (0, 0)
        else:
            row_range = (min(int(g.min()) for g in present), max(int(g.max()) for g in present) + 1)
    lo, hi = row_range
    n_rows = max(0, hi - lo)
    cells = np.full((n_rows, len(cameras)), EMPTY, dtype=np.int64)
    unmatched: dict[str, np.ndarray] = {}
    for c, (name, grid, times) in enumerate(zip(cameras, grid_indices, times_ns, strict=True)):
        grid = np.asarray(grid, dtype=np.int64)
        times = np.asarray(times, dtype=np.int64)
        if grid.shape != times.shape:
            raise ValueError(f"{name}: {grid.size} grid indices but {times.size} timestamps")
        if grid.size > 1 and np.any(np.diff(grid) < 0):
            raise ValueError(f"{name}: grid indices go backwards in stream order")
        frames = np.arange(grid.size, dtype=np.int64)
        dist = np.abs(times - grid * int(period_ns))
        ok = (dist <= tol) & (grid >= lo) & (grid < hi)
        column, lost = _assign(grid[ok] - lo, dist[ok], frames[ok], n_rows)
        cells[:, c] = column
        unmatched[name] = np.sort(np.r_[frames[~ok], lost])
    instants = (np.arange(lo, hi, dtype=np.int64)) * int(period_ns)
    return MatchTable(
        cameras=list(cameras),
        cells=cells,
        instants_ns=instants,
        mode="grid",
        period_ns=int(period_ns),
        tolerance_ns=tol,
        grid_indices=np.arange(lo, hi, dtype=np.int64),
        unmatched=unmatched,
    )


def reference_instants(
    ref_times: np.ndarray, period_ns: int, lo_ns: int, hi_ns: int, tol: int
) -> tuple[np.ndarray, np.ndarray]:
    """The reference camera's frame times with its gaps filled at its own measured period, extended
    before/after it to cover [lo_ns, hi_ns] (the other cameras' first and last frames).

    Returns (instants, row of each reference frame)."""
    ref = np.asarray(ref_times, dtype=np.int64)
    if ref.size == 0:
        raise ValueError("the reference camera has no frames")
    diffs = np.diff(ref)
    step = float(np.median(diffs)) if diffs.size else float(period_ns)
    missing = (
        np.maximum(np.rint(diffs / step).astype(np.int64) - 1, 0) if diffs.size else np.zeros(0, np.int64)
    )
    ref_rows = np.arange(ref.size, dtype=np.int64)
    ref_rows[1:] += np.cumsum(missing)
    instants = np.empty(int(ref_rows[-1]) + 1, dtype=np.int64)
    instants[ref_rows] = ref
    gaps = np.flatnonzero(missing)
    if gaps.size:  # drops are rare: only their instants are computed one by one (vectorised)
        count = missing[gaps]
        gap_of = np.repeat(np.arange(gaps.size), count)
        within = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count) + 1
        spacing = diffs[gaps] / (count + 1)
        rows = ref_rows[gaps][gap_of] + within
        instants[rows] = np.rint(ref[gaps][gap_of] + within * spacing[gap_of]).astype(np.int64)
    before = int(np.ceil((instants[0] - tol - lo_ns) / step)) if lo_ns < instants[0] - tol else 0
    after = int(np.ceil((hi_ns - tol - instants[-1]) / step)) if hi_ns > instants[-1] + tol else 0
    if before or after:
        head = np.rint(instants[0] - step * np.arange(before, 0, -1)).astype(np.int64)
        tail = np.rint(instants[-1] + step * np.arange(1, after + 1)).astype(np.int64)
        instants = np.r_[head, instants, tail]
        ref_rows += before
    return instants, ref_rows


def match_by_time(
    cameras: list[str],
    times_ns: list[np.ndarray],
    period_ns: int,
    tolerance_ns: int | None = None,
    reference: str | None = None,
) -> MatchTable:
    """Nearest neighbour in time against a reference camera's instants (see module docstring).

    The reference is the camera with the most frames unless named (fewest filled instants)."""
    tol = _check_tolerance(period_ns, tolerance_ns)
    arrays = [np.asarray(t, dtype=np.int64) for t in times_ns]
    for name, t in zip(cameras, arrays, strict=True):
        _check_monotonic(name, t)
    nonempty = [t for t in arrays if t.size]
    if not nonempty:
        return MatchTable(
            list(cameras),
            np.empty((0, len(cameras)), np.int64),
            np.empty(0, np.int64),
            "time",
            int(period_ns),
            tol,
            reference,
            None,
            {n: np.empty(0, np.int64) for n in cameras},
        )
    if reference is None:
        ref_index = int(np.argmax([t.size for t in arrays]))
    else:
        if reference not in cameras:
            raise ValueError(f"unknown reference camera {reference!r} (cameras: {', '.join(cameras)})")
        ref_index = cameras.index(reference)
    lo = min(int(t[0]) for t in nonempty)
    hi = max(int(t[-1]) for t in nonempty)
    instants, ref_rows = reference_instants(arrays[ref_index], period_ns, lo, hi, tol)
    n_rows = instants.size
    cells = np.full((n_rows, len(cameras)), EMPTY, dtype=np.int64)
    unmatched: dict[str, np.ndarray] = {}
    for c, (name, t) in enumerate(zip(cameras, arrays, strict=True)):
        frames = np.arange(t.size, dtype=np.int64)
        if c == ref_index:  # the instants are its own frames: each sits in its row, at distance 0
            cells[ref_rows, c] = frames
            unmatched[name] = np.empty(0, dtype=np.int64)
            continue
        if n_rows == 1:
            nearest = np.zeros(t.size, dtype=np.int64)
            dist = np.abs(t - instants[0])
        else:
            right = np.searchsorted(instants, t)
            np.clip(right, 1, n_rows - 1, out=right)
            d_left = t - instants[right - 1]
            d_right = instants[right] - t
            take_left = d_left <= d_right
            nearest = right - take_left
            dist = np.abs(np.where(take_left, d_left, d_right))
        ok = dist <= tol
        if ok.all():  # skip three gathers in the usual case
            column, lost = _assign(nearest, dist, frames, n_rows)
            unmatched[name] = lost
        else:
            column, lost = _assign(nearest[ok], dist[ok], frames[ok], n_rows)
            unmatched[name] = np.sort(np.r_[frames[~ok], lost])
        cells[:, c] = column
    return MatchTable(
        cameras=list(cameras),
        cells=cells,
        instants_ns=instants,
        mode="time",
        period_ns=int(period_ns),
        tolerance_ns=tol,
        reference=cameras[ref_index],
        unmatched=unmatched,
    )


def quadratic_nearest_baseline(ref_times: np.ndarray, other_times: list[np.ndarray]) -> list[np.ndarray]:
    """SqueakShot's matcher (`argmin(|t_other − t|)` over the whole array, per reference frame):
    kept only as the benchmark's baseline. Returns per other camera the chosen frame per ref frame."""
    out = []
    for other in other_times:
        other = np.asarray(other, dtype=np.int64)
        out.append(np.array([int(np.argmin(np.abs(other - t))) for t in ref_times], dtype=np.int64))
    return out


# --- synced/match.csv (docs/ARCHITECTURE.md, Files): header = camera names, one row per output frame,
# each cell the frame index in that camera's .pts order, empty where the camera has no frame.


def write_match_csv(path: Path | str, table: MatchTable) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="ascii", newline="") as fh:
        fh.write(",".join(table.cameras) + "\n")
        text = np.where(table.cells == EMPTY, "", table.cells.astype(str))
        fh.writelines(",".join(row) + "\n" for row in text)
    tmp.replace(path)
    return path


def read_match_header(path: Path | str) -> list[str]:
    """The camera names (the header) alone, without reading the rows."""
    with open(path, newline="", encoding="ascii") as fh:
        return _read_header(path, csv.reader(fh))


def _read_header(path: Path | str, reader: Iterator[list[str]]) -> list[str]:
    header = next(reader, None)
    if not header:
        raise ValueError(f"{path}: empty match table")
    return header


def read_match_csv(path: Path | str) -> tuple[list[str], np.ndarray]:
    """(camera names, cells with EMPTY for blank cells)."""
    with open(path, newline="", encoding="ascii") as fh:
        reader = csv.reader(fh)
        header = _read_header(path, reader)
        rows = [r for r in reader if r]
    cells = np.full((len(rows), len(header)), EMPTY, dtype=np.int64)
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f"{path}: row {i + 1} has {len(row)} cells, header has {len(header)}")
        for c, value in enumerate(row):
            if value:
                cells[i, c] = int(value)
    return header, cells
