"""The simulated camera: a sensor triggered at each grid target.

It behaves like a PTP-synced, triggerable camera with configurable imperfections: clock offset
and drift (through its `SimulatedClock`), trigger jitter, random sensor drops. Each frame carries
its *true* exposure time (host CLOCK_REALTIME) drawn into the pixels, while the metadata carries
what the camera believes (its own clock): comparing the two is how simulation proves or
disproves sync.

Two trigger models:
- "scheduled" (default): the trigger is armed ahead and fires on the camera's clock at Tn (plus
  jitter), like a camera whose trigger is timed by its PTP clock, and like a real Pi sensor,
  whose exposure times are set by the sensor, not by when software runs. The agent's software
  still wakes for every slot to collect the frame. Exposed frames wait in the sensor's
  `buffer_count` buffers, as in libcamera's request queue: software that wakes late collects
  them with their true exposure times, and only frames beyond the buffers are lost (counted as
  late skips, the slots left empty). Host scheduling hiccups — on a VM, vCPU stalls of tens of
  ms — then cost nothing up to the buffer depth, and beyond it frames, never timestamps.
- "wake": the sensor exposes when the agent's thread wakes up (a pure software trigger), so every
  scheduling delay lands in the capture times. Used to measure the scheduler itself.
Either way each frame records `wake_ns`, so the software's wake error is always measured.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from syncrig_agent.backends.base import SENSOR_BUFFERS, CameraBackend, CaptureControl, CaptureStats
from syncrig_agent.contract.grid import FrameGrid
from syncrig_agent.frames import CapturedFrame, FrameMeta
from syncrig_agent.sim.scene import SyntheticScene
from syncrig_agent.timing.camera_clock import CameraClock
from syncrig_agent.timing.waiter import GridWaiter, Wake

TRIGGER_MODELS = ("scheduled", "wake")


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
        trigger: str = "scheduled",
        jitter_us: float = 0.0,
        seed: int | None = None,
        scene: str = "default",
        scene_config: dict | None = None,
        buffer_count: int = SENSOR_BUFFERS,
    ) -> None:
        super().__init__(width, height, clock)
        if buffer_count < 1:
            raise ValueError(f"buffer count must be >= 1, got {buffer_count}")
        if not 0.0 <= drop_probability < 1.0:
            raise ValueError(f"drop probability must be in [0, 1), got {drop_probability}")
        if trigger not in TRIGGER_MODELS:
            raise ValueError(f"trigger model must be one of {TRIGGER_MODELS}, got {trigger!r}")
        if jitter_us < 0:
            raise ValueError(f"jitter must be >= 0 µs, got {jitter_us}")
        self.camera_name = camera_name
        self.drop_probability = float(drop_probability)
        self.spin_ns = int(spin_us * 1000)
        self.trigger = trigger
        self.jitter_ns = jitter_us * 1000.0
        self._rng = random.Random(seed)
        self.scene = scene
        self.scene_config = dict(scene_config or {})
        self._scene: SyntheticScene | None = None
        self.wait_method: str | None = None
        self.buffer_count = int(buffer_count)

    def open(self) -> None:
        seed = sum(self.camera_name.encode())
        if self.scene == "charuco":
            # Simulation-only, desktop-only (it needs OpenCV): imported here, never on a Pi.
            from syncrig_agent.sim.charuco_scene import CharucoScene

            self._scene = CharucoScene(
                self.width, self.height, self.camera_name, self.scene_config, seed=seed
            )
        else:
            self._scene = SyntheticScene(self.width, self.height, self.camera_name, seed=seed)

    def _exposure(self, target: int, wake: Wake) -> tuple[int, int, int]:
        """(exposure on the camera clock, true exposure in host realtime, sensor timestamp)."""
        if self.trigger == "wake":
            return wake.actual_ns, wake.actual_realtime_ns, wake.monotonic_ns
        jitter = round(self._rng.gauss(0.0, self.jitter_ns)) if self.jitter_ns else 0
        exposure = target + jitter
        real = self.clock.to_realtime(exposure)
        # The sensor timestamp lives in the monotonic domain, like libcamera's.
        return exposure, real, wake.monotonic_ns - (wake.actual_realtime_ns - real)

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
        self.wait_method = waiter.method
        late_limit = grid.period_ns // 2
        try:
            index = grid.first_index_not_before(self.clock.now_ns())
            while not control.finished(index):
                target = grid.target(index)
                wake = waiter.wait_until(target, should_abort=lambda: control.aborted)
                if wake is None or control.finished(index):
                    break
                stats.note_wake_error(wake.error_ns)
                if wake.error_ns > late_limit:
                    # Late: every slot up to now has been exposed. A software trigger exposes at
                    # the wake, so those slots are empty; a scheduled sensor still holds the newest
                    # `buffer_count` of them. The rest are left empty; the grid is kept.
                    done = grid.first_index_not_before(wake.actual_ns)
                    held = 0 if self.trigger == "wake" else min(self.buffer_count, done - index)
                    stats.late_skips += done - index - held
                    index = done - held
                    while index < done and not control.finished(index):
                        self._collect(grid, index, wake, scene, deliver, stats)
                        index += 1
                    continue
                self._collect(grid, index, wake, scene, deliver, stats)
                index += 1
        finally:
            waiter.close()

    def _collect(
        self,
        grid: FrameGrid,
        index: int,
        wake: Wake,
        scene: SyntheticScene,
        deliver: Callable[[CapturedFrame], bool],
        stats: CaptureStats,
    ) -> None:
        """Read out slot `index`'s frame (exposed at its target) at `wake`, or count its drop."""
        if self.drop_probability and self._rng.random() < self.drop_probability:
            stats.sensor_drops += 1
            return
        target = grid.target(index)
        exposure, true_exposure, sensor_ns = self._exposure(target, wake)
        # The scene reuses its buffers; the copy makes this frame the receiver's own.
        image = scene.render(true_exposure, index).copy()
        meta = FrameMeta(index, exposure, sensor_ns, target, wake.actual_ns)
        if deliver(CapturedFrame(image, meta)):
            stats.captured += 1
            if stats.first_index is None:
                stats.first_index = index
            stats.last_index = index

    def describe(self) -> dict:
        info = super().describe()
        info.update(
            drop_probability=self.drop_probability,
            spin_us=self.spin_ns / 1000,
            trigger=self.trigger,
            jitter_us=self.jitter_ns / 1000,
            wait_method=self.wait_method,
            scene=self.scene,
            buffer_count=self.buffer_count,
        )
        return info
