"""The clock a camera schedules against and stamps frames with.

On a Pi this is CLOCK_REALTIME as disciplined by phc2sys/chrony (`SystemClock`). In simulation
every agent runs on one host, so each simulated camera gets a `SimulatedClock` that differs from
the host clock by a configurable offset and drift: the camera believes its clock, schedules on it
and stamps frames with it, while the pixels carry the host's (true) time — the ground truth that
`syncrig verify` reads back.
"""

from __future__ import annotations

import time
from typing import Protocol


class CameraClock(Protocol):
    def now_ns(self) -> int: ...
    def to_realtime(self, t_ns: int) -> int: ...
    def from_realtime(self, realtime_ns: int) -> int: ...
    def describe(self) -> dict: ...


class SystemClock:
    """The host's CLOCK_REALTIME, assumed disciplined to the shared timescale."""

    def now_ns(self) -> int:
        return time.time_ns()

    def to_realtime(self, t_ns: int) -> int:
        return t_ns

    def from_realtime(self, realtime_ns: int) -> int:
        return realtime_ns

    def describe(self) -> dict:
        return {"kind": "system"}


class SimulatedClock:
    """camera_time = realtime + offset + drift·(realtime − reference), drift in parts per million."""

    def __init__(self, offset_ns: int = 0, drift_ppm: float = 0.0, reference_ns: int | None = None) -> None:
        self.offset_ns = int(offset_ns)
        self.drift_ppm = float(drift_ppm)
        self.reference_ns = time.time_ns() if reference_ns is None else int(reference_ns)
        self._rate = 1.0 + self.drift_ppm * 1e-6

    def now_ns(self) -> int:
        return self.from_realtime(time.time_ns())

    def from_realtime(self, realtime_ns: int) -> int:
        elapsed = realtime_ns - self.reference_ns
        return realtime_ns + self.offset_ns + round(elapsed * (self._rate - 1.0))

    def to_realtime(self, t_ns: int) -> int:
        # Inverse of from_realtime: t = ref + (r − ref)·rate + offset  ⇒  r = ref + (t − ref − offset)/rate
        return self.reference_ns + round((t_ns - self.reference_ns - self.offset_ns) / self._rate)

    def describe(self) -> dict:
        return {
            "kind": "simulated",
            "offset_ns": self.offset_ns,
            "drift_ppm": self.drift_ppm,
            "reference_ns": self.reference_ns,
        }
