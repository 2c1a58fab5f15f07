"""The kernel's own view of CLOCK_REALTIME through adjtimex(2): whatever disciplines the clock.

Every discipline daemon reports to the kernel: phc2sys (when it steers CLOCK_REALTIME and its servo
is locked) and chronyd/ntpd/systemd-timesyncd clear STA_UNSYNC and reset `maxerror`; the kernel
then adds 500 µs to `maxerror` every second and sets STA_UNSYNC itself once it passes 16 s. So a
clear STA_UNSYNC with a small maxerror says "something disciplined this clock recently" without
knowing which daemon — the fallback when no daemon can be asked, and a cross-check when one can.
A read-only call (modes = 0) needs no privilege.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

from syncrig_agent.clock_state.base import SYNCHRONIZED, UNSYNCHRONIZED, ClockState

STA_PLL = 0x0001
STA_UNSYNC = 0x0040
STA_NANO = 0x2000
TIME_ERROR = 5  # adjtimex return value: clock not synchronised


class _Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>; ctypes adds the same padding as the C compiler.
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("constant", ctypes.c_long),
        ("precision", ctypes.c_long),
        ("tolerance", ctypes.c_long),
        ("time", _Timeval),
        ("tick", ctypes.c_long),
        ("ppsfreq", ctypes.c_long),
        ("jitter", ctypes.c_long),
        ("shift", ctypes.c_int),
        ("stabil", ctypes.c_long),
        ("jitcnt", ctypes.c_long),
        ("calcnt", ctypes.c_long),
        ("errcnt", ctypes.c_long),
        ("stbcnt", ctypes.c_long),
        ("tai", ctypes.c_int),
        ("_reserved", ctypes.c_int * 11),
    ]


@dataclass
class KernelClock:
    status: int  # STA_* bits
    state: int  # adjtimex return value (TIME_OK .. TIME_ERROR)
    maxerror_us: int
    esterror_us: int
    offset_ns: int  # the kernel PLL's remaining offset (what is still being slewed in)
    freq_ppm: float
    tai_s: int

    @property
    def unsync(self) -> bool:
        return bool(self.status & STA_UNSYNC) or self.state == TIME_ERROR


class KernelClockError(OSError):
    pass


def read_kernel_clock() -> KernelClock:
    libc_name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
    except OSError as exc:
        raise KernelClockError(f"cannot load libc for adjtimex: {exc}") from None
    tx = _Timex()
    tx.modes = 0  # read only
    ret = libc.adjtimex(ctypes.byref(tx))
    if ret < 0:
        err = ctypes.get_errno()
        raise KernelClockError(err, f"adjtimex: {os.strerror(err)}")
    scale = 1 if tx.status & STA_NANO else 1000
    return KernelClock(
        status=tx.status,
        state=ret,
        maxerror_us=tx.maxerror,
        esterror_us=tx.esterror,
        offset_ns=tx.offset * scale,
        freq_ppm=tx.freq / 65536.0,
        tai_s=tx.tai,
    )


def kernel_component(k: KernelClock) -> dict:
    return {
        "unsync": k.unsync,
        "status": f"0x{k.status:04x}",
        "maxerror_us": k.maxerror_us,
        "esterror_us": k.esterror_us,
        "offset_ns": k.offset_ns,
        "freq_ppm": round(k.freq_ppm, 3),
        "tai_s": k.tai_s,
    }


def kernel_state(k: KernelClock) -> ClockState:
    """The kernel-only verdict: "ntp" when something marked the clock synchronised, else "none".
    Its offset is unknown (the kernel keeps only bounds), so `error_bound_ns` is maxerror."""
    components = {"kernel": kernel_component(k)}
    if k.unsync:
        return ClockState(
            source="none",
            state=UNSYNCHRONIZED,
            servo_state="unsync",
            detail="kernel: STA_UNSYNC set — no time daemon has disciplined this clock recently",
            components=components,
        )
    return ClockState(
        source="ntp",
        state=SYNCHRONIZED,
        servo_state="pll" if k.status & STA_PLL else "sync",
        error_bound_ns=k.maxerror_us * 1000,
        detail=(
            f"kernel: clock marked synchronised by a time daemon (max error {k.maxerror_us} µs, "
            f"estimated {k.esterror_us} µs); its offset is not reported"
        ),
        components=components,
    )
