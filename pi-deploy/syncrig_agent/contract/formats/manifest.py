"""`session.json`: the manifest of one recording session."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from syncrig_agent.contract.formats.atomic import write_json_atomic

MANIFEST_NAME = "session.json"
MANIFEST_VERSION = 1


@dataclass
class SessionManifest:
    id: str
    subject: str | None
    project: str | None
    created: str  # ISO-8601 UTC
    fps: float
    period_ns: int
    t0_ns: int
    stop_ns: int | None = None
    cameras: list[dict] = field(default_factory=list)  # name, host, role, width, height, frames, dropped, ...
    clock_reports: dict[str, dict] = field(default_factory=dict)
    start: dict = field(default_factory=dict)  # how the start went: lead used, cameras that armed late
    software: dict = field(default_factory=dict)
    absolute_time: bool = True  # False for imported recordings whose times are per-camera relative
    format_version: int = MANIFEST_VERSION
    notes: list[str] = field(default_factory=list)

    def camera(self, name: str) -> dict:
        for cam in self.cameras:
            if cam.get("name") == name:
                return cam
        raise KeyError(f"session {self.id} has no camera named {name!r}")

    @property
    def camera_names(self) -> list[str]:
        return [c["name"] for c in self.cameras]


def write_manifest(session_dir: Path | str, manifest: SessionManifest) -> Path:
    """Write atomically (temp file + rename) so a crash never leaves half a manifest."""
    path = Path(session_dir) / MANIFEST_NAME
    return write_json_atomic(path, asdict(manifest), fsync=True)


def read_manifest(session_dir: Path | str) -> SessionManifest:
    path = Path(session_dir) / MANIFEST_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    known = set(SessionManifest.__dataclass_fields__)
    extra = {k: v for k, v in data.items() if k not in known}
    manifest = SessionManifest(**{k: v for k, v in data.items() if k in known})
    if extra:
        manifest.notes.append(f"unknown manifest fields kept out: {sorted(extra)}")
    return manifest
