"""Sensor phase lock: steer a free-running sensor's frame starts onto the grid Tn = T0 + n·P.

A rolling-shutter sensor on a Pi cannot be triggered per frame; it starts a frame every "frame
duration" on its own crystal. What software *can* do is choose the duration of upcoming frames
(libcamera's frame-duration control, picamera2's `FrameDurationLimits`), in whole sensor lines,
within the sensor mode's limits, and only a few frames ahead (the control passes through a
request queue and the sensor's own register latching). The servo here closes that loop:

    measure  e_k = t_k − T(nearest n)   (capture time of frame k on the shared clock vs the grid)
    predict  ê   = e_k + Σ (D_i − P) over the durations already committed but not yet observed
    command  D   = P − Kp·ê − I,   I += Ki·ê        (then clamp to the mode's limits, quantise to lines)

Why a PI controller with a predictor (a Smith predictor for a pure delay):
- The plant is an integrator: each frame's phase is the previous phase plus (D − P)·rate. A
  crystal error ε adds a constant ramp of ε·P per frame (≈ 0.9 µs at 50 ppm and 56 fps). A
  proportional term alone would leave a standing phase error ε·P/Kp; the integral term learns
  −ε·P and so holds zero phase under constant (and slowly drifting, e.g. thermal) rate errors.
- The command acts `delay_frames` + 1 frames after the measurement. Feeding back the measured
  phase directly would make a gain high enough to lock in a few frames oscillate; predicting the
  phase at the moment the command lands (from the durations already committed, which the servo
  itself chose) removes the delay from the loop, so the gains can be chosen as for a delay-free
  loop: with Kp = 0.5, Ki = 0.1 both closed-loop poles sit at |z| ≈ 0.71 (≈ 3-frame time constant).
- Acquisition from a random start phase (up to half a period away) is a different regime: far
  from the grid the servo makes a one-shot (dead-beat, gain 1) correction limited by the duration
  limits, choosing to move to the earlier or later slot by whichever the limits allow sooner
  (at a mode's maximum frame rate frames can only be lengthened, so "earlier" is unreachable).
  The integrator is frozen then (anti-windup) and while the command is clamped.
- Quantisation to lines: the predictor uses the quantised (actually committed) durations, so the
  rounding residue of one command is seen and corrected by the next; the phase dithers within
  about half a line (≈ 7 µs on an IMX708 in its 2304×1296 mode).

The lock state machine ("locking" → "locked ±X µs" → "lost") judges the *measured* phase error,
never the servo's own prediction.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

# Lock states.
IDLE = "idle"
LOCKING = "locking"
LOCKED = "locked"
LOST = "lost"


@dataclass(frozen=True)
class SensorLimits:
    """What the sensor mode allows: frame durations in [min, max] ns, in steps of one line."""

    min_duration_ns: int
    max_duration_ns: int
    line_time_ns: float

    def __post_init__(self) -> None:
        if self.line_time_ns <= 0:
            raise ValueError(f"line time must be positive, got {self.line_time_ns}")
        if not 0 < self.min_duration_ns <= self.max_duration_ns:
            raise ValueError(f"bad frame-duration limits {self.min_duration_ns}..{self.max_duration_ns} ns")

    def quantise(self, duration_ns: float) -> int:
        """The nearest whole-line duration inside the limits."""
        lo = int(np.ceil(self.min_duration_ns / self.line_time_ns - 1e-9))
        hi = int(np.floor(self.max_duration_ns / self.line_time_ns + 1e-9))
        lines = min(max(round(duration_ns / self.line_time_ns), lo), hi)
        return round(lines * self.line_time_ns)


@dataclass(frozen=True)
class ServoConfig:
    kp: float = 0.5  # tracking gain on the predicted phase
    ki: float = 0.1  # integral gain (learns the crystal's rate error)
    delay_frames: int = 1  # frames between a command and the first interval it governs (see module doc)
    acquire_ns: int = 200_000  # beyond this predicted error: one-shot dead-beat acquisition
    lock_threshold_ns: int = 50_000  # |phase error| that counts as on the grid
    lock_frames: int = 10  # consecutive frames within the threshold to declare lock
    lose_frames: int = 3  # consecutive frames beyond 2× threshold to declare the lock lost
    window: int = 256  # frames of recent phase errors kept for the ±X figure and STATUS

    def __post_init__(self) -> None:
        if not (0 < self.kp <= 1 and 0 <= self.ki < 1):
            raise ValueError(f"servo gains out of range: kp={self.kp}, ki={self.ki}")
        if self.delay_frames < 0 or self.lock_frames < 1 or self.lose_frames < 1:
            raise ValueError("delay_frames must be ≥ 0; lock_frames and lose_frames ≥ 1")
        if self.lock_threshold_ns <= 0:
            raise ValueError("lock threshold must be positive")


@dataclass
class LockTracker:
    """The lock state from measured phase errors; remembers when (frame, time, grid index) it locked."""

    threshold_ns: int
    lock_frames: int
    lose_frames: int
    window: int = 256
    state: str = IDLE
    locked_at_ns: int | None = None  # capture time of the frame that completed the lock
    locked_at_index: int | None = None  # its grid index
    frames_to_lock: int | None = None
    losses: int = 0
    frames: int = 0
    _good: int = 0
    _bad: int = 0
    _recent: deque = field(default_factory=deque)
    _recent_locked: deque = field(default_factory=deque)  # recent errors while locked (the ±X)
    _since_lock: list = field(default_factory=list)  # |error| samples since the (last) lock, bounded

    def observe(self, error_ns: int, capture_ns: int, grid_index: int) -> str:
        self.frames += 1
        if self.state == IDLE:
            self.state = LOCKING
        mag = abs(int(error_ns))
        self._recent.append(int(error_ns))
        if len(self._recent) > self.window:
            self._recent.popleft()
        if self.state == LOCKED:
            self._recent_locked.append(mag)
            if len(self._recent_locked) > self.window:
                self._recent_locked.popleft()
            self._since_lock.append(mag)
            if len(self._since_lock) > 65536:
                del self._since_lock[: len(self._since_lock) // 2]
            self._bad = self._bad + 1 if mag > 2 * self.threshold_ns else 0
            if self._bad >= self.lose_frames:
                self.state = LOST
                self.losses += 1
                self._good = 0
            return self.state
        self._good = self._good + 1 if mag <= self.threshold_ns else 0
        if self._good >= self.lock_frames:
            self.state = LOCKED
            self._bad = 0
            # The frames that made the lock are its first evidence; acquisition errors are not.
            self._recent_locked = deque(abs(e) for e in list(self._recent)[-self.lock_frames :])
            if self.locked_at_ns is None:  # the first lock is the one a session records
                self.locked_at_ns = int(capture_ns)
                self.locked_at_index = int(grid_index)
                self.frames_to_lock = self.frames
        return self.state

    @property
    def locked(self) -> bool:
        return self.state == LOCKED

    def bound_ns(self) -> int | None:
        """X of "locked ±X µs": the largest |error| of the recent frames while locked (the window)."""
        if not self._recent_locked:
            return None
        return int(max(self._recent_locked))

    def report(self) -> dict:
        recent = np.abs(np.asarray(self._recent, dtype=np.int64))
        since = np.asarray(self._since_lock, dtype=np.int64)
        bound = self.bound_ns()
        label = self.state
        if self.state == LOCKED and bound is not None:
            label = f"locked ±{bound / 1e3:.1f} µs"
        return {
            "state": self.state,
            "label": label,
            "threshold_us": self.threshold_ns / 1e3,
            "last_error_us": self._recent[-1] / 1e3 if self._recent else None,
            "recent": _stats_us(recent),  # |phase error| of the last `window` frames
            "since_lock": _stats_us(since),  # |phase error| of every frame since the first lock
            "locked_at_ns": self.locked_at_ns,
            "locked_at_index": self.locked_at_index,
            "frames_to_lock": self.frames_to_lock,
            "losses": self.losses,
            "frames": self.frames,
        }


def _stats_us(values: np.ndarray) -> dict:
    if values.size == 0:
        return {}
    return {
        "frames": int(values.size),
        "p50_us": float(np.percentile(values, 50) / 1e3),
        "p99_us": float(np.percentile(values, 99) / 1e3),
        "max_us": float(values.max() / 1e3),
    }


class PhaseServo:
    """Turns each frame's capture time into the next frame duration to request.

    Use: `first_duration()` to start the sensor, then per delivered frame
    `duration = servo.update(capture_ns, sequence)` and hand `duration` to the sensor. `sequence`
    is the sensor's frame counter: a frame the sensor skipped still consumed a committed duration.
    """

    def __init__(self, t0_ns: int, period_ns: int, limits: SensorLimits, config: ServoConfig | None = None):
        if period_ns <= 0:
            raise ValueError(f"period must be positive, got {period_ns}")
        self.t0_ns = int(t0_ns)
        self.period_ns = int(period_ns)
        self.limits = limits
        self.config = config or ServoConfig()
        if not limits.min_duration_ns <= period_ns <= limits.max_duration_ns:
            raise ValueError(
                f"frame period {period_ns} ns is outside the sensor mode's frame durations "
                f"{limits.min_duration_ns}..{limits.max_duration_ns} ns: choose another fps or sensor mode"
            )
        self.nominal_ns = limits.quantise(period_ns)
        self.integral_ns = 0.0
        # Durations already requested that still govern intervals from the newest observed frame on.
        self._committed: deque[int] = deque([self.nominal_ns] * (self.config.delay_frames + 1))
        self._last_sequence: int | None = None
        self.tracker = LockTracker(
            self.config.lock_threshold_ns,
            self.config.lock_frames,
            self.config.lose_frames,
            self.config.window,
        )
        self.last_request_ns = self.nominal_ns
        self.clamped = 0  # commands the limits cut short (acquisition mostly)

    def first_duration(self) -> int:
        return self.nominal_ns

    def phase_error_ns(self, capture_ns: int) -> tuple[int, int]:
        """(nearest grid index, signed error in ns) of a capture time."""
        p = self.period_ns
        index = (capture_ns - self.t0_ns + p // 2) // p
        return int(index), int(capture_ns - (self.t0_ns + index * p))

    def update(self, capture_ns: int, sequence: int | None = None) -> int:
        index, error = self.phase_error_ns(capture_ns)
        self.tracker.observe(error, capture_ns, index)
        if sequence is not None and self._last_sequence is not None:
            # Frames the sensor produced but we never saw still used up their committed durations.
            for _ in range(max(0, int(sequence) - self._last_sequence - 1)):
                self._advance(self._committed[-1])
        if sequence is not None:
            self._last_sequence = int(sequence)
        p = self.period_ns
        # Phase of the frame the new command's interval starts from, predicted from what is committed.
        predicted = error + sum(d - p for d in self._committed)
        predicted = (predicted + p // 2) % p - p // 2  # relative to its own nearest slot
        cfg = self.config
        if abs(predicted) > cfg.acquire_ns:
            wanted = self._acquisition_duration(predicted)
            integrate = False
        else:
            wanted = p - cfg.kp * predicted - self.integral_ns
            integrate = True
        lo, hi = self.limits.min_duration_ns, self.limits.max_duration_ns
        clamped = not lo <= wanted <= hi
        if clamped:
            self.clamped += 1
        request = self.limits.quantise(wanted)
        if integrate and not clamped:
            # Integral learns the steady correction (−ε·P); frozen while acquiring or saturated.
            self.integral_ns += cfg.ki * predicted
        self._advance(request)
        self.last_request_ns = request
        return request

    def _acquisition_duration(self, predicted: int) -> float:
        """Dead-beat step toward the earlier or the later slot, whichever the limits reach sooner."""
        p = self.period_ns
        shorten_room = p - self.limits.min_duration_ns  # per frame
        lengthen_room = self.limits.max_duration_ns - p
        if predicted > 0:
            earlier, later = predicted, p - predicted  # move back by `earlier` or forward by `later`
        else:
            earlier, later = p + predicted, -predicted
        frames_earlier = np.inf if shorten_room <= 0 else np.ceil(earlier / shorten_room)
        frames_later = np.inf if lengthen_room <= 0 else np.ceil(later / lengthen_room)
        if frames_earlier < frames_later:
            return p - earlier - self.integral_ns
        return p + later - self.integral_ns

    def _advance(self, request: int) -> None:
        self._committed.popleft()
        self._committed.append(int(request))

    @property
    def state(self) -> str:
        return self.tracker.state

    @property
    def locked(self) -> bool:
        return self.tracker.locked

    def report(self) -> dict:
        info = self.tracker.report()
        info.update(
            period_ns=self.period_ns,
            t0_ns=self.t0_ns,
            line_time_ns=self.limits.line_time_ns,
            duration_limits_ns=[self.limits.min_duration_ns, self.limits.max_duration_ns],
            delay_frames=self.config.delay_frames,
            # What the integral has learnt: the crystal's rate error plus the line-rounding of P.
            integral_ns=round(self.integral_ns, 1),
            last_request_ns=self.last_request_ns,
            clamped_commands=self.clamped,
        )
        return info


__all__ = ["IDLE", "LOCKED", "LOCKING", "LOST", "LockTracker", "PhaseServo", "SensorLimits", "ServoConfig"]
