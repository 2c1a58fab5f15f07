"""The cameras a recording involves, as the desktop sees them (name, host, role, frame size and,
when their storage is reachable here, where it is): what the recorder, the collection of the
footage and the UI cards share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controller.rig.config import RigConfig


@dataclass
class CameraInfo:
    name: str
    host: str
    role: str
    width: int
    height: int
    data_dir: Path | None = None  # local path of the camera's recordings (simulation / local transport)


def camera_infos(config: RigConfig) -> list[CameraInfo]:
    """The recorder's view of the configured cameras. A camera with a local data dir (simulated
    rig, or a Pi whose storage is mounted here) is collected through the local transport."""
    infos = []
    for cam in config.cameras:
        local = cam.local_data_dir
        infos.append(
            CameraInfo(
                cam.name,
                cam.host,
                cam.role,
                config.width,
                config.height,
                Path(local).expanduser() if local else None,
            )
        )
    return infos
