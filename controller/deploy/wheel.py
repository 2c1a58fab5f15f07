"""The agent as a wheel, built here in-process from pi-deploy/syncrig_agent (no build backend,
no network). Why a wheel rather than copying the package files: pip installs it into the Pi's
venv atomically with its requirements resolved against what the OS already provides (the venv
has system site packages, so Raspberry Pi OS's numpy/av/picamera2 are used, not shadowed), an
upgrade removes files that no longer exist, and the installed version names the exact code.

The version carries a hash of the contents (`0.1.0+g<sha>`), so a changed agent is always an
upgrade to pip and an unchanged one is left alone; the zip is reproducible (fixed timestamps,
sorted entries)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from controller.deploy.plan import PI_DEPLOY

DIST_NAME = "syncrig_agent"
BASE_VERSION = "0.1.0"
# What the agent imports beyond the standard library. On a Pi, python3-numpy and python3-av
# (Raspberry Pi OS, with picamera2) satisfy these through the venv's system site packages.
REQUIREMENTS = ("numpy>=1.24", "av>=12.0")
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def agent_sources(root: Path | None = None) -> list[tuple[Path, str]]:
    """(file, path inside the wheel) for the agent package: Python sources and the C helper."""
    root = root or PI_DEPLOY / DIST_NAME
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in (".py", ".c"))
    return [(p, "/".join((DIST_NAME, *p.relative_to(root).parts))) for p in files]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_agent_wheel(out_dir: Path, root: Path | None = None) -> Path:
    """Write the agent wheel into `out_dir`; returns its path."""
    sources = [(arc, path.read_bytes()) for path, arc in agent_sources(root)]
    digest = hashlib.sha256()
    for arc, data in sources:
        digest.update(arc.encode() + b"\0" + hashlib.sha256(data).digest())
    version = f"{BASE_VERSION}+g{digest.hexdigest()[:12]}"
    info = f"{DIST_NAME}-{version}.dist-info"
    metadata = "".join(
        [
            "Metadata-Version: 2.1\n",
            f"Name: {DIST_NAME}\n",
            f"Version: {version}\n",
            "Summary: SyncRig capture agent (Pi side)\n",
            "Requires-Python: >=3.10\n",
            *(f"Requires-Dist: {req}\n" for req in REQUIREMENTS),
        ]
    )
    wheel_meta = "Wheel-Version: 1.0\nGenerator: syncrig-deploy\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    entries = [*sources, (f"{info}/METADATA", metadata.encode()), (f"{info}/WHEEL", wheel_meta.encode())]
    record = "".join(f"{arc},{_record_hash(data)},{len(data)}\n" for arc, data in entries)
    entries.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{DIST_NAME}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for arc, data in entries:
            item = zipfile.ZipInfo(arc, date_time=_ZIP_TIME)
            item.external_attr = 0o644 << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(item, data)
    return path
