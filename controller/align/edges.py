"""Edges in an external recording, and finding them in a sampled channel."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


class AlignError(ValueError):
    """A recording that cannot be aligned, with the reason (shown to the user as is)."""


@dataclass
class ExternalEdges:
    """Level changes of one channel: seconds since the file's first sample on the recorder's own
    clock, 1 = rising, 0 = falling; the sample index of each where the recording is sampled.

    A sampled edge at index i (the first sample at the new level) happened in ((i−1)/rate, i/rate]:
    its time is the middle, (i − ½)/rate, so sampling adds no bias, only ±½ sample."""

    times_s: np.ndarray  # float64
    levels: np.ndarray  # int8
    sample_index: np.ndarray | None  # int64, None for event lists without samples (CSV)
    rate_hz: float | None
    n_samples: int | None
    format: str
    channel: int
    source: str

    def __post_init__(self) -> None:
        order = np.argsort(self.times_s, kind="stable")
        self.times_s = np.asarray(self.times_s, dtype=np.float64)[order]
        self.levels = np.asarray(self.levels, dtype=np.int8)[order]
        if self.sample_index is not None:
            self.sample_index = np.asarray(self.sample_index, dtype=np.int64)[order]

    def inverted(self) -> ExternalEdges:
        """The same edges read as an active-low signal (an inverting input or audio interface)."""
        return ExternalEdges(
            self.times_s, 1 - self.levels, self.sample_index, self.rate_hz, self.n_samples,
            self.format, self.channel, self.source,
        )  # fmt: skip

    @classmethod
    def from_samples(
        cls, index: np.ndarray, levels: np.ndarray, rate_hz: float, n_samples: int, **kw: object
    ) -> ExternalEdges:
        index = np.asarray(index, dtype=np.int64)
        return cls((index - 0.5) / float(rate_hz), levels, index, float(rate_hz), int(n_samples), **kw)  # type: ignore[arg-type]


class DigitalEdgeFinder:
    """Edges of a digital (0/1) or analog channel fed in blocks: a threshold with hysteresis, so
    noise on a slow edge makes one edge, not several. An edge is at the first sample past the
    threshold (a sampled step cannot be placed closer than one sample)."""

    def __init__(self, low: float, high: float) -> None:
        span = high - low
        self.rise_at = low + 0.6 * span
        self.fall_at = low + 0.4 * span
        self.state: int | None = None
        self.offset = 0
        self.index: list[np.ndarray] = []
        self.levels: list[np.ndarray] = []

    def feed(self, block: np.ndarray) -> None:
        block = np.asarray(block, dtype=np.float64)
        if block.size == 0:
            return
        # -1 below the low threshold, +1 above the high one, 0 in between (keeps the state)
        zone = np.where(block >= self.rise_at, 1, np.where(block <= self.fall_at, -1, 0)).astype(np.int8)
        where = np.flatnonzero(zone)
        if where.size:
            marks = zone[where]
            prev = np.empty_like(marks)
            prev[0] = 0 if self.state is None else (1 if self.state else -1)
            prev[1:] = marks[:-1]
            change = marks != prev
            if self.state is None:
                change[0] = False  # the level the file starts in is not an edge
            self.index.append(where[change] + self.offset)
            self.levels.append((marks[change] > 0).astype(np.int8))
            self.state = int(marks[-1] > 0)
        self.offset += block.size

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.index:
            return np.zeros(0, np.int64), np.zeros(0, np.int8)
        return np.concatenate(self.index).astype(np.int64), np.concatenate(self.levels)


def edges_of_blocks(
    blocks: Iterable[np.ndarray], low: float, high: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """(sample index, level) of every edge, and the sample count."""
    finder = DigitalEdgeFinder(low, high)
    for block in blocks:
        finder.feed(block)
    index, levels = finder.result()
    return index, levels, finder.offset
