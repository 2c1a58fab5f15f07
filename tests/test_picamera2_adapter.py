"""The picamera2 adapter's use of picamera2's API, against an API TWIN (picamera2 itself needs
libcamera and a Pi camera, so it cannot run here; tests/test_backends.py keeps the loud skip for
the real one).

`Picamera2ApiTwin` below is NOT picamera2: it offers the parts of picamera2's documented API the
adapter uses (sensor_modes, camera_controls, create_video_configuration, configure, start,
set_controls, capture_request → get_metadata / make_array / release, stop, close) and answers them
from the simulated free-running sensor model, in virtual time, with the stride padding and the
CLOCK_BOOTTIME `SensorTimestamp` a Pi produces. The phase-lock loop on top is the real one."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest

from syncrig_agent.backends.base import CaptureControl, CaptureStats
from syncrig_agent.backends.pi_camera import Picamera2Camera, i420_from_padded
from syncrig_agent.backends.sensor_model import FreeRunningSensorModel, imx708_limits
from syncrig_agent.contract.grid import FrameGrid, period_ns_for_fps
from syncrig_agent.encoders.pyav_h264 import choose_h264_codec
from syncrig_agent.settings import AgentSettings, PiCameraSettings, SettingsError
from syncrig_agent.sim.scene import SyntheticScene
from syncrig_agent.sim.timecode import read_timecode
from syncrig_agent.timing import SystemClock
from syncrig_agent.timing.waiter import realtime_minus

WIDTH, HEIGHT, STRIDE = 320, 240, 384
IMX708_MODES = [
    {"size": (1536, 864), "bit_depth": 10, "fps": 120.13, "format": "SRGGB10_CSI2P"},
    {"size": (2304, 1296), "bit_depth": 10, "fps": 56.03, "format": "SRGGB10_CSI2P"},
    {"size": (4608, 2592), "bit_depth": 10, "fps": 14.35, "format": "SRGGB10_CSI2P"},
]


class _TwinRequest:
    def __init__(self, twin: Picamera2ApiTwin, start_ns: int, duration_ns: int) -> None:
        self._twin = twin
        self._start_ns = start_ns
        self._duration_ns = duration_ns
        self.released = False

    def get_metadata(self) -> dict:
        # libcamera's SensorTimestamp: ns, CLOCK_BOOTTIME; FrameDuration / ExposureTime in µs.
        return {
            "SensorTimestamp": self._start_ns - self._twin.realtime_minus_boottime,
            "FrameDuration": self._duration_ns // 1000,
            "ExposureTime": self._twin.controls.get("ExposureTime", 10_000),
        }

    def make_array(self, name: str) -> np.ndarray:
        assert name == "main" and not self.released, "make_array after release"
        w, h = self._twin.config["main"]["size"]
        tight = self._twin.scene.render(self._start_ns, 0)
        # The ISP's row stride is wider than the image: Y rows of STRIDE, chroma rows of STRIDE/2.
        padded = np.zeros((h * 3 // 2, STRIDE), np.uint8)
        padded[:h, :w] = tight[:h]
        chroma = padded[h:].reshape(-1)
        quarter = (w // 2) * (h // 2)
        u = tight[h:].reshape(-1)[:quarter].reshape(h // 2, w // 2)
        v = tight[h:].reshape(-1)[quarter:].reshape(h // 2, w // 2)
        half = (STRIDE // 2) * (h // 2)
        chroma[:half].reshape(h // 2, STRIDE // 2)[:, : w // 2] = u
        chroma[half : 2 * half].reshape(h // 2, STRIDE // 2)[:, : w // 2] = v
        return padded

    def release(self) -> None:
        assert not self.released, "released twice"
        self.released = True
        self._twin.outstanding -= 1


class Picamera2ApiTwin:
    """API twin of picamera2.Picamera2 (see the module docstring); records every call it gets."""

    def __init__(self, camera_num: int, crystal_ppm: float, delay_frames: int, has_af: bool = True) -> None:
        self.camera_num = camera_num
        self.sensor_modes = IMX708_MODES
        self.limits = imx708_limits()
        self.camera_controls = {
            "FrameDurationLimits": (
                self.limits.min_duration_ns // 1000,
                self.limits.max_duration_ns // 1000,
                33333,
            ),
            "ExposureTime": (26, 875_000, 20_000),
            "AnalogueGain": (1.12, 16.0, 1.0),
            "AeEnable": (False, True, True),
            "AwbEnable": (False, True, True),
            "ColourGains": (0.0, 32.0, None),
        }
        if has_af:
            self.camera_controls.update(AfMode=(0, 2, 0), LensPosition=(0.0, 15.0, 1.0))
        self.crystal_ppm = crystal_ppm
        self.delay_frames = delay_frames
        self.config: dict | None = None
        self.controls: dict = {}
        self.control_calls: list[dict] = []
        self.model: FreeRunningSensorModel | None = None
        self.started = self.closed = False
        self.outstanding = 0
        self.true_starts: list[int] = []
        self.realtime_minus_boottime = realtime_minus(time.CLOCK_BOOTTIME)
        self.scene = SyntheticScene(WIDTH, HEIGHT, "cam0", seed=1)

    def create_video_configuration(
        self, main=None, lores=None, raw=None, sensor=None, controls=None, buffer_count=6, **kwargs
    ):
        return {
            "main": dict(main or {}),
            "sensor": dict(sensor or {}),
            "controls": dict(controls or {}),
            "buffer_count": buffer_count,
            **kwargs,
        }

    def configure(self, config: dict) -> None:
        sizes = {(tuple(m["size"]), m["bit_depth"]) for m in self.sensor_modes}
        sensor = config["sensor"]
        assert (tuple(sensor["output_size"]), sensor["bit_depth"]) in sizes
        self.config = config
        self.set_controls(config["controls"])

    def set_controls(self, controls: dict) -> None:
        unknown = set(controls) - set(self.camera_controls)
        assert not unknown, f"libcamera would reject {unknown}"
        self.control_calls.append(dict(controls))
        self.controls.update(controls)
        if "FrameDurationLimits" in controls and self.model is not None:
            lo, hi = controls["FrameDurationLimits"]
            self.model.set_frame_duration(lo * 1000)

    def start(self) -> None:
        assert self.config is not None, "start before configure"
        lo, hi = self.controls["FrameDurationLimits"]
        rng = random.Random(5)
        first = time.time_ns() + rng.randrange(lo * 1000)
        self.model = FreeRunningSensorModel(
            self.limits, first, self.crystal_ppm, delay_frames=self.delay_frames, jitter_ns=2000, seed=9
        )
        self.model.start(lo * 1000)
        self.started = True

    def capture_request(self, wait=None):
        assert self.started and self.outstanding < self.config["buffer_count"], "buffers exhausted"
        frame = self.model.next_frame()  # virtual time: the next frame is ready at once
        self.true_starts.append(frame.start_ns)
        self.outstanding += 1
        return _TwinRequest(self, frame.start_ns, frame.duration_ns)

    def stop(self) -> None:
        self.started = False

    def close(self) -> None:
        self.closed = True


def run_twin(options: PiCameraSettings, crystal_ppm: float = 35.0, has_af: bool = True, slots: int = 90):
    twins = []

    def factory(num: int) -> Picamera2ApiTwin:
        twins.append(Picamera2ApiTwin(num, crystal_ppm, options.control_delay_frames, has_af))
        return twins[-1]

    backend = Picamera2Camera(WIDTH, HEIGHT, SystemClock(), options=options, factory=factory)
    backend.open()
    period = period_ns_for_fps(30.0)
    grid = FrameGrid(time.time_ns() + 700_000_000, period)
    control = CaptureControl()
    control.stop_at_index(slots)
    frames = []
    stats = CaptureStats()
    backend.run(grid, control, lambda f: frames.append(f) or True, stats)
    return backend, twins[0], grid, frames, stats


def test_adapter_drives_picamera2_api_and_locks() -> None:
    options = PiCameraSettings(
        exposure_us=8000,
        analogue_gain=2.0,
        colour_gains=[1.8, 1.5],
        lens_position=2.5,
        control_delay_frames=2,
    )
    backend, twin, grid, frames, stats = run_twin(options)
    config = twin.config
    assert config["sensor"] == {"output_size": (2304, 1296), "bit_depth": 10}
    assert config["main"] == {"size": (WIDTH, HEIGHT), "format": "YUV420"}
    assert config["buffer_count"] == 6
    manual = twin.control_calls[0]
    assert manual["AeEnable"] is False and manual["ExposureTime"] == 8000 and manual["AnalogueGain"] == 2.0
    assert manual["AwbEnable"] is False and manual["ColourGains"] == (1.8, 1.5)
    assert manual["AfMode"] == 0 and manual["LensPosition"] == 2.5
    lo, hi = twin.camera_controls["FrameDurationLimits"][:2]
    durations = [c["FrameDurationLimits"] for c in twin.control_calls[1:]]
    assert len(durations) > 60 and all(a == b and lo <= a <= hi and isinstance(a, int) for a, b in durations)
    assert twin.outstanding == 0 and not twin.started, "every request released, camera stopped"
    report = backend.phase_lock_status()
    assert report["state"] == "locked" and report["locked_at_index"] < 0 and report["delay_frames"] == 2
    assert stats.captured == len(frames) == 90 and stats.before_lock == 0
    assert [f.meta.grid_index for f in frames] == list(range(90))
    for f in frames:
        assert f.image.shape == (HEIGHT * 3 // 2, WIDTH)
        truth = read_timecode(f.image[:HEIGHT])
        # Stamped with the frame's own capture time (SensorTimestamp → realtime), not when collected.
        assert truth is not None and abs(f.meta.wall_ns - truth) < 20_000
        assert abs(f.meta.wall_ns - f.meta.target_ns) <= 50_000
        assert f.meta.sensor_ns == truth - twin.realtime_minus_boottime


def test_adapter_refuses_what_the_camera_cannot_do() -> None:
    with pytest.raises(RuntimeError, match="no AfMode, LensPosition control"):
        run_twin(PiCameraSettings(lens_position=1.0), has_af=False)
    with pytest.raises(RuntimeError, match=r"sensor mode 1920x1080 10-bit not offered.*2304x1296/10bit"):
        run_twin(PiCameraSettings(sensor_width=1920, sensor_height=1080))
    with pytest.raises(RuntimeError, match="does not fit in a frame period"):
        run_twin(PiCameraSettings(exposure_us=40_000))


def test_i420_from_padded_rows() -> None:
    rng = np.random.default_rng(1)
    tight = rng.integers(0, 255, (HEIGHT * 3 // 2, WIDTH), dtype=np.uint8)
    twin = Picamera2ApiTwin(0, 0.0, 1)
    twin.config = {"main": {"size": (WIDTH, HEIGHT)}}
    twin.scene = type("S", (), {"render": lambda self, t, i: tight})()
    padded = _TwinRequest(twin, 0, 0).make_array("main")
    assert padded.shape[1] == STRIDE
    assert np.array_equal(i420_from_padded(padded, WIDTH, HEIGHT), tight)
    assert np.array_equal(i420_from_padded(tight, WIDTH, HEIGHT), tight)


def test_picamera2_settings_are_validated() -> None:
    base = {
        "name": "cam0",
        "role": "server",
        "data_dir": "/tmp/x",
        "secret_file": "/tmp/s",
        "backend": "picamera2",
    }
    ok = AgentSettings.from_dict({**base, "picamera2": {"exposure_us": 5000, "colour_gains": [2.0, 1.4]}})
    assert ok.picamera2.exposure_us == 5000
    for bad, field in (
        ({"exposure_us": 0}, "picamera2.exposure_us"),
        ({"analogue_gain": "high"}, "picamera2.analogue_gain"),
        ({"colour_gains": [1.0]}, "picamera2.colour_gains"),
        ({"lens_position": -1}, "picamera2.lens_position"),
        ({"bit_depth": 11}, "picamera2.bit_depth"),
        ({"shutter": 1}, "picamera2.shutter"),
    ):
        with pytest.raises(SettingsError, match=field):
            AgentSettings.from_dict({**base, "picamera2": bad})
    with pytest.raises(SettingsError, match="codec"):
        AgentSettings.from_dict({**base, "codec": "libx265"})


def test_h264_encoder_follows_the_pi_model(tmp_path) -> None:
    model = tmp_path / "model"
    device = tmp_path / "video11"
    assert choose_h264_codec("auto", str(tmp_path / "none"), str(device))[0] == "libx264"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\0")
    assert choose_h264_codec("auto", str(model), str(device)) == (
        "libx264",
        "Raspberry Pi 5 Model B Rev 1.0: no hardware H.264 encoder",
    )
    model.write_bytes(b"Raspberry Pi 4 Model B Rev 1.4\0")
    codec, why = choose_h264_codec("auto", str(model), str(device))
    assert codec == "libx264" and "missing (fallback)" in why
    device.write_bytes(b"")
    assert choose_h264_codec("auto", str(model), str(device))[0] == "h264_v4l2m2m"
    assert choose_h264_codec("libx264") == ("libx264", "configured")
    with pytest.raises(ValueError, match="must be one of"):
        choose_h264_codec("mpeg2video")
