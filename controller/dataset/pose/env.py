"""The side virtualenv that 2D pose runs in (mediapipe needs numpy<2 / protobuf<5; the main
environment has numpy 2): where it lives, how it is made from `requirements.txt`, and the
check that it is complete. Made on first use of `syncrig pose` (or `ensure_pose_env()`)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("requirements.txt")
WORKER = Path(__file__).with_name("worker.py")
MARKER = ".syncrig-pose-installed"
PIP = ["-m", "pip", "install", "--disable-pip-version-check", "--no-input", "-q"]
SUPPORTED_PYTHON = ((3, 9), (3, 12))  # mediapipe 0.10.21 has wheels for CPython 3.9-3.12


class PoseEnvError(RuntimeError):
    pass


def pose_env_dir() -> Path:
    """$SYNCRIG_POSE_VENV, else `.venv-pose` next to the virtualenv running us (tools/syncrig's
    `.venv`), else ~/.cache/syncrig/venv-pose."""
    if os.environ.get("SYNCRIG_POSE_VENV"):
        return Path(os.environ["SYNCRIG_POSE_VENV"])
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix).parent / ".venv-pose"
    return Path.home() / ".cache" / "syncrig" / "venv-pose"


def env_python(env: Path | None = None) -> Path:
    return (env or pose_env_dir()) / "bin" / "python"


def _requirements() -> tuple[list[str], list[str]]:
    no_deps, rest = [], []
    for line in REQUIREMENTS.read_text().splitlines():
        spec, _, comment = line.partition("#")
        spec = spec.strip()
        if spec:
            (no_deps if "no-deps" in comment else rest).append(spec)
    return no_deps, rest


def _wanted() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:16]


def pose_env_ready(env: Path | None = None) -> bool:
    env = env or pose_env_dir()
    try:
        return env_python(env).exists() and (env / MARKER).read_text().strip() == _wanted()
    except OSError:
        return False


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
        raise PoseEnvError(
            f"cannot create the 2D pose environment: {what} failed (exit {proc.returncode}). Installing "
            f"needs the package index (PyPI) once; after that pose runs offline.\n{tail}"
        )


def ensure_pose_env(env: Path | None = None, say: Callable[[str], None] | None = None) -> Path:
    """Create or complete the side environment; return its python. Idempotent and quick when the
    environment matches the requirements file."""
    env = env or pose_env_dir()
    say = say or (lambda msg: print(msg, file=sys.stderr, flush=True))
    py = env_python(env)
    if pose_env_ready(env):
        return py
    lo, hi = SUPPORTED_PYTHON
    if not (lo <= sys.version_info[:2] <= hi):
        raise PoseEnvError(
            f"2D pose needs CPython {lo[0]}.{lo[1]}-{hi[0]}.{hi[1]} (mediapipe 0.10.21 wheels); this is "
            f"{sys.version_info[0]}.{sys.version_info[1]}: set PYTHON to one for tools/syncrig"
        )
    started = time.monotonic()
    if not py.exists():
        say(f"syncrig pose: creating the pose environment in {env} (once; mediapipe needs numpy<2)")
        _run([sys.executable, "-m", "venv", str(env)], f"{sys.executable} -m venv {env}")
    no_deps, rest = _requirements()
    say(
        f"syncrig pose: [1/3] installing {' '.join(no_deps)} (no dependencies: the legacy solutions need few)"
    )
    _run([str(py), *PIP, "--no-deps", *no_deps], "pip install " + " ".join(no_deps))
    say(f"syncrig pose: [2/3] installing {len(rest)} packages it imports (numpy<2, protobuf<5, OpenCV, ...)")
    _run([str(py), *PIP, *rest], "pip install " + " ".join(rest))
    say("syncrig pose: [3/3] checking the models load offline")
    _run([str(py), str(WORKER), "--check"], "the pose worker's offline check")
    (env / MARKER).write_text(_wanted() + "\n")
    say(f"syncrig pose: pose environment ready ({time.monotonic() - started:.0f} s)")
    return py
