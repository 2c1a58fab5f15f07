"""Agent settings: from the command line (what systemd or the simulated rig passes) or from the rig
config file's entry for this camera. Validated once, with the offending field named."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from syncrig_agent.clock_state import CLOCK_SOURCES, SIMULATED_STATES
from syncrig_agent.contract.ids import InvalidName, validate_camera_name
from syncrig_agent.contract.limits import SETTING_LIMITS, ranges
from syncrig_agent.contract.validation import SettingsError, check_frame_size, check_ranges, parse_address

DEFAULT_CONTROL_PORT = 5006  # controller → cam0
DEFAULT_FANOUT_PORT = 5005  # cam0 → clients
DEFAULT_PREVIEW_PORT = 5008  # desktop → every camera's MJPEG preview (HTTP, token-authenticated)
SCENES = ("default", "charuco")  # what a synthetic camera films
# The camera backends an agent can run (backends/factory.py builds each; the CLI offers these).
BACKEND_KINDS = ("synthetic", "picamera2")
# Every row of the limits table is a top-level AgentSettings field.
SETTING_LIMITS_RANGES = ranges(*SETTING_LIMITS)


@dataclass
class SimulationSettings:
    clock_offset_us: float = 0.0
    drift_ppm: float = 0.0
    drop_probability: float = 0.0
    trigger: str = "scheduled"  # "scheduled" (hardware-timed exposure at Tn) or "wake" (software trigger)
    jitter_us: float = 0.0  # trigger jitter (Gaussian sigma) of the scheduled model
    # trigger "freerun": a free-running sensor, phase-locked by the agent's servo (phase_lock.py);
    # its crystal error (None: random in ±50 ppm) and the frames before a duration request applies.
    crystal_ppm: float | None = None
    sensor_delay_frames: int = 1
    # The clock state this camera reports (clock_state.simulated): "synchronized", "unsynchronized",
    # "unknown" or a PTP port state such as "LISTENING" — so pre-flight refusals can be rehearsed.
    clock_sync: str = "synchronized"
    scene: str = "default"  # "default" (test picture) or "charuco" (a calibration board in motion)
    # The charuco scene: board, trajectory, noise and this camera's model (charuco_sim); empty:
    # a lone camera in front of the default board.
    charuco: dict = field(default_factory=dict)


TRIGGER_MODELS = ("scheduled", "wake", "freerun")


@dataclass
class PiCameraSettings:
    """The picamera2 backend: sensor mode, manual image controls, the servo's view of the sensor."""

    camera_num: int = 0
    sensor_width: int = 2304  # IMX708 2x2 binned, full field of view; the ISP scales to width×height
    sensor_height: int = 1296
    bit_depth: int = 10
    exposure_us: int | None = None  # None: auto exposure (limited by the frame duration)
    analogue_gain: float | None = None  # None: auto gain
    colour_gains: list[float] | None = None  # [red, blue]: fixed white balance; None: auto (AWB)
    lens_position: float | None = None  # dioptres (0 = infinity): manual focus; None: lens default
    buffer_count: int = 6
    control_delay_frames: int = 2  # frames between set_controls and the first interval it governs
    line_time_ns: float = 0.0  # 0: the IMX708 2304×1296 mode's 13.361 µs

    def validate(self) -> None:
        for name in (
            "camera_num",
            "sensor_width",
            "sensor_height",
            "bit_depth",
            "buffer_count",
            "control_delay_frames",
            "line_time_ns",
            "exposure_us",
            "analogue_gain",
            "lens_position",
        ):
            value = getattr(self, name)
            optional = name in ("exposure_us", "analogue_gain", "lens_position")
            if (value is None and optional) or (
                isinstance(value, (int, float)) and not isinstance(value, bool)
            ):
                continue
            raise SettingsError(f"picamera2.{name}: must be a number, got {value!r}")
        if not 0 <= self.camera_num <= 7:
            raise SettingsError(f"picamera2.camera_num: must be 0..7, got {self.camera_num}")
        if not (64 <= self.sensor_width <= 10000 and 64 <= self.sensor_height <= 10000):
            raise SettingsError("picamera2.sensor_width/sensor_height: must be 64..10000")
        if self.bit_depth not in (8, 10, 12, 16):
            raise SettingsError(f"picamera2.bit_depth: must be 8, 10, 12 or 16, got {self.bit_depth}")
        if self.exposure_us is not None and not 1 <= self.exposure_us <= 10_000_000:
            raise SettingsError(f"picamera2.exposure_us: must be 1..10000000 µs, got {self.exposure_us}")
        if self.analogue_gain is not None and not 1.0 <= self.analogue_gain <= 64.0:
            raise SettingsError(f"picamera2.analogue_gain: must be 1..64, got {self.analogue_gain}")
        gains = self.colour_gains
        if gains is not None and (
            not isinstance(gains, (list, tuple)) or len(gains) != 2 or not all(0.0 < g <= 32.0 for g in gains)
        ):
            raise SettingsError(f"picamera2.colour_gains: must be [red, blue] in (0, 32], got {gains!r}")
        if self.lens_position is not None and not 0.0 <= self.lens_position <= 32.0:
            raise SettingsError(f"picamera2.lens_position: must be 0..32 dioptres, got {self.lens_position}")
        if not 2 <= self.buffer_count <= 32:
            raise SettingsError(f"picamera2.buffer_count: must be 2..32, got {self.buffer_count}")
        if not 0 <= self.control_delay_frames <= 8:
            raise SettingsError("picamera2.control_delay_frames: must be 0..8")
        if not 0.0 <= self.line_time_ns <= 1_000_000:
            raise SettingsError("picamera2.line_time_ns: must be 0..1000000 (0: IMX708 default)")


TTL_BACKENDS = ("none", "simulated", "gpiod")  # ttl/factory.py builds each
TTL_INPUT_EDGES = ("both", "rising", "falling")


@dataclass
class TtlSettings:
    """GPIO lines for TTL out (scheduled on the shared clock) and TTL in (timestamped on it).

    `outputs` maps a role of contract.ttl.TTL_ROLES to a line offset on `chip` (BCM numbers on a
    Pi); `inputs` lists {"line", "name", "edges": both|rising|falling, "debounce_us"}. A simulated
    agent has virtual pins: `sim_listen` (HOST:PORT) is where its input pins receive edges and
    `wires` ({"line", "to": HOST:PORT, "to_line", "latency_us", "jitter_us"}) connect an output of
    this agent to an input of any agent (itself included). An input with `"record": true` is a
    gate for the controller: it starts a recording when the line goes high and stops it when it
    goes low (controller/rig/ttl_trigger.py)."""

    backend: str = "none"
    chip: str = "/dev/gpiochip0"
    outputs: dict[str, int] = field(default_factory=dict)
    strobe_width_us: float = 5000.0  # ≤ half a frame period (checked at START, when fps is known)
    inputs: list[dict] = field(default_factory=list)
    sim_listen: str = ""
    wires: list[dict] = field(default_factory=list)
    barcode_seed: int | None = None  # None: fresh random codes every session

    @property
    def enabled(self) -> bool:
        return self.backend != "none" and bool(self.outputs or self.inputs)

    def validate(self) -> None:
        from syncrig_agent.contract.ttl import MIN_PULSE_NS, TTL_ROLES

        if self.backend not in TTL_BACKENDS:
            kinds = ", ".join(TTL_BACKENDS)
            raise SettingsError(f"ttl.backend: must be one of {kinds}, got {self.backend!r}")
        if not isinstance(self.outputs, dict):
            raise SettingsError(f"ttl.outputs: must be an object role → line, got {self.outputs!r}")
        used: dict[int, str] = {}
        for role, line in self.outputs.items():
            if role not in TTL_ROLES:
                raise SettingsError(f"ttl.outputs: unknown role {role!r}; roles: {', '.join(TTL_ROLES)}")
            _check_line(f"ttl.outputs.{role}", line, used)
        if not MIN_PULSE_NS / 1000 <= _number(self.strobe_width_us) <= 1_000_000:
            raise SettingsError(
                f"ttl.strobe_width_us: must be {MIN_PULSE_NS // 1000}..1000000 µs (boards drop shorter "
                f"pulses), got {self.strobe_width_us}"
            )
        if not isinstance(self.inputs, list):
            raise SettingsError("ttl.inputs: must be a list of {line, name, edges, debounce_us}")
        names = set()
        for i, entry in enumerate(self.inputs):
            where = f"ttl.inputs[{i}]"
            if not isinstance(entry, dict) or set(entry) - {"line", "name", "edges", "debounce_us", "record"}:
                raise SettingsError(f"{where}: must be an object of line, name, edges, debounce_us, record")
            if not isinstance(entry.get("record", False), bool):
                raise SettingsError(f"{where}.record: must be true or false")
            _check_line(f"{where}.line", entry.get("line"), used)
            name = entry.get("name", f"in{entry['line']}")
            try:
                validate_camera_name(name)  # the same safe-name rule: it goes into a CSV column
            except InvalidName as exc:
                raise SettingsError(f"{where}.name: {exc}") from None
            if name in names:
                raise SettingsError(f"{where}.name: {name!r} is used twice")
            names.add(name)
            if entry.get("edges", "both") not in TTL_INPUT_EDGES:
                raise SettingsError(f"{where}.edges: must be one of {', '.join(TTL_INPUT_EDGES)}")
            if not 0 <= _number(entry.get("debounce_us", 0)) <= 100_000:
                raise SettingsError(f"{where}.debounce_us: must be 0..100000")
        if self.backend == "gpiod" and not str(self.chip).startswith("/dev/gpiochip"):
            raise SettingsError(f"ttl.chip: must be a GPIO character device /dev/gpiochipN: {self.chip!r}")
        if self.sim_listen:
            parse_address(self.sim_listen, 0, "ttl.sim_listen")
        for i, wire in enumerate(self.wires):
            where = f"ttl.wires[{i}]"
            if not isinstance(wire, dict) or set(wire) - {"line", "to", "to_line", "latency_us", "jitter_us"}:
                raise SettingsError(f"{where}: must be an object of line, to, to_line, latency_us, jitter_us")
            if wire.get("line") not in self.outputs.values():
                raise SettingsError(f"{where}.line: {wire.get('line')!r} is not one of ttl.outputs' lines")
            parse_address(str(wire.get("to", "")), 0, f"{where}.to")
            _check_line(f"{where}.to_line", wire.get("to_line"), {})
            if not 0 <= float(wire.get("latency_us", 0)) <= 1_000_000:
                raise SettingsError(f"{where}.latency_us: must be 0..1000000")
            if not 0 <= float(wire.get("jitter_us", 0)) <= 10_000:
                raise SettingsError(f"{where}.jitter_us: must be 0..10000")
        if self.wires and self.backend != "simulated":
            raise SettingsError("ttl.wires: only simulated pins have wires (ttl.backend 'simulated')")

    def check_strobe_period(self, period_ns: int) -> None:
        """The strobe fits the frame period (at most half of it): checked by the agent at START and
        by the desktop's rig configuration against its fps, with these words."""
        if "strobe" in self.outputs and self.strobe_width_us * 2000 > period_ns:
            raise SettingsError(
                f"ttl.strobe_width_us: {self.strobe_width_us:g} µs is more than half the frame period "
                f"({period_ns / 1000:g} µs); use at most {period_ns // 2000} µs"
            )


def _number(value: object) -> float:
    """A number from a settings file or form; anything else is NaN, which every range refuses."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return float("nan")
    return float(value)


def _check_line(where: str, line: object, used: dict[int, str]) -> None:
    if not isinstance(line, int) or isinstance(line, bool) or not 0 <= line <= 511:
        raise SettingsError(f"{where}: must be a GPIO line offset 0..511, got {line!r}")
    if line in used:
        raise SettingsError(f"{where}: line {line} is already {used[line]}")
    used[line] = where


@dataclass
class AgentSettings:
    name: str
    role: str  # "server" (cam0) or "client"
    data_dir: str
    secret_file: str
    listen: str = f"127.0.0.1:{DEFAULT_CONTROL_PORT}"  # server: where controllers connect
    fanout_listen: str = f"0.0.0.0:{DEFAULT_FANOUT_PORT}"  # server: where clients connect
    server: str = f"127.0.0.1:{DEFAULT_FANOUT_PORT}"  # client: cam0's fan-out address
    preview: bool = True  # serve the live MJPEG preview
    preview_listen: str = f"0.0.0.0:{DEFAULT_PREVIEW_PORT}"  # port 0: ephemeral (reported when ready)
    preview_fps: float = 10.0  # at most this many preview JPEGs per second
    host_label: str = ""  # how the desktop reaches this camera (for the manifest)
    backend: str = "synthetic"
    width: int = 1536
    height: int = 864
    bitrate: int = 25_000_000
    keyframe_interval_s: float = 1.0
    codec: str = "auto"
    preset: str = "ultrafast"
    encoder_threads: int = 0
    queue_frames: int = 32
    stream_queue_frames: int = 128  # live stream backlog before frames are dropped from the stream
    spin_us: float = 0.0
    realtime: bool = True
    fifo_priority: int = 50
    base_priority: int = 10
    heartbeat_interval_s: float = 1.0
    heartbeat_timeout_s: float = 10.0
    min_lead_ms: float = 50.0
    max_lead_ms: float = 500.0
    min_free_mb: int = 256
    # What disciplines this camera's clock, for STATUS `clock_sync`: "auto" (ptp4l running → PTP,
    # chronyd → chrony, else the kernel's adjtimex view), "ptp", "chrony" or "kernel".
    clock_source: str = "auto"
    clock_refresh_s: float = 3.0  # how often the background reader asks pmc/chronyc
    ready_file: str = ""  # written once listening/connected: actual ports, pid (used by local rigs)
    # Free-running sensors (picamera2, simulated "freerun"): phase lock to the grid (phase_lock.py).
    wait_for_lock: bool = True  # write frames only once phase-locked (earlier slots: counted, not written)
    lock_timeout_s: float = 2.0  # still unlocked this long after T0: record anyway, flagged
    lock_lead_ms: float = 1000.0  # START lead this camera asks cam0 for, to lock before T0
    lock_threshold_us: float = 50.0  # |phase error| that counts as locked
    simulation: SimulationSettings = field(default_factory=SimulationSettings)
    picamera2: PiCameraSettings = field(default_factory=PiCameraSettings)
    ttl: TtlSettings = field(default_factory=TtlSettings)

    def validate(self) -> AgentSettings:
        try:
            validate_camera_name(self.name)
        except InvalidName as exc:
            raise SettingsError(f"name: {exc}") from None
        if self.role not in ("server", "client"):
            raise SettingsError(f"role: must be 'server' or 'client', got {self.role!r}")
        if self.backend not in BACKEND_KINDS:
            raise SettingsError(f"backend: must be 'synthetic' or 'picamera2', got {self.backend!r}")
        check_frame_size(self, SettingsError)
        check_ranges(self, SETTING_LIMITS_RANGES, SettingsError)
        if self.heartbeat_timeout_s <= self.heartbeat_interval_s:
            raise SettingsError("heartbeat_timeout_s: must be longer than heartbeat_interval_s")
        if self.base_priority >= self.fifo_priority:
            raise SettingsError("base_priority: must be below fifo_priority")
        if self.min_lead_ms > self.max_lead_ms:
            raise SettingsError("min_lead_ms: must not exceed max_lead_ms")
        if self.clock_source not in CLOCK_SOURCES:
            raise SettingsError(
                f"clock_source: must be one of {', '.join(CLOCK_SOURCES)}, got {self.clock_source!r}"
            )
        sim = self.simulation
        if sim.clock_sync not in SIMULATED_STATES:
            raise SettingsError(
                f"simulation.clock_sync: must be one of {', '.join(SIMULATED_STATES)}, got {sim.clock_sync!r}"
            )
        if not 0.0 <= sim.drop_probability < 1.0:
            raise SettingsError(f"simulation.drop_probability: must be in [0, 1), got {sim.drop_probability}")
        if sim.trigger not in TRIGGER_MODELS:
            raise SettingsError(
                f"simulation.trigger: must be one of {', '.join(TRIGGER_MODELS)}, got {sim.trigger!r}"
            )
        if sim.crystal_ppm is not None and abs(sim.crystal_ppm) > 1000:
            raise SettingsError(f"simulation.crystal_ppm: |error| must be ≤ 1000 ppm, got {sim.crystal_ppm}")
        if not 0 <= sim.sensor_delay_frames <= 8:
            raise SettingsError("simulation.sensor_delay_frames: must be 0..8")
        if self.codec not in ("auto", "libx264", "h264_v4l2m2m"):
            raise SettingsError(f"codec: must be auto, libx264 or h264_v4l2m2m, got {self.codec!r}")
        if not isinstance(self.wait_for_lock, bool):
            raise SettingsError(f"wait_for_lock: must be true or false, got {self.wait_for_lock!r}")
        self.picamera2.validate()
        self.ttl.validate()
        if not 0.0 <= sim.jitter_us <= 10_000:
            raise SettingsError(f"simulation.jitter_us: must be in 0..10000, got {sim.jitter_us}")
        if abs(sim.drift_ppm) > 1000:
            raise SettingsError(f"simulation.drift_ppm: |drift| must be ≤ 1000 ppm, got {sim.drift_ppm}")
        if abs(sim.clock_offset_us) > 10_000_000:
            raise SettingsError("simulation.clock_offset_us: must be within ±10 s")
        if sim.scene not in SCENES:
            raise SettingsError(f"simulation.scene: must be one of {SCENES}, got {sim.scene!r}")
        if sim.scene == "charuco":
            from syncrig_agent.sim.charuco_sim import validate_scene_config

            try:
                sim.charuco = validate_scene_config(sim.charuco, self.width, self.height)
            except (ValueError, TypeError, KeyError) as exc:
                raise SettingsError(f"simulation.charuco: {exc}") from None
        parse_address(self.listen, DEFAULT_CONTROL_PORT, "listen")
        parse_address(self.fanout_listen, DEFAULT_FANOUT_PORT, "fanout_listen")
        parse_address(self.server, DEFAULT_FANOUT_PORT, "server")
        if not isinstance(self.preview, bool):
            raise SettingsError(f"preview: must be true or false, got {self.preview!r}")
        parse_address(self.preview_listen, DEFAULT_PREVIEW_PORT, "preview_listen")
        return self

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> AgentSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SettingsError(f"unknown setting(s): {', '.join(unknown)}")
        data = dict(data)
        sim = data.pop("simulation", None) or {}
        sim_known = {f.name for f in fields(SimulationSettings)}
        bad_sim = sorted(set(sim) - sim_known)
        if bad_sim:
            raise SettingsError(f"unknown setting(s): simulation.{', simulation.'.join(bad_sim)}")
        pi = data.pop("picamera2", None) or {}
        pi_known = {f.name for f in fields(PiCameraSettings)}
        bad_pi = sorted(set(pi) - pi_known)
        if bad_pi:
            raise SettingsError(f"unknown setting(s): picamera2.{', picamera2.'.join(bad_pi)}")
        ttl = data.pop("ttl", None) or {}
        bad_ttl = sorted(set(ttl) - {f.name for f in fields(TtlSettings)})
        if bad_ttl:
            raise SettingsError(f"unknown setting(s): ttl.{', ttl.'.join(bad_ttl)}")
        try:
            return cls(
                simulation=SimulationSettings(**sim),
                picamera2=PiCameraSettings(**pi),
                ttl=TtlSettings(**ttl),
                **data,
            ).validate()
        except TypeError as exc:
            raise SettingsError(str(exc)) from None

    @classmethod
    def from_file(cls, path: Path | str, overrides: dict | None = None) -> AgentSettings:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data.update(overrides or {})
        return cls.from_dict(data)
