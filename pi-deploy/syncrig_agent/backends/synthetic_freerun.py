"""The simulated free-running sensor in real time: `FreeRunningSensorModel` against the host clock.

Trigger model "freerun" of the synthetic camera. The model decides when each frame truly starts
(its own crystal error, random start phase, line-granular duration control with a pipeline delay,
exposure jitter); this sensor waits until the frame's readout would be complete, draws the true
start time into the pixels (`syncrig_agent.sim.timecode`, like the other synthetic triggers) and hands
it over with a monotonic-domain sensor timestamp — so the shared `FreeRunningCamera` loop maps and
servos it exactly as it does a Pi camera's libcamera timestamps.

Like a real sensor it does not wait for software: if the agent falls more than `buffer_count`
frames behind, the oldest completed frames are lost (sequence gaps, counted as sensor drops).
"""

from __future__ import annotations

import random
import threading
import time

import numpy as np

from syncrig_agent.backends.base import SENSOR_BUFFERS
from syncrig_agent.backends.free_running import FreeRunningCamera, FreeRunningSensor, LockPolicy, SensorFrame
from syncrig_agent.backends.phase_lock import SensorLimits
from syncrig_agent.backends.sensor_model import FreeRunningSensorModel, ModelFrame, imx708_limits
from syncrig_agent.sim.scene import SyntheticScene
from syncrig_agent.timing.camera_clock import CameraClock
from syncrig_agent.timing.waiter import realtime_minus_monotonic

CRYSTAL_PPM_RANGE = 50.0  # a random crystal error is drawn from ±this


class _SimFrame(SensorFrame):
    def __init__(self, sensor: SimulatedFreeRunningSensor, frame: ModelFrame, sensor_ns: int) -> None:
        self._sensor = sensor
        self._frame = frame
        self.sequence = frame.sequence
        self.sensor_ns = sensor_ns
        self.duration_ns = frame.duration_ns

    def image(self, grid_index: int) -> np.ndarray:
        # Rendered only for frames that are written (none while locking): the pixels carry the
        # true exposure start; the scene reuses its buffers, so the copy makes it the caller's.
        return self._sensor.scene.render(self._frame.start_ns, grid_index).copy()


class SimulatedFreeRunningSensor(FreeRunningSensor):
    timestamp_clock = time.CLOCK_MONOTONIC

    def __init__(
        self,
        width: int,
        height: int,
        camera_name: str = "cam",
        crystal_ppm: float | None = None,
        jitter_us: float = 0.0,
        delay_frames: int = 1,
        limits: SensorLimits | None = None,
        buffer_count: int = SENSOR_BUFFERS,
        seed: int | None = None,
    ) -> None:
        self.width = width
        self.height = height
        self.camera_name = camera_name
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()
        # Unless configured, each camera gets its own crystal error, like real sensors do.
        self.crystal_ppm = (
            float(crystal_ppm)
            if crystal_ppm is not None
            else self._rng.uniform(-CRYSTAL_PPM_RANGE, CRYSTAL_PPM_RANGE)
        )
        self.jitter_ns = float(jitter_us) * 1000.0
        self.delay_frames = int(delay_frames)
        self.limits = limits or imx708_limits()
        self.buffer_count = int(buffer_count)
        self.scene: SyntheticScene | None = None  # type: ignore[assignment]
        self.model: FreeRunningSensorModel | None = None
        self.dropped = 0
        self.start_phase_ns: int | None = None
        self._stopped = threading.Event()

    def open(self) -> None:
        if self.scene is None:
            self.scene = SyntheticScene(
                self.width, self.height, self.camera_name, seed=sum(self.camera_name.encode())
            )

    def configure(self, period_ns: int) -> SensorLimits:
        self.open()
        return self.limits

    def start(self, duration_ns: int) -> None:
        self._stopped.clear()
        # Streaming begins a few ms from now at a phase nobody chose.
        self.start_phase_ns = int(self._rng.uniform(0, duration_ns))
        first = time.time_ns() + 5_000_000 + self.start_phase_ns
        self.model = FreeRunningSensorModel(
            self.limits,
            first,
            crystal_ppm=self.crystal_ppm,
            delay_frames=self.delay_frames,
            jitter_ns=self.jitter_ns,
            seed=self._rng.randrange(2**32),
        )
        self.model.start(duration_ns)
        self._pending: ModelFrame | None = None

    def _readout_done_ns(self, frame: ModelFrame) -> int:
        # The frame is handed over once its last line is read out (~ one frame duration later).
        return frame.start_ns + int(frame.duration_ns * 0.9)

    def next_frame(self, timeout_s: float) -> SensorFrame | None:
        model = self.model
        if model is None:
            raise RuntimeError("sensor not started")
        frame = self._pending or model.next_frame()
        self._pending = None
        now = time.time_ns()
        # Behind by more than the buffers hold: those frames are gone, as on a real sensor.
        while now - self._readout_done_ns(frame) > self.buffer_count * frame.duration_ns:
            frame = model.next_frame()
            self.dropped += 1
        wait_s = (self._readout_done_ns(frame) - now) / 1e9
        if wait_s > timeout_s:
            self._pending = frame
            self._stopped.wait(timeout_s)
            return None
        if wait_s > 0 and self._stopped.wait(wait_s):
            self._pending = frame
            return None
        return _SimFrame(self, frame, frame.start_ns - realtime_minus_monotonic())

    def set_frame_duration(self, duration_ns: int) -> None:
        if self.model is not None:
            self.model.set_frame_duration(duration_ns)

    def stop(self) -> None:
        self._stopped.set()

    def describe(self) -> dict:
        return {
            "model": "simulated free-running",
            "crystal_ppm": round(self.crystal_ppm, 3),
            "jitter_us": self.jitter_ns / 1000,
            "delay_frames": self.delay_frames,
            "line_time_ns": round(self.limits.line_time_ns, 3),
            "start_phase_ns": self.start_phase_ns,
            "dropped_by_sensor": self.dropped,
        }


class SyntheticFreeRunningCamera(FreeRunningCamera):
    kind = "synthetic"

    def __init__(
        self,
        width: int,
        height: int,
        clock: CameraClock,
        camera_name: str = "cam",
        crystal_ppm: float | None = None,
        jitter_us: float = 0.0,
        delay_frames: int = 1,
        lock: LockPolicy | None = None,
        seed: int | None = None,
    ) -> None:
        sensor = SimulatedFreeRunningSensor(
            width, height, camera_name, crystal_ppm, jitter_us, delay_frames, seed=seed
        )
        super().__init__(width, height, clock, sensor, lock=lock)

    def describe(self) -> dict:
        info = super().describe()
        info["trigger"] = "freerun"
        return info


__all__ = ["SimulatedFreeRunningSensor", "SyntheticFreeRunningCamera"]
