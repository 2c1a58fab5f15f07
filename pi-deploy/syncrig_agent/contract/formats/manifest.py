"""`session.json`: the manifest of one recording session."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path

from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.layout import SessionLayout

MANIFEST_VERSION = 1


class ManifestError(ValueError):
    """A session.json that is no manifest (not JSON, not an object, required fields missing);
    the message names the file and what is wrong with it."""


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
    # Cameras of the rig left out of this recording, each with why (named by the user, offline).
    excluded: dict[str, str] = field(default_factory=dict)

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
    return write_json_atomic(SessionLayout(session_dir).manifest, asdict(manifest), fsync=True)


def read_manifest_data(session_dir: Path | str) -> dict:
    """The manifest's JSON object as stored, fields unchecked: for what must still show a session
    whose manifest is partial (the session list). OSError if there is none, else ManifestError."""
    path = SessionLayout(session_dir).manifest
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ManifestError(f"{path}: not a JSON manifest ({exc})") from None
    if not isinstance(data, dict):
        raise ManifestError(f"{path}: not a JSON object")
    return data


def required_manifest_fields() -> list[str]:
    """The fields every manifest must state (the others have defaults)."""
    return [f.name for f in fields(SessionManifest) if f.default is MISSING and f.default_factory is MISSING]


def read_manifest(session_dir: Path | str) -> SessionManifest:
    """The session's manifest. Raises OSError if there is none and ManifestError (naming the file
    and the missing fields) if it is not a complete manifest; unknown fields are kept out, noted."""
    data = read_manifest_data(session_dir)
    missing = [name for name in required_manifest_fields() if name not in data]
    if missing:
        path = SessionLayout(session_dir).manifest
        raise ManifestError(f"{path}: missing required field(s) {', '.join(missing)}")
    known = {f.name for f in fields(SessionManifest)}
    extra = {k: v for k, v in data.items() if k not in known}
    manifest = SessionManifest(**{k: v for k, v in data.items() if k in known})
    if extra:
        manifest.notes.append(f"unknown manifest fields kept out: {sorted(extra)}")
    return manifest
