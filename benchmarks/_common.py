"""Helpers shared by the benchmarks: a bounded CPU load generator and percentile formatting."""

from __future__ import annotations

import multiprocessing as mp
import os
import time

import numpy as np


def _burn(deadline: float) -> None:
    x = 0
    while time.monotonic() < deadline:
        for _ in range(10_000):
            x += 1


class CpuLoad:
    """Keep every core busy at normal priority for at most `seconds` (then the workers exit alone)."""

    def __init__(self, seconds: float, workers: int | None = None) -> None:
        self.seconds = seconds
        self.workers = workers or os.cpu_count() or 2
        self._procs: list[mp.Process] = []

    def __enter__(self) -> CpuLoad:
        deadline = time.monotonic() + self.seconds
        ctx = mp.get_context("spawn")
        self._procs = [ctx.Process(target=_burn, args=(deadline,), daemon=True) for _ in range(self.workers)]
        for p in self._procs:
            p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self._procs:
            p.terminate()
        for p in self._procs:
            p.join(5)


def stats_us(values_ns) -> dict:
    arr = np.asarray(values_ns, dtype=np.float64) / 1e3
    if arr.size == 0:
        return {"n": 0}
    return {
        "n": int(arr.size),
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "max": float(arr.max()),
    }


def fmt(stats: dict) -> str:
    if not stats.get("n"):
        return "no samples"
    return f"p50 {stats['p50']:8.1f}  p99 {stats['p99']:8.1f}  max {stats['max']:9.1f} µs  (n={stats['n']})"
