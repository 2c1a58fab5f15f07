"""Receivers as systemd services on a dedicated receiving machine.

One template unit, `syncrig-receiver@.service`, instantiated per camera (`syncrig-receiver@cam1`),
runs `syncrig receive --camera %i --config receivers.json` for good: each stream names its
session, whose directory is created under `sessions_root`. KillSignal=SIGINT lets the side-car
close FFmpeg's input so the last segment is finalised (the first seed's lesson).

receivers.json:
    {"sessions_root": "/srv/syncrig/sessions", "secret_file": "/etc/syncrig/secret",
     "segment_seconds": 2, "cameras": {"cam0": "0.0.0.0:7000", "cam1": "0.0.0.0:7001"}}
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from syncrig_agent.contract.ids import InvalidName, validate_camera_name
from syncrig_agent.contract.validation import SettingsError, parse_address

UNIT_TEMPLATE = Path(__file__).resolve().parent / "systemd" / "syncrig-receiver@.service"


class ReceiverConfigError(ValueError):
    pass


@dataclass
class ReceiverServiceConfig:
    sessions_root: str
    secret_file: str
    cameras: dict[str, str] = field(default_factory=dict)  # camera -> listen "HOST:PORT"
    segment_seconds: float = 2.0

    def validate(self) -> ReceiverServiceConfig:
        if not self.cameras:
            raise ReceiverConfigError("cameras: name at least one camera and its listen address")
        for name, address in self.cameras.items():
            try:
                validate_camera_name(name)
                _host, port = parse_address(address, 0, f"cameras.{name}")
            except (InvalidName, SettingsError) as exc:
                raise ReceiverConfigError(f"cameras.{name}: {exc}") from None
            if not 1 <= port <= 65535:
                raise ReceiverConfigError(f"cameras.{name}: a fixed port is needed, got {address!r}")
        if not 0.2 <= float(self.segment_seconds) <= 3600:
            raise ReceiverConfigError("segment_seconds: must be in 0.2..3600")
        return self

    def listen_address(self, camera: str) -> tuple[str, int]:
        if camera not in self.cameras:
            raise ReceiverConfigError(f"camera {camera!r} is not in the receivers config")
        return parse_address(self.cameras[camera], 0, camera)

    def destinations(self, advertise_host: str) -> dict[str, str]:
        """START's stream destinations when the agents reach this machine as `advertise_host`."""
        return {name: f"{advertise_host}:{self.listen_address(name)[1]}" for name in self.cameras}


def load_receiver_config(path: Path | str) -> ReceiverServiceConfig:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return ReceiverServiceConfig(**data).validate()
    except (OSError, ValueError, TypeError) as exc:
        raise ReceiverConfigError(f"{path}: {exc}") from None


def render_receiver_unit(config_path: Path | str, user: str, python: str | None = None) -> str:
    """The template unit with this machine's interpreter, config file and user filled in."""
    text = UNIT_TEMPLATE.read_text(encoding="utf-8")
    for key, value in (
        ("@PYTHON@", python or sys.executable),
        ("@CONFIG@", str(Path(config_path).resolve())),
        ("@USER@", user),
    ):
        if any(c in value for c in "\n\r\"'\\ "):
            raise ReceiverConfigError(f"{key.strip('@').lower()}: unusable in a unit file: {value!r}")
        text = text.replace(key, value)
    return text
