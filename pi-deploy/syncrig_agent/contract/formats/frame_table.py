"""`<cam>.frames.csv`: one row per recorded frame, in stream order.

`grid_index` makes drops visible without guessing (a missing n is a frame that does not exist);
`wall_ns` is the capture time on the shared clock, `sensor_ns` the sensor's own timestamp
(CLOCK_MONOTONIC/BOOTTIME domain), `target_ns` the grid target Tn the frame belongs to, `wake_ns`
when the agent's software got to it.
"""

from __future__ import annotations

import csv
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import TextIO

import numpy as np

FRAME_TABLE_SUFFIX = ".frames.csv"


@dataclass(frozen=True)
class FrameRow:
    frame: int  # position in the .h264 / .pts stream
    grid_index: int
    wall_ns: int
    sensor_ns: int
    target_ns: int
    keyframe: int  # 1 for an IDR frame (a place where a copy or a segment may start)
    size: int  # encoded bytes
    wake_ns: int  # when the agent's software handled the frame (wake error = wake_ns − target_ns)


FRAME_TABLE_COLUMNS = tuple(f.name for f in fields(FrameRow))


def write_frame_header(fh: TextIO) -> None:
    fh.write(",".join(FRAME_TABLE_COLUMNS) + "\n")


def write_frame_row(fh: TextIO, row: FrameRow) -> None:
    fh.write(",".join(str(int(v)) for v in astuple(row)) + "\n")


def read_frame_table(path: Path | str) -> dict[str, np.ndarray]:
    """Columns as int64 arrays keyed by name; extra columns written by newer versions are kept."""
    with open(path, newline="", encoding="ascii") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty frame table")
        missing = [c for c in ("frame", "grid_index", "wall_ns", "sensor_ns", "target_ns") if c not in header]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        rows = [r for r in reader if r]
    data = np.asarray(rows, dtype=np.int64).reshape(len(rows), len(header))
    return {name: data[:, i] for i, name in enumerate(header)}
