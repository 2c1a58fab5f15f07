"""Free-running sensors: the interface they share and the one capture loop that phase-locks them.

A free-running sensor (a Pi camera through picamera2; its simulated twin) is started with a frame
duration and then produces frames on its own crystal; all software can do is request the duration
of upcoming frames. `FreeRunningCamera.run` is the only loop for such sensors: it stamps every
frame with its *capture* time on the shared clock (the sensor's timestamp mapped to realtime,
never the time software got the frame), labels it with the nearest grid slot, feeds that time to
the `PhaseServo` and hands the servo's next frame duration back to the sensor. The picamera2
adapter and the simulated sensor only implement `FreeRunningSensor`, so what the twin tests is
the loop that runs on a Pi.

Waiting for lock: with `LockPolicy.wait_for_lock` frames are written only once the servo reports
lock. The sensor starts when the session arms (before T0), so normally it locks during the START
lead, which cam0 lengthens to the longest `lock_lead_ms` its free-running cameras report. Slots of
the recording (n ≥ 0) that pass before lock are not written and are counted as `before_lock`; a
camera still unlocked `lock_timeout_s` after T0 records anyway (honestly stamped, so its phase
error is visible) and says so in `phase_lock.error` of its summary.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from syncrig_agent.backends.base import CameraBackend, CaptureControl, CaptureStats
from syncrig_agent.backends.phase_lock import PhaseServo, SensorLimits, ServoConfig
from syncrig_agent.contract.grid import FrameGrid
from syncrig_agent.frames import CapturedFrame, FrameMeta
from syncrig_agent.timing.camera_clock import CameraClock
from syncrig_agent.timing.waiter import realtime_minus

log = logging.getLogger(__name__)

# A sensor that delivers nothing for this long has stopped: the capture fails instead of hanging.
NO_FRAME_TIMEOUT_S = 5.0


class SensorFrame(ABC):
    """One completed frame, held until `release()` (its buffer then goes back to the sensor)."""

    sequence: int  # the sensor's frame counter
    sensor_ns: int  # the sensor's timestamp (start of exposure) in the sensor's `timestamp_clock`
    duration_ns: int | None = None  # the frame duration the sensor reports it used, if it does

    @abstractmethod
    def image(self, grid_index: int) -> np.ndarray:
        """The I420 pixels (H*3//2, W), uint8, owned by the caller."""

    def release(self) -> None:
        """Give the buffer back."""


class FreeRunningSensor(ABC):
    """What the phase-locked loop needs from a free-running sensor."""

    #: The clock its timestamps are in (libcamera: CLOCK_BOOTTIME).
    timestamp_clock: int = time.CLOCK_MONOTONIC
    #: Frames between a duration request and the first frame interval it governs.
    delay_frames: int = 1

    def open(self) -> None:
        """Acquire the device."""

    @abstractmethod
    def configure(self, period_ns: int) -> SensorLimits:
        """Set the mode up for this frame period; return the mode's frame-duration limits."""

    @abstractmethod
    def start(self, duration_ns: int) -> None:
        """Start streaming with this frame duration."""

    @abstractmethod
    def next_frame(self, timeout_s: float) -> SensorFrame | None:
        """The next completed frame, or None if none came within `timeout_s`."""

    @abstractmethod
    def set_frame_duration(self, duration_ns: int) -> None:
        """Request this duration for the next frame interval the sensor has not latched yet."""

    @abstractmethod
    def stop(self) -> None:
        """Stop streaming (a later `start` begins again)."""

    def close(self) -> None:
        """Release the device."""

    def describe(self) -> dict:
        return {}


@dataclass(frozen=True)
class LockPolicy:
    wait_for_lock: bool = True  # write frames only once the sensor is phase-locked
    lock_timeout_s: float = 2.0  # after T0: then record unlocked, flagged
    lock_lead_ms: float = 1000.0  # START lead this camera asks cam0 for, to lock before T0
    threshold_us: float = 50.0  # |phase error| that counts as locked
    lock_frames: int = 10  # consecutive frames within the threshold to declare lock


class FreeRunningCamera(CameraBackend):
    """A backend over a `FreeRunningSensor`, phase-locked to the grid by a `PhaseServo`."""

    triggered = False

    def __init__(
        self,
        width: int,
        height: int,
        clock: CameraClock,
        sensor: FreeRunningSensor,
        lock: LockPolicy | None = None,
        servo: ServoConfig | None = None,
    ) -> None:
        super().__init__(width, height, clock)
        self.sensor = sensor
        self.lock = lock or LockPolicy()
        self.servo_config = servo
        self._servo: PhaseServo | None = None
        self._lock_error: str | None = None

    def open(self) -> None:
        self.sensor.open()

    def close(self) -> None:
        self.sensor.close()

    def _servo_config(self) -> ServoConfig:
        base = self.servo_config or ServoConfig()
        return ServoConfig(
            kp=base.kp,
            ki=base.ki,
            delay_frames=self.sensor.delay_frames,
            acquire_ns=base.acquire_ns,
            lock_threshold_ns=round(self.lock.threshold_us * 1000),
            lock_frames=self.lock.lock_frames,
            lose_frames=base.lose_frames,
            window=base.window,
        )

    def capture_ns(self, frame: SensorFrame) -> int:
        """The frame's capture time on the shared (camera) clock, from the sensor's own timestamp."""
        realtime = frame.sensor_ns + realtime_minus(self.sensor.timestamp_clock)
        return self.clock.from_realtime(realtime)

    def run(
        self,
        grid: FrameGrid,
        control: CaptureControl,
        deliver: Callable[[CapturedFrame], bool],
        stats: CaptureStats,
    ) -> None:
        limits = self.sensor.configure(grid.period_ns)
        servo = PhaseServo(grid.t0_ns, grid.period_ns, limits, self._servo_config())
        self._servo = servo
        self._lock_error = None
        stats.phase_lock_report = self.phase_lock_status
        timeout_at = grid.t0_ns + round(self.lock.lock_timeout_s * 1e9)
        writing = not self.lock.wait_for_lock
        waited = False  # frames of the recording were held back waiting for lock
        next_slot = 0
        written_any = False
        lost_logged = 0
        self.sensor.start(servo.first_duration())
        try:
            while not control.aborted:
                frame = self.sensor.next_frame(NO_FRAME_TIMEOUT_S)
                if frame is None:
                    if control.aborted:
                        break
                    raise RuntimeError(f"the sensor delivered no frame for {NO_FRAME_TIMEOUT_S:g} s")
                wake_ns = self.clock.now_ns()
                image = None
                try:
                    capture = self.capture_ns(frame)
                    self.sensor.set_frame_duration(servo.update(capture, frame.sequence))
                    index = grid.nearest_index(capture)
                    if control.finished(max(index, 0)):
                        break
                    if index < 0:
                        continue  # before T0: the sensor is still locking on
                    if index < next_slot:
                        stats.slot_repeats += 1  # a second frame near one slot (not locked yet)
                        continue
                    if not writing:
                        if servo.locked:
                            writing = True
                        elif capture >= timeout_at:
                            writing = True
                            error_us = servo.phase_error_ns(capture)[1] / 1e3
                            self._lock_error = (
                                f"sensor not phase-locked {self.lock.lock_timeout_s:g} s after T0: "
                                f"recording unlocked frames (phase error now {error_us:.0f} µs)"
                            )
                            log.error(self._lock_error)
                        else:
                            waited = True
                            continue
                    image = frame.image(index)
                finally:
                    frame.release()
                if servo.tracker.losses > lost_logged:
                    lost_logged = servo.tracker.losses
                    log.warning("phase lock lost at grid index %d (%s)", index, servo.report()["label"])
                gap = index - next_slot
                if gap:
                    if not written_any and waited:
                        stats.before_lock += gap
                    else:
                        stats.sensor_drops += gap
                next_slot = index + 1
                target = grid.target(index)
                stats.note_wake_error(wake_ns - target)
                meta = FrameMeta(index, capture, frame.sensor_ns, target, wake_ns)
                written_any = True
                if deliver(CapturedFrame(image, meta)):
                    stats.captured += 1
                    if stats.first_index is None:
                        stats.first_index = index
                    stats.last_index = index
        finally:
            self.sensor.stop()

    def phase_lock_status(self) -> dict | None:
        """STATUS's `phase_lock`: the servo's state and phase-error figures for the current/last run."""
        info: dict = {
            "wait_for_lock": self.lock.wait_for_lock,
            "lock_timeout_s": self.lock.lock_timeout_s,
            "lock_lead_ns": self.lock_lead_ns,
            "error": self._lock_error,
        }
        servo = self._servo
        if servo is None:
            info.update(state="idle", label="idle")
        else:
            info.update(servo.report())
        return info

    @property
    def lock_lead_ns(self) -> int:
        return round(self.lock.lock_lead_ms * 1e6)

    def describe(self) -> dict:
        info = super().describe()
        info.update(triggered=False, sensor=self.sensor.describe(), wait_for_lock=self.lock.wait_for_lock)
        return info


__all__ = ["FreeRunningCamera", "FreeRunningSensor", "LockPolicy", "SensorFrame"]
