"""Matching on generated recordings with known ground truth: free-running cameras with start
offsets up to 15 ms, ±50 ppm drift, random drops and trigger jitter (time mode), and phase-locked
SyncRig recordings (grid mode). The truth is known per frame, so every claim is checked exactly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from controller.pipeline.matching import (
    EMPTY,
    match_by_grid,
    match_by_time,
    read_match_csv,
    write_match_csv,
)
from controller.pipeline.report import build_report
from syncrig_agent.contract.grid import period_ns_for_fps

P56 = period_ns_for_fps(56)


@dataclass
class Truth:
    names: list[str]
    times: list[np.ndarray]  # recorded frames' true capture times (ns), stream order
    dropped_times: list[np.ndarray]  # true times the camera would have captured at, but dropped


def generate(
    seed: int,
    seconds: float = 300.0,
    cameras: int = 3,
    period: int = P56,
    max_offset_ms: float = 15.0,
    drift_ppm: float = 50.0,
    drop_prob: float = 0.01,
    jitter_us: float = 100.0,
) -> Truth:
    rng = np.random.default_rng(seed)
    n = int(seconds * 1e9 / period)
    names, times, dropped = [], [], []
    for c in range(cameras):
        offset = 0.0 if c == 0 else rng.uniform(-max_offset_ms, max_offset_ms) * 1e6
        drift = rng.uniform(-drift_ppm, drift_ppm) * 1e-6
        k = np.arange(n)
        t = 5e9 + offset + k * period * (1 + drift) + rng.normal(0, jitter_us * 1e3, n)
        t = np.rint(t).astype(np.int64)
        keep = rng.random(n) >= drop_prob
        # A few bursts too (a stalled camera): several consecutive frames gone.
        for start in rng.integers(0, n - 20, 3):
            keep[start : start + rng.integers(2, 12)] = False
        names.append(f"cam{c}")
        times.append(t[keep])
        dropped.append(t[~keep])
    return Truth(names, times, dropped)


def check_against_truth(truth: Truth, table, period: int) -> None:
    half = period // 2
    for c, name in enumerate(truth.names):
        col = table.cells[:, c]
        present = col != EMPTY
        # No duplicated source frame, and frames keep their order.
        used = col[present]
        assert np.all(np.diff(used) > 0), f"{name}: a source frame used twice or out of order"
        # 0 matched frames further than half a period (true time) from their row's instant...
        off = truth.times[c][used] - table.instants_ns[present]
        assert np.abs(off).max() <= half, f"{name}: matched {np.abs(off).max()} ns from its instant"
        # ... and from the reference camera's frame in the same row, where it has one.
        ref = table.cameras.index(table.reference) if table.reference else 0
        both = present & (table.cells[:, ref] != EMPTY)
        pair = truth.times[c][col[both]] - truth.times[ref][table.cells[both, ref]]
        assert np.abs(pair).max() <= half
        # Every true drop is an empty cell in the row nearest to the instant it would have had.
        d = truth.dropped_times[c]
        d = d[(d >= table.instants_ns[0] - half) & (d <= table.instants_ns[-1] + half)]
        right = np.clip(np.searchsorted(table.instants_ns, d), 1, table.rows - 1)
        nearest = np.where(
            np.abs(table.instants_ns[right - 1] - d) <= np.abs(table.instants_ns[right] - d), right - 1, right
        )
        # At a phase slip (relative drift has carried the camera to half a period from the
        # instants) two recorded frames can both lie within tolerance of one instant; if one of
        # them was dropped, the other is legitimately that instant's frame: nearest to it, within
        # tolerance, used once. Anything else in a dropped instant would be a neighbour standing in.
        taken = col[nearest] != EMPTY
        if taken.any():
            frames = col[nearest[taken]]
            t = truth.times[c][frames]
            own = np.abs(t - table.instants_ns[nearest[taken]])
            assert np.all(own <= half), f"{name}: a dropped instant got a neighbour's frame"
            for shift in (-1, 1):  # and that frame is not nearer to an adjacent instant
                adj = np.clip(nearest[taken] + shift, 0, table.rows - 1)
                assert np.all(own <= np.abs(t - table.instants_ns[adj]))
            # Ambiguous drops only happen at slips: a handful in a long recording.
            assert taken.sum() <= max(2, 0.02 * d.size), f"{name}: {taken.sum()} of {d.size} drops filled"


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_free_running_ground_truth(seed: int) -> None:
    truth = generate(seed)
    table = match_by_time(truth.names, truth.times, P56)
    assert table.mode == "time" and table.tolerance_ns == P56 // 2
    check_against_truth(truth, table, P56)
    # Everything recorded is accounted for: matched or listed as unmatched, never silently lost.
    for c, name in enumerate(truth.names):
        matched = int((table.cells[:, c] != EMPTY).sum())
        assert matched + table.unmatched[name].size == truth.times[c].size


def test_sixty_minutes_drift_and_drops_no_tuple_off_by_more_than_half_a_period() -> None:
    # The case SqueakShot got 132,397 tuples wrong in (60 min, 3 cameras, offsets, drift, drops).
    truth = generate(11, seconds=3600, drop_prob=0.002, max_offset_ms=15, drift_ppm=50)
    table = match_by_time(truth.names, truth.times, P56)
    check_against_truth(truth, table, P56)


def test_start_offset_is_reported_not_hidden() -> None:
    # SqueakShot aligned by first frames and called an 11.2 ms offset "Excellent".
    period = P56
    k = np.arange(3000)
    a = 1_000_000_000 + k * period
    b = a + 11_200_000
    table = match_by_time(["a", "b"], [a, b], period, reference="a")
    report = build_report(table, {"a": a, "b": b}, session_id="s", fps=56.0, absolute=True)
    # b's frame k is nearest to a's frame k+1: 11.2 − 17.86 = −6.66 ms off, and the report says so.
    assert report["cameras"]["b"]["residual_us"]["mean"] == pytest.approx(11_200 - period / 1e3, abs=1)
    assert report["verdict"] == "poor"
    assert report["thresholds"]["excellent"]["max_abs_residual_us"] == 1000.0


def test_relative_time_gets_no_verdict() -> None:
    t = np.arange(100) * P56
    table = match_by_time(["a", "b"], [t, t.copy()], P56)
    report = build_report(table, {"a": t, "b": t}, session_id="s", fps=56.0, absolute=False)
    assert report["verdict"] == "relative-time-only"
    assert report["relative_time_only"] is True
    assert any(n.startswith("RELATIVE TIME ONLY") for n in report["notes"])


def test_grid_mode_drops_are_empty_cells_and_off_grid_frames_are_not_used() -> None:
    period = period_ns_for_fps(30)
    grid_a = np.array([0, 1, 2, 4, 5, 6, 7])  # slot 3 dropped
    grid_b = np.array([0, 1, 2, 3, 4, 5, 7])  # slot 6 dropped
    times_a = grid_a * period + 100
    times_b = grid_b * period - 200
    times_b[4] += period // 2 + 300  # slot 4 stamped more than half a period off: not trusted
    table = match_by_grid(["a", "b"], [grid_a, grid_b], [times_a, times_b], period, row_range=(0, 9))
    assert table.rows == 9 and table.mode == "grid"
    assert table.cells[:, 0].tolist() == [0, 1, 2, EMPTY, 3, 4, 5, 6, EMPTY]
    assert table.cells[:, 1].tolist() == [0, 1, 2, 3, EMPTY, 5, EMPTY, 6, EMPTY]
    assert table.unmatched["b"].tolist() == [4]
    assert table.complete_rows().tolist() == [0, 1, 2, 5, 7]
    report = build_report(table, {"a": times_a, "b": times_b}, session_id="s", fps=30.0, absolute=True)
    assert report["cameras"]["a"]["drop_runs"] == [[3, 1], [8, 1]]
    assert report["cameras"]["b"]["unmatched_frames"] == 1
    assert report["cameras"]["a"]["residual_us"]["mean"] == pytest.approx(0.1)


def test_grid_mode_ground_truth_with_drops() -> None:
    rng = np.random.default_rng(7)
    period = P56
    names, grids, times, dropped = [], [], [], []
    for c in range(3):
        n = np.arange(20_000)
        keep = rng.random(n.size) > 0.02
        t = n * period + rng.normal(0, 50_000, n.size).astype(np.int64)
        names.append(f"cam{c}")
        grids.append(n[keep])
        times.append(t[keep])
        dropped.append(n[~keep])
    table = match_by_grid(names, grids, times, period, row_range=(0, 20_000))
    for c in range(3):
        col = table.cells[:, c]
        assert np.all(col[dropped[c]] == EMPTY)
        present = col != EMPTY
        assert np.array_equal(grids[c][col[present]], np.flatnonzero(present))


def test_tolerance_wider_than_half_a_period_is_refused() -> None:
    t = np.arange(10) * P56
    with pytest.raises(ValueError, match="half a frame period"):
        match_by_time(["a"], [t], P56, tolerance_ns=20_000_000)  # SqueakShot's 20 ms at 56 fps
    with pytest.raises(ValueError, match="half a frame period"):
        match_by_time(["a"], [t], P56, tolerance_ns=0)


def test_tighter_tolerance_leaves_cells_empty_instead_of_guessing() -> None:
    a = np.arange(100) * P56
    b = a + 3_000_000
    table = match_by_time(["a", "b"], [a, b], P56, tolerance_ns=2_000_000, reference="a")
    assert np.all(table.cells[:, 1] == EMPTY)
    assert table.unmatched["b"].size == 100


def test_non_monotonic_timestamps_are_a_clear_error() -> None:
    t = np.array([0, P56, 3 * P56, 2 * P56])
    with pytest.raises(ValueError, match="not strictly increasing.*frame 3"):
        match_by_time(["a"], [t], P56)


def test_reference_gap_filled_and_range_extended_for_other_cameras() -> None:
    a = np.r_[np.arange(10, 20), np.arange(25, 40)] * P56  # a starts late and drops 20..24
    b = np.arange(0, 45) * P56 + 1000
    table = match_by_time(["a", "b"], [a, b], P56, reference="a")
    assert table.rows == 45
    assert np.all(table.cells[:, 1] == np.arange(45))
    assert (table.cells[:, 0] == EMPTY).sum() == 45 - a.size


def test_match_csv_round_trip(tmp_path: Path) -> None:
    truth = generate(3, seconds=10)
    table = match_by_time(truth.names, truth.times, P56)
    path = write_match_csv(tmp_path / "match.csv", table)
    lines = path.read_text().splitlines()
    assert lines[0] == "cam0,cam1,cam2"
    assert len(lines) == table.rows + 1
    assert any(",," in ln or ln.startswith(",") or ln.endswith(",") for ln in lines[1:])  # empty cells
    names, cells = read_match_csv(path)
    assert names == truth.names and np.array_equal(cells, table.cells)


def test_faster_camera_gives_one_frame_per_instant_and_lists_the_rest() -> None:
    a = np.arange(50) * P56
    b = np.arange(150) * (P56 // 3) + 7  # three frames in every instant's window
    table = match_by_time(["a", "b"], [a, b], P56, reference="a")
    col = table.cells[:, 1]
    assert np.all(col != EMPTY)
    assert np.abs(b[col[:50]] - a).max() <= 7  # the nearest of each three
    assert np.all(np.diff(col) > 0)
    assert table.unmatched["b"].size == 150 - table.rows
