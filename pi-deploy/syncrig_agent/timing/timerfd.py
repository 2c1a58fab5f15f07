"""timerfd on CLOCK_MONOTONIC with TFD_TIMER_ABSTIME, through ctypes.

Absolute timers are what keep the grid: a relative sleep accumulates every wake-up's latency
(setitimer drifted ~1.7 ms over 2000 frames on this machine), an absolute one cannot.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import time

CLOCK_MONOTONIC = 1
TFD_CLOEXEC = 0o2000000
TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.timerfd_create.restype = ctypes.c_int
_libc.timerfd_settime.argtypes = [
    ctypes.c_int,
    ctypes.c_int,
    ctypes.POINTER(_Itimerspec),
    ctypes.POINTER(_Itimerspec),
]
_libc.timerfd_settime.restype = ctypes.c_int


class MonotonicTimer:
    """One-shot absolute timer: `arm(t)` then `wait()` returns at or after CLOCK_MONOTONIC == t."""

    def __init__(self) -> None:
        fd = _libc.timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_create: {os.strerror(err)}")
        self._fd = fd
        self._spec = _Itimerspec()

    def arm(self, monotonic_ns: int) -> None:
        # A target in the past would be "0 = disarm" if it were exactly zero; clamp to 1 ns so a
        # late target fires at once instead.
        monotonic_ns = max(1, monotonic_ns)
        self._spec.it_value.tv_sec, self._spec.it_value.tv_nsec = divmod(monotonic_ns, 1_000_000_000)
        if _libc.timerfd_settime(self._fd, TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"timerfd_settime: {os.strerror(err)}")

    def wait(self) -> None:
        """Block (GIL released) until the armed time; returns immediately if it has passed."""
        os.read(self._fd, 8)

    def sleep_until(self, monotonic_ns: int) -> None:
        if monotonic_ns <= time.monotonic_ns():
            return
        self.arm(monotonic_ns)
        self.wait()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> MonotonicTimer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
