"""The simulated camera: a sensor triggered at each grid target.

It behaves like a PTP-synced, triggerable camera with configurable imperfections (clock offset and
drift through its `SimulatedClock`, random sensor drops). Each frame carries its *true* capture
time (host CLOCK_REALTIME) drawn into the pixels, while the metadata carries what the camera
believes (its own clock): comparing the two is how simulation proves or disproves sync.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from ..grid import FrameGrid
from ..scene import SyntheticScene
from ..timing.camera_clock import CameraClock
from ..timing.waiter import GridWaiter
from .base import CameraBackend, CaptureControl, CapturedFrame, CaptureStats, FrameMeta


class SyntheticCamera(CameraBackend):
    kind = "synthetic"
    triggered = True

    def __init__(
        self,
        width: int,
        height: int,
        clock: CameraClock,
        camera_name: str = "cam",
        drop_probability: float = 0.0,
        spin_us: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(width, height, clock)
        if not 0.0 <= drop_probability < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {drop_probability}")
        self.camera_name = camera_name
        self.drop_probability = float(drop_probability)
        self.spin_ns = int(spin_us * 1000)
        self._rng = random.Random(seed)
        self._scene: SyntheticScene | None = None

    def open(self) -> None:
        seed = sum(self.camera_name.encode())
        self._scene = SyntheticScene(self.width, self.height, self.camera_name, seed=seed)

    def run(
        self,
        grid: FrameGrid,
        control: CaptureControl,
        deliver: Callable[[CapturedFrame], bool],
        stats: CaptureStats,
    ) -> None:
        if self._scene is None:
            self.open()
        scene = self._scene
        assert scene is not None
        waiter = GridWaiter(self.clock, spin_ns=self.spin_ns)
        late_limit = grid.period_ns // 2
        try:
            index = grid.first_index_not_before(self.clock.now_ns())
            while not control.finished(index):
                target = grid.target(index)
                wake = waiter.wait_until(target, should_abort=lambda: control.aborted)
                if wake is None or control.finished(index):
                    break
                if wake.error_ns > late_limit:
                    # Too late to be frame `index`: leave the slot empty and rejoin the grid.
                    rejoin = grid.first_index_not_before(wake.actual_ns)
                    stats.late_skips += rejoin - index
                    index = rejoin
                    continue
                stats.note_wake_error(wake.error_ns)
                if self.drop_probability and self._rng.random() < self.drop_probability:
                    stats.sensor_drops += 1
                    index += 1
                    continue
                # The scene reuses its buffers; the copy makes this frame the receiver's own.
                image = scene.render(wake.actual_realtime_ns, index).copy()
                meta = FrameMeta(index, wake.actual_ns, wake.monotonic_ns, target)
                if deliver(CapturedFrame(image, meta)):
                    stats.captured += 1
                    if stats.first_index is None:
                        stats.first_index = index
                    stats.last_index = index
                else:
                    stats.queue_overflows += 1
                index += 1
        finally:
            waiter.close()

    def describe(self) -> dict:
        info = super().describe()
        info.update(drop_probability=self.drop_probability, spin_us=self.spin_ns / 1000)
        return info
