"""Decoding barcodes (contract/ttl.py BarcodeSpec) from a list of edges: the same decoder reads the
session's out table and the external recording, so both sides agree on what a code is.

A code is a rising edge after at least `quiet` low, a high pulse of the header's width (± one bit:
nothing else follows a quiet stretch, and a late edge on a loaded machine must not lose the code),
then the bits read at their centres. Rates within a few hundred ppm do not matter: a code
lasts 0.3 s, so 100 ppm moves its last bit by 30 ns."""

from __future__ import annotations

import numpy as np

from syncrig_agent.contract.ttl import BARCODE, BarcodeSpec


def decode_barcodes(
    times_ns: np.ndarray, levels: np.ndarray, end_ns: float, spec: BarcodeSpec = BARCODE
) -> tuple[np.ndarray, np.ndarray]:
    """(header rising-edge times, values) of every code that ends before `end_ns` (the end of the
    recording); times in ns on any clock within a few hundred ppm of the shared one."""
    times_ns = np.asarray(times_ns, dtype=np.float64)
    levels = np.asarray(levels)
    if times_ns.size < 2:
        return np.zeros(0), np.zeros(0, np.int64)
    tol = spec.bit_ns
    last_fall = np.maximum.accumulate(np.where(levels == 0, times_ns, -np.inf))
    prev_fall = np.concatenate([[-np.inf], last_fall[:-1]])
    rises = np.flatnonzero(levels[:-1] == 1)
    ok = (
        (times_ns[rises] - prev_fall[rises] >= spec.quiet_ns * 0.9)
        & (levels[rises + 1] == 0)
        & (np.abs(times_ns[rises + 1] - times_ns[rises] - spec.header_ns) <= tol)
        & (times_ns[rises] + spec.duration_ns <= end_ns)
    )
    starts = times_ns[rises[ok]]
    values = np.zeros(starts.size, dtype=np.int64)
    weights = 1 << np.arange(spec.bits - 1, -1, -1, dtype=np.int64)
    for j, rise in enumerate(starts):
        centres = rise + spec.header_ns + spec.gap_ns + (np.arange(spec.bits) + 0.5) * spec.bit_ns
        k = np.searchsorted(times_ns, centres, side="right") - 1
        values[j] = int((levels[k].astype(np.int64) * weights).sum())
    return starts, values
