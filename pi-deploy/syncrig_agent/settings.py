"""Agent settings: from the command line (what systemd or the simulated rig passes) or from the rig
config file's entry for this camera. Validated once, with the offending field named."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .ids import InvalidName, validate_camera_name
from .validation import check_frame_size, check_ranges

DEFAULT_CONTROL_PORT = 5006  # controller → cam0
DEFAULT_FANOUT_PORT = 5005  # cam0 → clients
DEFAULT_PREVIEW_PORT = 5008  # desktop → every camera's MJPEG preview (HTTP, token-authenticated)
SCENES = ("default", "charuco")  # what a synthetic camera films


class SettingsError(ValueError):
    """A setting with a bad value; the message names the field."""


def parse_address(text: str, default_port: int, field_name: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(default_port)
    host = host.strip("[]")
    if not host:
        raise SettingsError(f"{field_name}: missing host in {text!r}")
    try:
        port_num = int(port)
    except ValueError:
        raise SettingsError(f"{field_name}: port must be a number in {text!r}") from None
    if not 0 <= port_num <= 65535:
        raise SettingsError(f"{field_name}: port {port_num} out of range")
    return host, port_num


@dataclass
class SimulationSettings:
    clock_offset_us: float = 0.0
    drift_ppm: float = 0.0
    drop_probability: float = 0.0
    trigger: str = "scheduled"  # "scheduled" (hardware-timed exposure at Tn) or "wake" (software trigger)
    jitter_us: float = 0.0  # trigger jitter (Gaussian sigma) of the scheduled model
    scene: str = "default"  # "default" (test picture) or "charuco" (a calibration board in motion)
    # The charuco scene: board, trajectory, noise and this camera's model (charuco_sim); empty:
    # a lone camera in front of the default board.
    charuco: dict = field(default_factory=dict)


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
    ready_file: str = ""  # written once listening/connected: actual ports, pid (used by local rigs)
    simulation: SimulationSettings = field(default_factory=SimulationSettings)

    def validate(self) -> AgentSettings:
        try:
            validate_camera_name(self.name)
        except InvalidName as exc:
            raise SettingsError(f"name: {exc}") from None
        if self.role not in ("server", "client"):
            raise SettingsError(f"role: must be 'server' or 'client', got {self.role!r}")
        if self.backend not in ("synthetic", "picamera2"):
            raise SettingsError(f"backend: must be 'synthetic' or 'picamera2', got {self.backend!r}")
        check_frame_size(self, SettingsError)
        check_ranges(
            self,
            {
                "bitrate": (100_000, 200_000_000),
                "keyframe_interval_s": (0.01, 60.0),
                "heartbeat_interval_s": (0.01, 60.0),
                "heartbeat_timeout_s": (0.05, 3600.0),
                "min_lead_ms": (1.0, 10_000.0),
                "max_lead_ms": (1.0, 10_000.0),
                "spin_us": (0.0, 5000.0),
                "queue_frames": (1, 10_000),
                "stream_queue_frames": (1, 10_000),
                "fifo_priority": (1, 99),
                "base_priority": (1, 98),
                "min_free_mb": (0, 10_000_000),
                "preview_fps": (0.5, 30.0),
            },
            SettingsError,
        )
        if self.heartbeat_timeout_s <= self.heartbeat_interval_s:
            raise SettingsError("heartbeat_timeout_s: must be longer than heartbeat_interval_s")
        if self.base_priority >= self.fifo_priority:
            raise SettingsError("base_priority: must be below fifo_priority")
        if self.min_lead_ms > self.max_lead_ms:
            raise SettingsError("min_lead_ms: must not exceed max_lead_ms")
        sim = self.simulation
        if not 0.0 <= sim.drop_probability < 1.0:
            raise SettingsError(f"simulation.drop_probability: must be in [0, 1), got {sim.drop_probability}")
        if sim.trigger not in ("scheduled", "wake"):
            raise SettingsError(f"simulation.trigger: must be 'scheduled' or 'wake', got {sim.trigger!r}")
        if not 0.0 <= sim.jitter_us <= 10_000:
            raise SettingsError(f"simulation.jitter_us: must be in 0..10000, got {sim.jitter_us}")
        if abs(sim.drift_ppm) > 1000:
            raise SettingsError(f"simulation.drift_ppm: |drift| must be ≤ 1000 ppm, got {sim.drift_ppm}")
        if abs(sim.clock_offset_us) > 10_000_000:
            raise SettingsError("simulation.clock_offset_us: must be within ±10 s")
        if sim.scene not in SCENES:
            raise SettingsError(f"simulation.scene: must be one of {SCENES}, got {sim.scene!r}")
        if sim.scene == "charuco":
            from .charuco_sim import validate_scene_config

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
        try:
            return cls(simulation=SimulationSettings(**sim), **data).validate()
        except TypeError as exc:
            raise SettingsError(str(exc)) from None

    @classmethod
    def from_file(cls, path: Path | str, overrides: dict | None = None) -> AgentSettings:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        data.update(overrides or {})
        return cls.from_dict(data)
