"""Loads precise_wait.c, compiled on first use with the system C compiler and cached.

Why compile at all: after a Python-level wait returns, the thread must re-take the GIL before it
can read the clock, and another thread holding the GIL (encoder, network, status) then delays the
timestamp by up to milliseconds. The C helper sleeps, spins and stamps with the GIL released.
Without a compiler the agent falls back to timerfd + a Python spin, and says so.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("precise_wait.c")
_loaded: ctypes.CDLL | None = None
_failure: str | None = None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "syncrig"


def _compile(target: Path) -> None:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise RuntimeError("no C compiler (cc/gcc/clang) found")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Compile to a temporary name and rename: agents starting together never load half a file.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        subprocess.run(
            [cc, "-O2", "-shared", "-fPIC", "-o", tmp, str(SOURCE)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        os.replace(tmp, target)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"compiling {SOURCE.name} failed: {exc.stderr.strip()}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load() -> ctypes.CDLL | None:
    """The helper library, or None (reason in `failure()`); set SYNCRIG_NO_NATIVE=1 to disable."""
    global _loaded, _failure
    if _loaded is not None or _failure is not None:
        return _loaded
    if os.environ.get("SYNCRIG_NO_NATIVE"):
        _failure = "disabled by SYNCRIG_NO_NATIVE"
        return None
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    target = _cache_dir() / f"precise_wait-{digest}.so"
    try:
        if not target.exists():
            _compile(target)
        lib = ctypes.CDLL(str(target))
        fn = lib.syncrig_wait_and_stamp
        fn.argtypes = [
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.POINTER(ctypes.c_int64),
            ctypes.POINTER(ctypes.c_int64),
            ctypes.c_int,
            ctypes.c_int,
        ]
        fn.restype = ctypes.c_int
        _loaded = lib
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        _failure = str(exc)
        log.warning("precise wait helper unavailable (%s); using timerfd + Python spin", exc)
    return _loaded


def failure() -> str | None:
    return _failure


class NativeWaiter:
    """Calls syncrig_wait_and_stamp; one instance per waiting thread (owns its out-parameters)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._fn = lib.syncrig_wait_and_stamp
        self._real = ctypes.c_int64()
        self._mono = ctypes.c_int64()

    def wait_and_stamp(
        self,
        target_real: int,
        target_mono: int,
        spin_ns: int,
        spin_cap_ns: int,
        relax: tuple[int, int] | None = None,
    ) -> tuple[int, int]:
        """(realtime, monotonic) stamps once CLOCK_REALTIME >= `target_real` (see precise_wait.c).

        `target_mono` only arms the sleep. The realtime stamp is below `target_real` only when
        the spin cap ended the wait (the realtime clock was stepped back). `relax` = (policy,
        priority) the thread drops to, in C, right after a stamp that reached the target.
        """
        policy, priority = relax if relax is not None else (-1, 0)
        rc = self._fn(
            target_real,
            target_mono,
            spin_ns,
            spin_cap_ns,
            ctypes.byref(self._real),
            ctypes.byref(self._mono),
            policy,
            priority,
        )
        if rc != 0:
            raise OSError(rc, f"clock_nanosleep: {os.strerror(rc)}")
        return self._real.value, self._mono.value
