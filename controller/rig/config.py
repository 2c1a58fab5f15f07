"""The rig configuration file (written by setup.sh / `syncrig setup`, read by the controller and by
install.sh): cameras, capture settings, directories. Validated with the offending field named;
saved atomically."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.ids import InvalidName, validate_camera_name
from syncrig_agent.contract.limits import ranges
from syncrig_agent.contract.validation import SettingsError, check_frame_size, check_ranges
from syncrig_agent.settings import (
    DEFAULT_CONTROL_PORT,
    DEFAULT_FANOUT_PORT,
    DEFAULT_PREVIEW_PORT,
    TtlSettings,
)

CONFIG_VERSION = 1
# Hostnames / IPv4 / IPv6 literals only: these end up as ssh arguments, so nothing else passes.
_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[?[0-9A-Fa-f:]{2,39}\]?")
_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# Absolute or home-relative: these become systemd WorkingDirectory/ExecStart paths and argv items.
_REMOTE_DIR_RE = re.compile(r"(?:~/|/)[A-Za-z0-9._/-]{0,200}")
# A network interface name (IFNAMSIZ - 1 characters), as ptp4l/phc2sys take it.
_IFACE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
TIME_SYNC_CHOICES = ("ptp", "chrony", "none")
# "server": cam0 is the PTP grandmaster, every other camera a slave; "bmca": every camera runs
# the same config and the best master clock algorithm elects one.
PTP_GRANDMASTER_CHOICES = ("server", "bmca")
# The fields that become every Pi's agent.json (deploy/render.py) take their limits from the agent's
# own table, so the desktop refuses exactly what a Pi would; the rest are the desktop's alone.
RIG_LIMITS: dict[str, tuple[float, float] | tuple[float, float, str]] = {
    "fps": (1.0, 240.0, "fps"),  # sent with START as the grid period, not an agent setting
    # The desktop connects to a Pi's ports as configured: 0 (an ephemeral port, which the agent's
    # own listen addresses allow for local simulated rigs) cannot be known in advance.
    "control_port": (1, 65535),
    "fanout_port": (1, 65535),
    **ranges("bitrate", "keyframe_interval_s", "heartbeat_interval_s", "heartbeat_timeout_s"),
}


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the field."""


def default_home() -> Path:
    return Path(os.environ.get("SYNCRIG_HOME", Path.home() / ".config" / "syncrig"))


@dataclass
class CameraEntry:
    name: str
    host: str
    role: str = "client"
    ssh_user: str = "pi"
    preview_port: int = DEFAULT_PREVIEW_PORT  # the agent's MJPEG preview (HTTP, token-authenticated)
    # Simulated cameras only: the agent's data directory on this machine (files are copied from
    # there, not pulled over SFTP). Empty for a real Pi.
    local_data_dir: str = ""
    # TTL lines of this Pi (the agent settings' "ttl" section without "backend": deploy writes
    # backend "gpiod"): outputs {role: line}, inputs [{line, name, edges, debounce_us}], chip,
    # strobe_width_us. Empty: no TTL.
    ttl: dict = field(default_factory=dict)


@dataclass
class RigConfig:
    cameras: list[CameraEntry]
    fps: float = 56.0
    width: int = 1536
    height: int = 864
    bitrate: int = 25_000_000
    keyframe_interval_s: float = 1.0
    sessions_root: str = "~/syncrig-sessions"
    pi_data_dir: str = "~/syncrig/recordings"
    pi_install_dir: str = "~/syncrig"
    control_port: int = DEFAULT_CONTROL_PORT
    fanout_port: int = DEFAULT_FANOUT_PORT
    heartbeat_interval_s: float = 1.0
    heartbeat_timeout_s: float = 10.0
    # What disciplines each Pi's clock; install.sh renders and installs the matching units.
    time_sync: str = "none"
    ptp_interface: str = "eth0"
    ptp_grandmaster: str = "server"
    secret_file: str = str(default_home() / "secret")
    version: int = CONFIG_VERSION
    extra: dict = field(default_factory=dict)

    @property
    def server(self) -> CameraEntry:
        return next(c for c in self.cameras if c.role == "server")

    def validate(self) -> RigConfig:
        if not self.cameras:
            raise ConfigError("cameras: at least one camera is needed")
        names = set()
        for i, cam in enumerate(self.cameras):
            where = f"cameras[{i}]"
            try:
                validate_camera_name(cam.name)
            except InvalidName as exc:
                raise ConfigError(f"{where}.name: {exc}") from None
            if cam.name in names:
                raise ConfigError(f"{where}.name: duplicate camera name {cam.name!r}")
            names.add(cam.name)
            if not isinstance(cam.host, str) or not _HOST_RE.fullmatch(cam.host) or ".." in cam.host:
                raise ConfigError(f"{where}.host: not a host name or IP address: {cam.host!r}")
            if cam.role not in ("server", "client"):
                raise ConfigError(f"{where}.role: must be 'server' or 'client', got {cam.role!r}")
            if not isinstance(cam.ssh_user, str) or not _USER_RE.fullmatch(cam.ssh_user):
                raise ConfigError(f"{where}.ssh_user: not a valid user name: {cam.ssh_user!r}")
            port = cam.preview_port
            if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                raise ConfigError(f"{where}.preview_port: must be a port number in 1..65535, got {port!r}")
            local = cam.local_data_dir
            if not isinstance(local, str) or (local and not Path(local).is_absolute()) or "\0" in local:
                raise ConfigError(f"{where}.local_data_dir: must be empty or an absolute path, got {local!r}")
        servers = [c.name for c in self.cameras if c.role == "server"]
        if len(servers) != 1:
            raise ConfigError(
                f"cameras: exactly one camera must have role 'server', found {servers or 'none'}"
            )
        check_ranges(self, RIG_LIMITS, ConfigError)
        check_frame_size(self, ConfigError)
        for i, cam in enumerate(self.cameras):
            check_camera_ttl(f"cameras[{i}]", cam, self.fps)
        if self.heartbeat_timeout_s <= self.heartbeat_interval_s:
            raise ConfigError("heartbeat_timeout_s: must be longer than heartbeat_interval_s")
        if not isinstance(self.sessions_root, str) or not self.sessions_root.strip():
            raise ConfigError(
                "sessions_root: required: the folder on this desktop that holds the sessions "
                "(an empty one would mean whatever directory the controller happens to start in)"
            )
        for name in ("pi_data_dir", "pi_install_dir"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{name}: required: an absolute or '~/' path on each Pi")
            if (
                not isinstance(value, str)
                or not _REMOTE_DIR_RE.fullmatch(value)
                or ".." in value
                or "//" in value
                or value.rstrip("/") in ("", "~")
            ):
                raise ConfigError(
                    f"{name}: an absolute or '~/' path of letters, digits, '.', '_', '-' and '/' "
                    f"(no '..'), got {value!r}"
                )
        if self.pi_data_dir.rstrip("/") == self.pi_install_dir.rstrip("/"):
            raise ConfigError("pi_data_dir: must differ from pi_install_dir (a redeploy replaces the latter)")
        if self.time_sync not in TIME_SYNC_CHOICES:
            choices = ", ".join(TIME_SYNC_CHOICES)
            raise ConfigError(f"time_sync: must be one of {choices}, got {self.time_sync!r}")
        if not isinstance(self.ptp_interface, str) or not _IFACE_RE.fullmatch(self.ptp_interface):
            raise ConfigError(f"ptp_interface: not a network interface name: {self.ptp_interface!r}")
        if self.ptp_grandmaster not in PTP_GRANDMASTER_CHOICES:
            raise ConfigError(
                f"ptp_grandmaster: must be one of {', '.join(PTP_GRANDMASTER_CHOICES)}, "
                f"got {self.ptp_grandmaster!r}"
            )
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> RigConfig:
        if not isinstance(data, dict):
            raise ConfigError("the configuration must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown field(s): {', '.join(unknown)}")
        raw_cams = data.get("cameras")
        if not isinstance(raw_cams, list):
            raise ConfigError("cameras: must be a list")
        cams = []
        cam_fields = {f.name for f in fields(CameraEntry)}
        for i, c in enumerate(raw_cams):
            if not isinstance(c, dict):
                raise ConfigError(f"cameras[{i}]: must be an object")
            bad = sorted(set(c) - cam_fields)
            if bad:
                raise ConfigError(f"cameras[{i}]: unknown field(s): {', '.join(bad)}")
            if "name" not in c or "host" not in c:
                raise ConfigError(f"cameras[{i}]: 'name' and 'host' are required")
            cams.append(CameraEntry(**c))
        rest = {k: v for k, v in data.items() if k != "cameras"}
        return cls(cameras=cams, **rest).validate()


def check_desktop_dir(name: str, value: str) -> Path:
    """A folder on this desktop the controller writes to (`name` is its field): made if missing,
    and refused with the field named unless it is a directory this user can write."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"{name}: must be an absolute or '~/' path, got {value!r}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{name}: {path} cannot be created: {exc.strerror or exc}") from None
    if not path.is_dir():
        raise ConfigError(f"{name}: {path} exists but is not a directory")
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{name}: {path} is not writable: {exc.strerror or exc}") from None
    return path


def pi_ttl_settings(ttl: dict) -> TtlSettings:
    """A camera entry's `ttl` as the Pi's agent settings take it (gpiod lines), validated."""
    if not isinstance(ttl, dict) or "backend" in ttl or "wires" in ttl or "sim_listen" in ttl:
        raise SettingsError(
            "ttl: an object of outputs, inputs, chip, strobe_width_us (a Pi's are gpiod lines)"
        )
    try:
        settings = TtlSettings(**{"backend": "gpiod", **ttl})
    except TypeError as exc:
        raise SettingsError(f"ttl: {exc}") from None
    settings.validate()
    return settings


def check_camera_ttl(where: str, cam: CameraEntry, fps: float) -> None:
    """A camera entry's TTL lines, by the agent's own rules (`TtlSettings.validate`, the strobe
    against the rig's frame period as the agent checks it at START); the error names the field
    (`cameras[i].ttl.…`) and the camera, whether it came from the file or the Settings page."""
    if not cam.ttl:
        return
    try:
        pi_ttl_settings(cam.ttl).check_strobe_period(round(1e9 / fps))
    except SettingsError as exc:
        raise ConfigError(f"{where}.{exc} (camera {cam.name})") from None


def load_config(path: Path | str) -> RigConfig:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no configuration at {path} (run ./setup.sh first)") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from None
    return RigConfig.from_dict(data)


def save_config(path: Path | str, config: RigConfig) -> Path:
    """Validate, then write atomically (temp file in the same directory + rename)."""
    config.validate()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, config.to_dict(), fsync=True)


def parse_camera_spec(spec: str, index: int) -> CameraEntry:
    """`NAME=[USER@]HOST` as given to setup.sh; the first camera is the server (cam0)."""
    name, sep, target = spec.partition("=")
    if not sep:
        raise ConfigError(f"--camera {spec!r}: expected NAME=[USER@]HOST")
    user, at, host = target.rpartition("@")
    entry = CameraEntry(
        name=name, host=host, role="server" if index == 0 else "client", ssh_user=user if at else "pi"
    )
    return entry
