"""`session.json`: the manifest of one recording session."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

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
    tmp = path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(asdict(manifest), fh, indent=2, sort_keys=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_manifest(session_dir: Path | str) -> SessionManifest:
    path = Path(session_dir) / MANIFEST_NAME
    data = json.loads(path.read_text(encoding="utf-8"))
    known = set(SessionManifest.__dataclass_fields__)
    extra = {k: v for k, v in data.items() if k not in known}
    manifest = SessionManifest(**{k: v for k, v in data.items() if k in known})
    if extra:
        manifest.notes.append(f"unknown manifest fields kept out: {sorted(extra)}")
    return manifest
