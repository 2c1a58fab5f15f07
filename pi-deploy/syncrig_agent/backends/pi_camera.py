"""Raspberry Pi camera through picamera2: a thin `FreeRunningSensor` adapter.

Everything about sync lives in `FreeRunningCamera` (the phase-lock loop) and `PhaseServo`, the
same code the simulated free-running sensor runs here; this file only speaks picamera2's API:

- configuration: a video configuration whose raw stream is the sensor mode SqueakShot documents
  for the IMX708 (2304×1296, 2×2 binned, full field of view, 10 bit), `main` YUV420 at the
  recording size, scaled down by the ISP; `buffer_count` buffers;
- manual image controls from the agent settings (`picamera2` section): exposure + analogue gain
  (auto exposure off), fixed colour gains (AWB off), manual focus (lens position in dioptres);
- frame timing: `FrameDurationLimits` (min = max, µs) set per frame through `set_controls` —
  the servo's output; the mode's limits come from `camera_controls["FrameDurationLimits"]`;
- timestamps: each completed request's `SensorTimestamp` metadata (ns, CLOCK_BOOTTIME, start of
  exposure as libcamera defines it), mapped to the shared clock by the loop. Never the time the
  request was collected.

picamera2 needs libcamera, which exists only on a Pi; it is imported lazily, and the tests run
this adapter against an API twin (tests/test_picamera2_adapter.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import numpy as np

from syncrig_agent.backends.free_running import FreeRunningCamera, FreeRunningSensor, LockPolicy, SensorFrame
from syncrig_agent.backends.phase_lock import SensorLimits
from syncrig_agent.backends.sensor_model import IMX708_LINE_TIME_NS
from syncrig_agent.settings import PiCameraSettings
from syncrig_agent.timing.camera_clock import CameraClock

log = logging.getLogger(__name__)

AF_MODE_MANUAL = 0  # libcamera.controls.AfModeEnum.Manual


def i420_from_padded(array: np.ndarray, width: int, height: int) -> np.ndarray:
    """picamera2's YUV420 array, rows padded to the ISP stride, as a tight (H*3//2, W) I420 frame."""
    stride = array.shape[1]
    if stride == width:
        return np.ascontiguousarray(array[: height * 3 // 2])
    luma = array[:height, :width]
    chroma = array[height : height * 3 // 2].reshape(-1)
    half = (stride // 2) * (height // 2)  # each chroma plane: H/2 rows of stride/2
    u = chroma[:half].reshape(height // 2, stride // 2)[:, : width // 2]
    v = chroma[half : 2 * half].reshape(height // 2, stride // 2)[:, : width // 2]
    return np.concatenate([luma.reshape(-1), u.reshape(-1), v.reshape(-1)]).reshape(height * 3 // 2, width)


class _PiFrame(SensorFrame):
    def __init__(
        self, request, sequence: int, sensor_ns: int, duration_ns: int | None, size: tuple[int, int]
    ):
        self._request = request
        self.sequence = sequence
        self.sensor_ns = sensor_ns
        self.duration_ns = duration_ns
        self._size = size

    def image(self, grid_index: int) -> np.ndarray:
        width, height = self._size
        return i420_from_padded(self._request.make_array("main"), width, height).copy()

    def release(self) -> None:
        self._request.release()  # the buffer goes back to libcamera at once


class Picamera2Sensor(FreeRunningSensor):
    """The picamera2 side of a `FreeRunningSensor`."""

    timestamp_clock = time.CLOCK_BOOTTIME

    def __init__(
        self,
        width: int,
        height: int,
        options: PiCameraSettings | None = None,
        factory: Callable[[int], object] | None = None,
    ) -> None:
        self.width = width
        self.height = height
        self.options = options or PiCameraSettings()
        self.options.validate()
        self.delay_frames = self.options.control_delay_frames
        self._factory = factory
        self._cam = None
        self._mode: dict | None = None
        self._last_ts: int | None = None
        self._sequence = -1
        self._duration_ns = 0

    def open(self) -> None:
        if self._cam is not None:
            return
        factory = self._factory
        if factory is None:
            from picamera2 import Picamera2  # only present on a Pi (needs libcamera)

            factory = Picamera2
        self._cam = factory(self.options.camera_num)

    def _sensor_mode(self) -> dict:
        """The advertised sensor mode of the configured size and bit depth (a clear error if none)."""
        assert self._cam is not None
        o = self.options
        modes = list(self._cam.sensor_modes)
        for mode in modes:
            if tuple(mode["size"]) == (o.sensor_width, o.sensor_height) and mode["bit_depth"] == o.bit_depth:
                return mode
        offered = ", ".join(f"{m['size'][0]}x{m['size'][1]}/{m['bit_depth']}bit" for m in modes)
        raise RuntimeError(
            f"sensor mode {o.sensor_width}x{o.sensor_height} {o.bit_depth}-bit not offered by this camera "
            f"(it offers: {offered}); set picamera2.sensor_width/sensor_height/bit_depth"
        )

    def image_controls(self, period_ns: int) -> dict:
        """Manual exposure / gain / white balance / focus from the settings, checked against the camera."""
        assert self._cam is not None
        o = self.options
        controls: dict = {}
        if o.exposure_us is not None or o.analogue_gain is not None:
            controls["AeEnable"] = False
            if o.exposure_us is not None:
                if o.exposure_us * 1000 >= period_ns:
                    raise RuntimeError(
                        f"picamera2.exposure_us {o.exposure_us} µs does not fit in a frame period of "
                        f"{period_ns / 1000:.0f} µs"
                    )
                controls["ExposureTime"] = int(o.exposure_us)
            if o.analogue_gain is not None:
                controls["AnalogueGain"] = float(o.analogue_gain)
        if o.colour_gains is not None:
            controls["AwbEnable"] = False
            controls["ColourGains"] = (float(o.colour_gains[0]), float(o.colour_gains[1]))
        if o.lens_position is not None:
            controls["AfMode"] = AF_MODE_MANUAL
            controls["LensPosition"] = float(o.lens_position)
        available = self._cam.camera_controls
        missing = sorted(k for k in controls if k not in available)
        if missing:
            raise RuntimeError(
                f"this camera has no {', '.join(missing)} control(s): remove the matching picamera2 settings"
            )
        return controls

    def configure(self, period_ns: int) -> SensorLimits:
        self.open()
        cam = self._cam
        assert cam is not None
        mode = self._sensor_mode()
        self._mode = mode
        frame_us = max(1, round(period_ns / 1000))
        config = cam.create_video_configuration(
            main={"size": (self.width, self.height), "format": "YUV420"},
            sensor={"output_size": tuple(mode["size"]), "bit_depth": mode["bit_depth"]},
            controls={**self.image_controls(period_ns), "FrameDurationLimits": (frame_us, frame_us)},
            buffer_count=self.options.buffer_count,
        )
        cam.configure(config)
        lo_us, hi_us = cam.camera_controls["FrameDurationLimits"][:2]
        line = self.options.line_time_ns or IMX708_LINE_TIME_NS
        return SensorLimits(int(lo_us) * 1000, int(hi_us) * 1000, line)

    def start(self, duration_ns: int) -> None:
        cam = self._cam
        assert cam is not None, "configure first"
        self._duration_ns = int(duration_ns)
        self._last_ts = None
        self._sequence = -1
        self.set_frame_duration(duration_ns)
        cam.start()

    def next_frame(self, timeout_s: float) -> SensorFrame | None:
        cam = self._cam
        assert cam is not None
        try:
            request = cam.capture_request(wait=timeout_s)
        except TimeoutError:
            return None
        try:
            meta = request.get_metadata()
            sensor_ns = int(meta["SensorTimestamp"])
            reported = meta.get("FrameDuration")  # µs, what the sensor actually ran
        except Exception:
            request.release()
            raise
        duration_ns = int(reported) * 1000 if reported else None
        # picamera2 does not hand out the sensor's frame counter; frames that never reached us show
        # as a timestamp gap of several frame durations.
        if self._last_ts is None:
            step = 1
        else:
            step = max(1, round((sensor_ns - self._last_ts) / max(1, duration_ns or self._duration_ns)))
        self._sequence += step
        self._last_ts = sensor_ns
        return _PiFrame(request, self._sequence, sensor_ns, duration_ns, (self.width, self.height))

    def set_frame_duration(self, duration_ns: int) -> None:
        cam = self._cam
        assert cam is not None
        self._duration_ns = int(duration_ns)
        us = max(1, round(duration_ns / 1000))
        # min = max: the sensor runs exactly this duration (libcamera rounds it to whole lines).
        cam.set_controls({"FrameDurationLimits": (us, us)})

    def stop(self) -> None:
        if self._cam is not None:
            self._cam.stop()

    def close(self) -> None:
        if self._cam is not None:
            self._cam.close()
            self._cam = None

    def describe(self) -> dict:
        o = self.options
        return {
            "model": "picamera2",
            "camera_num": o.camera_num,
            "sensor_mode": f"{o.sensor_width}x{o.sensor_height}/{o.bit_depth}bit",
            "delay_frames": self.delay_frames,
            "line_time_ns": o.line_time_ns or IMX708_LINE_TIME_NS,
            "exposure_us": o.exposure_us,
            "analogue_gain": o.analogue_gain,
            "colour_gains": o.colour_gains,
            "lens_position": o.lens_position,
        }


class Picamera2Camera(FreeRunningCamera):
    kind = "picamera2"
    # One camera, one configuration: the preview uses the recorded frames while recording.
    preview_while_recording = True

    def __init__(
        self,
        width: int,
        height: int,
        clock: CameraClock,
        options: PiCameraSettings | None = None,
        lock: LockPolicy | None = None,
        factory: Callable[[int], object] | None = None,
    ) -> None:
        super().__init__(width, height, clock, Picamera2Sensor(width, height, options, factory), lock=lock)


__all__ = ["Picamera2Camera", "Picamera2Sensor", "i420_from_padded"]
