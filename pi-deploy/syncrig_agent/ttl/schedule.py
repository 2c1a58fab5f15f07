"""The edges TTL out sends, in time order, from the grid: the start marker at T0, a strobe pulse at
every Tn, a barcode every few seconds (contract/ttl.py says their shapes). Lazy and endless: the
output thread takes edges until the recording's stop."""

from __future__ import annotations

import heapq
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

from syncrig_agent.contract.grid import FrameGrid
from syncrig_agent.contract.ttl import BARCODE, START_MARKER_NS, BarcodeSpec


@dataclass(frozen=True, order=True)
class PlannedEdge:
    target_ns: int
    line: int
    level: int
    role: str
    unit_ns: int  # when its pulse or code starts: a unit started before the stop is sent whole


def strobe_edges(grid: FrameGrid, line: int, width_ns: int) -> Iterator[PlannedEdge]:
    for n in itertools.count():
        t = grid.target(n)
        yield PlannedEdge(t, line, 1, "strobe", t)
        yield PlannedEdge(t + width_ns, line, 0, "strobe", t)


def start_edges(grid: FrameGrid, line: int) -> Iterator[PlannedEdge]:
    yield PlannedEdge(grid.t0_ns, line, 1, "start", grid.t0_ns)
    yield PlannedEdge(grid.t0_ns + START_MARKER_NS, line, 0, "start", grid.t0_ns)


def barcode_edges(
    grid: FrameGrid, line: int, rng: random.Random, spec: BarcodeSpec = BARCODE
) -> Iterator[PlannedEdge]:
    for k in itertools.count():
        start = spec.start_ns(grid.t0_ns, k)
        for offset, level in spec.levels(rng.getrandbits(spec.bits)):
            yield PlannedEdge(start + offset, line, level, "barcode", start)


def plan_edges(
    grid: FrameGrid, outputs: dict[str, int], strobe_width_ns: int, rng: random.Random
) -> Iterator[PlannedEdge]:
    """Every role's edges merged in time order (lines are distinct, so ties do not matter)."""
    trains = []
    if "start" in outputs:
        trains.append(start_edges(grid, outputs["start"]))
    if "strobe" in outputs:
        trains.append(strobe_edges(grid, outputs["strobe"], strobe_width_ns))
    if "barcode" in outputs:
        trains.append(barcode_edges(grid, outputs["barcode"], rng))
    return heapq.merge(*trains)
