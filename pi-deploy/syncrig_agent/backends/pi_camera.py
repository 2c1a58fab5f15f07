"""Raspberry Pi camera through picamera2 (real hardware only; cannot run off a Pi).

The sensor free-runs at the grid period (FrameDurationLimits = P). Each completed request is
stamped with libcamera's sensor timestamp mapped to the realtime clock — when the frame was
exposed, not when we asked for it — and labelled with the grid slot nearest to that instant.
Phase-locking the sensor onto the grid (nudging frame durations) is the agent's servo's job;
this backend only reports honestly where each frame fell.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ..grid import FrameGrid
from ..timing.camera_clock import CameraClock
from ..timing.waiter import realtime_minus
from .base import CameraBackend, CaptureControl, CapturedFrame, CaptureStats, FrameMeta

log = logging.getLogger(__name__)

# The IMX708 mode SqueakShot documents: 2304x1296 binned (full field of view), ISP-scaled down.
DEFAULT_SENSOR_SIZE = (2304, 1296)


class Picamera2Camera(CameraBackend):
    kind = "picamera2"
    triggered = False

    def __init__(
        self,
        width: int,
        height: int,
        clock: CameraClock,
        camera_num: int = 0,
        sensor_size: tuple[int, int] = DEFAULT_SENSOR_SIZE,
        controls: dict | None = None,
        buffer_count: int = 6,
        spin_us: float = 0.0,  # unused: a free-running sensor is not woken per frame
    ) -> None:
        super().__init__(width, height, clock)
        self.camera_num = camera_num
        self.sensor_size = sensor_size
        self.controls = dict(controls or {})
        self.buffer_count = buffer_count
        self._cam = None

    def open(self) -> None:
        from picamera2 import Picamera2  # only present on a Pi (needs libcamera)

        self._cam = Picamera2(self.camera_num)

    def _configure(self, period_ns: int) -> None:
        assert self._cam is not None
        frame_us = max(1, round(period_ns / 1000))
        config = self._cam.create_video_configuration(
            main={"size": (self.width, self.height), "format": "YUV420"},
            sensor={"output_size": self.sensor_size},
            controls={"FrameDurationLimits": (frame_us, frame_us), **self.controls},
            buffer_count=self.buffer_count,
        )
        self._cam.configure(config)

    def run(
        self,
        grid: FrameGrid,
        control: CaptureControl,
        deliver: Callable[[CapturedFrame], bool],
        stats: CaptureStats,
    ) -> None:
        if self._cam is None:
            self.open()
        cam = self._cam
        assert cam is not None
        self._configure(grid.period_ns)
        cam.start()
        last_index = -1
        try:
            while True:
                request = cam.capture_request()
                try:
                    meta = request.get_metadata()
                    sensor_ns = int(meta["SensorTimestamp"])
                    wall = meta.get("FrameWallClock")
                    if wall is not None:
                        # Microseconds in the libcamera versions that report it in µs.
                        wall_ns = int(wall) * 1000 if int(wall) < 10**17 else int(wall)
                    else:
                        # libcamera's sensor timestamps are in the CLOCK_BOOTTIME domain.
                        wall_ns = sensor_ns + realtime_minus(time.CLOCK_BOOTTIME)
                    wall_ns = self.clock.from_realtime(wall_ns)
                    index = grid.nearest_index(wall_ns)
                    if control.finished(max(index, 0)):
                        break
                    if index < 0:
                        continue  # exposed before T0
                    if index <= last_index:
                        continue  # a second frame in one slot (sensor not yet locked): keep the first
                    if index > last_index + 1 and last_index >= 0:
                        stats.sensor_drops += index - last_index - 1
                    # Rows may be padded to the ISP stride; keep the visible width only.
                    image = request.make_array("main")[:, : self.width].copy()
                finally:
                    request.release()  # buffers go back to libcamera at once
                stats.note_wake_error(wall_ns - grid.target(index))  # phase error of a free-running sensor
                meta = FrameMeta(index, wall_ns, sensor_ns, grid.target(index), self.clock.now_ns())
                frame = CapturedFrame(image, meta)
                if deliver(frame):
                    stats.captured += 1
                    stats.first_index = index if stats.first_index is None else stats.first_index
                    stats.last_index = index
                last_index = index
        finally:
            cam.stop()

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None
