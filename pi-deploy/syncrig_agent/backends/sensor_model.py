"""A free-running rolling-shutter sensor as a pure model, stepped in virtual time.

What it models (each one something the phase-lock servo must cope with on a Pi):
- its own crystal: every duration it produces is off by `crystal_ppm` (±50 ppm is typical), and
  that error may drift slowly (temperature) — `drift_ppm_per_min` plus a small random walk;
- a random start phase: the first frame starts whenever the sensor happens to start streaming;
- frame-duration control in whole lines (`line_time_ns`), within the mode's limits, taking
  effect `delay_frames` frames late (see `set_frame_duration`);
- jitter of each frame's actual exposure start (`jitter_ns`, Gaussian, not accumulating).

Time here is *true* time (ns). The real-time twin (`synthetic_freerun.py`) runs this same model
against the host clock and draws each frame's true start into its pixels; the benchmark and the
unit tests step it directly, so ten minutes of sensor take well under a second.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass

from syncrig_agent.backends.phase_lock import SensorLimits

# The IMX708 (Camera Module 3) in its 2x2-binned 2304x1296 mode: line_length_pix 7824 at a pixel
# rate of 585.6 MHz → 13.361 µs per line; frame length ≥ 1296 + 40 lines (≈ 56.03 fps at most).
IMX708_LINE_TIME_NS = 7824 / 585.6e6 * 1e9
IMX708_MIN_LINES = 1296 + 40
IMX708_MAX_LINES = 0xFFFF  # the frame-length register's range


def imx708_limits() -> SensorLimits:
    return SensorLimits(
        min_duration_ns=round(IMX708_MIN_LINES * IMX708_LINE_TIME_NS),
        max_duration_ns=round(IMX708_MAX_LINES * IMX708_LINE_TIME_NS),
        line_time_ns=IMX708_LINE_TIME_NS,
    )


@dataclass(frozen=True)
class ModelFrame:
    sequence: int  # the sensor's frame counter (consecutive unless frames are lost downstream)
    start_ns: int  # true start of exposure (what the pixels show)
    duration_ns: int  # the frame duration the sensor ran this frame with (nominal, in its own ticks)


class FreeRunningSensorModel:
    """Step with `next_frame()`; steer with `set_frame_duration()`."""

    def __init__(
        self,
        limits: SensorLimits,
        start_ns: int,
        crystal_ppm: float = 0.0,
        delay_frames: int = 1,
        jitter_ns: float = 0.0,
        drift_ppm_per_min: float = 0.0,
        wander_ppm_per_sqrt_min: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if delay_frames < 0:
            raise ValueError("delay_frames must be ≥ 0")
        if jitter_ns < 0:
            raise ValueError("jitter must be ≥ 0")
        self.limits = limits
        self.crystal_ppm = float(crystal_ppm)
        self.delay_frames = int(delay_frames)
        self.jitter_ns = float(jitter_ns)
        self.drift_ppm_per_min = float(drift_ppm_per_min)
        self.wander_ppm_per_sqrt_min = float(wander_ppm_per_sqrt_min)
        self._rng = random.Random(seed)
        self._first_start_ns = int(start_ns)
        self._next_start = float(start_ns)  # true time the next frame starts (before jitter)
        self._sequence = -1
        self._wander_ppm = 0.0
        self._pending: deque[int] = deque()
        self._requested: int | None = None
        self.requests = 0

    def start(self, duration_ns: float) -> None:
        """Start streaming with this frame duration (quantised to lines, clamped to the mode)."""
        d = self.limits.quantise(duration_ns)
        self._pending = deque([d] * (self.delay_frames + 1))
        self._requested = d

    def set_frame_duration(self, duration_ns: float) -> int:
        """Request a frame duration; returns what the sensor will actually use (whole lines).

        Called after frame k was delivered, it governs the interval from frame k+1+delay to the
        next one: the durations of frames k..k+delay are already latched in the sensor.
        """
        if self._requested is None:
            raise RuntimeError("sensor not started")
        self._requested = self.limits.quantise(duration_ns)
        self.requests += 1
        return self._requested

    def ppm_at(self, t_ns: float) -> float:
        minutes = (t_ns - self._first_start_ns) / 60e9
        return self.crystal_ppm + self.drift_ppm_per_min * minutes + self._wander_ppm

    def next_frame(self) -> ModelFrame:
        if self._requested is None:
            raise RuntimeError("sensor not started")
        if self._sequence >= 0:
            duration = self._pending.popleft()
            self._pending.append(self._requested)
            if self.wander_ppm_per_sqrt_min:
                # Random-walk frequency wander, scaled so its spread grows as √minutes.
                step_min = duration / 60e9
                self._wander_ppm += self._rng.gauss(0.0, self.wander_ppm_per_sqrt_min * step_min**0.5)
            # A crystal fast by ε ppm makes every nominal duration shorter in true time.
            self._next_start += duration / (1.0 + self.ppm_at(self._next_start) * 1e-6)
        self._sequence += 1
        jitter = self._rng.gauss(0.0, self.jitter_ns) if self.jitter_ns else 0.0
        return ModelFrame(self._sequence, round(self._next_start + jitter), self._pending[0])

    @property
    def next_start_ns(self) -> float:
        """True time the frame after the last delivered one will start (jitter aside)."""
        return self._next_start + self._pending[0] / (1.0 + self.ppm_at(self._next_start) * 1e-6)


__all__ = ["FreeRunningSensorModel", "IMX708_LINE_TIME_NS", "ModelFrame", "imx708_limits"]
