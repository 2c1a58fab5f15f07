"""Real footage for tests, benchmarks and first tries, fetched from the package registry.

The pose2sim wheel on PyPI carries Pose2Sim's demo trials: four synchronized cameras filming a
person (1080x1920 and 1088x1920 at 60 fps, H.264 and VP9), the Qualisys calibration they were
filmed with (`Calib.qca.txt`), photographs of a printed checkerboard per camera, and a trial
with two people in view. It is the one real multi-view recording of people that ships inside a
registry package, so it is pinned by version and hash here and unpacked once into a cache.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

POSE2SIM_VERSION = "0.10.49"
POSE2SIM_WHEEL = f"pose2sim-{POSE2SIM_VERSION}-py3-none-any.whl"
POSE2SIM_SHA256 = "403e0dc4065898ba6a595e72a8970950310979253d60e24c2e00b16b36bf21e1"
POSE2SIM_DEMOS = ("Demo_SinglePerson", "Demo_MultiPerson", "Demo_Batch")


class SampleDataUnavailable(RuntimeError):
    """The sample could not be fetched or did not match its pinned hash."""


def sample_data_dir() -> Path:
    """$SYNCRIG_SAMPLE_DATA, else ~/.cache/syncrig/sample-data."""
    configured = os.environ.get("SYNCRIG_SAMPLE_DATA")
    return Path(configured) if configured else Path.home() / ".cache" / "syncrig" / "sample-data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_wheel(cache: Path) -> Path:
    wheel = cache / POSE2SIM_WHEEL
    if wheel.exists() and _sha256(wheel) == POSE2SIM_SHA256:
        return wheel
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        "--no-input",
        "-q",
        "-d",
        str(cache),
        f"pose2sim=={POSE2SIM_VERSION}",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SampleDataUnavailable(f"pip download pose2sim=={POSE2SIM_VERSION} failed: {exc}") from exc
    if done.returncode != 0 or not wheel.exists():
        reason = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SampleDataUnavailable(
            f"pip download pose2sim=={POSE2SIM_VERSION} failed (exit {done.returncode}): {reason[0]}"
        )
    if _sha256(wheel) != POSE2SIM_SHA256:
        wheel.unlink()
        raise SampleDataUnavailable(f"{POSE2SIM_WHEEL} does not have the pinned sha256 {POSE2SIM_SHA256}")
    return wheel


def pose2sim_demo(name: str = "Demo_SinglePerson", *, cache: Path | None = None) -> Path:
    """The folder of one of Pose2Sim's demo trials (`videos/`, `calibration/`, `Config.toml`),
    unpacked from the pinned pose2sim wheel. Raises SampleDataUnavailable when it cannot be had."""
    if name not in POSE2SIM_DEMOS:
        raise ValueError(f"unknown Pose2Sim demo {name!r}; expected one of {', '.join(POSE2SIM_DEMOS)}")
    cache = cache or sample_data_dir()
    target = cache / f"pose2sim-{POSE2SIM_VERSION}" / name
    done_marker = target / ".unpacked"
    if done_marker.exists():
        return target
    wheel = _fetch_wheel(cache)
    prefix = f"Pose2Sim/{name}/"
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if not member.filename.startswith(prefix) or member.is_dir():
                continue
            out = target / member.filename[len(prefix) :]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(archive.read(member))
    done_marker.write_text(POSE2SIM_SHA256 + "\n")
    return target
