"""The frame grid and the session file formats (one home each, shared by Pi and desktop)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncrig_agent.contract.formats import (
    FrameRow,
    SessionManifest,
    format_pts_line,
    read_frame_table,
    read_manifest,
    read_pts,
    write_manifest,
    write_pts,
)
from syncrig_agent.contract.formats.frame_table import write_frame_header, write_frame_row
from syncrig_agent.contract.formats.pts import parse_pts_value
from syncrig_agent.contract.grid import FrameGrid, period_ns_for_fps


def test_period_is_integer_ns_and_exact() -> None:
    assert period_ns_for_fps(56) == 17_857_143
    assert period_ns_for_fps(30) == 33_333_333
    assert period_ns_for_fps(Fraction(30000, 1001)) == 33_366_667
    assert period_ns_for_fps(29.97) == 33_366_700
    with pytest.raises(ValueError):
        period_ns_for_fps(0)


def test_grid_targets_and_indices() -> None:
    grid = FrameGrid(t0_ns=1_000_000_000, period_ns=10)
    assert grid.target(0) == 1_000_000_000
    assert grid.target(7) == 1_000_000_070
    assert grid.first_index_not_before(0) == 0
    assert grid.first_index_not_before(1_000_000_000) == 0
    assert grid.first_index_not_before(1_000_000_001) == 1
    assert grid.first_index_not_before(1_000_000_010) == 1
    assert grid.first_index_not_before(1_000_000_011) == 2
    assert grid.nearest_index(1_000_000_004) == 0
    assert grid.nearest_index(1_000_000_006) == 1
    assert grid.phase_error_ns(1_000_000_013) == 3
    assert grid.end_index(None) is None
    assert grid.end_index(1_000_000_030) == 3  # slots 0, 1, 2 have Tn < stop


@given(st.integers(0, 2**62), st.integers(1, 10**10), st.integers(-(10**12), 10**12))
def test_first_index_not_before_is_minimal(t0: int, period: int, offset: int) -> None:
    grid = FrameGrid(t0, period)
    n = grid.first_index_not_before(t0 + offset)
    assert n >= 0
    assert grid.target(n) >= t0 + offset or n == 0 and offset <= 0
    if n > 0:
        assert grid.target(n - 1) < t0 + offset


@given(st.integers(-(10**15), 10**15))
def test_pts_line_round_trips_exactly(ns: int) -> None:
    assert parse_pts_value(format_pts_line(ns)) == ns


def test_pts_line_format() -> None:
    assert format_pts_line(0) == "0.000000"
    assert format_pts_line(17_857_143) == "17.857143"
    assert format_pts_line(-12_000) == "-0.012000"
    assert parse_pts_value("33.3") == 33_300_000  # fewer fraction digits (other writers)


def test_pts_file_v2_and_squeakshot(tmp_path: Path) -> None:
    path = tmp_path / "cam0.pts"
    write_pts(path, [0, 17_857_143, 35_714_286])
    text = path.read_text().splitlines()
    assert text[0] == "# timestamp format v2" and text[1] == "0.000000"
    pts = read_pts(path)
    assert pts.absolute and pts.source_format == "v2"
    assert pts.times_ns.tolist() == [0, 17_857_143, 35_714_286]
    with pytest.raises(FileExistsError):
        write_pts(path, [1])  # never overwritten
    old = tmp_path / "cam1_rec3.pts"
    old.write_text("0\n17857\n35714\n")
    legacy = read_pts(old)
    assert not legacy.absolute and legacy.source_format == "squeakshot-us"
    assert legacy.times_ns.tolist() == [0, 17_857_000, 35_714_000]
    bad = tmp_path / "bad.pts"
    bad.write_text("hello\n")
    with pytest.raises(ValueError):
        read_pts(bad)


def test_frame_table_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "cam0.frames.csv"
    rows = [FrameRow(0, 0, 100, 5, 99, 1, 1234, 101), FrameRow(1, 2, 300, 7, 299, 0, 55, 302)]
    with open(path, "w") as fh:
        write_frame_header(fh)
        for r in rows:
            write_frame_row(fh, r)
    table = read_frame_table(path)
    assert table["grid_index"].tolist() == [0, 2]
    assert table["wall_ns"].dtype == np.int64
    assert table["keyframe"].tolist() == [1, 0]
    (tmp_path / "bad.csv").write_text("frame,wall_ns\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        read_frame_table(tmp_path / "bad.csv")


def test_manifest_round_trip(tmp_path: Path) -> None:
    m = SessionManifest(
        id="20260101-000000_mouse1",
        subject="mouse1",
        project=None,
        created="2026-01-01T00:00:00.000Z",
        fps=56.0,
        period_ns=17_857_143,
        t0_ns=1_790_000_000_000_000_000,
        cameras=[{"name": "cam0", "host": "localhost", "role": "server", "width": 640, "height": 360}],
    )
    write_manifest(tmp_path, m)
    back = read_manifest(tmp_path)
    assert back == m
    assert back.camera_names == ["cam0"] and back.camera("cam0")["role"] == "server"
    data = json.loads((tmp_path / "session.json").read_text())
    assert data["absolute_time"] is True and data["format_version"] == 1
