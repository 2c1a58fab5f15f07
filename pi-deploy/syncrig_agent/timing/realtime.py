"""Thread priority and timer slack for the capture thread, each with a logged fallback."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PR_SET_TIMERSLACK = 29

# Real-time priority of the whole agent process (all its threads), 0 when it runs SCHED_OTHER.
# Threads created after `enable_process_realtime` inherit it. Only the capture thread goes higher,
# and only while it waits for a target (see waiter._FifoWindow).
_process_priority = 0


def process_priority() -> int:
    return _process_priority


def enable_process_realtime(priority: int = 10) -> RealtimeSetup:
    """Make the calling (main) thread, and every thread it starts later, SCHED_FIFO at a low priority.

    Why the whole process: the capture thread needs the GIL the moment its timer fires. If the
    encoder or a network thread holds the GIL and is preempted by an unrelated busy process, the
    capture thread waits for that thread to be scheduled again — milliseconds under load. With
    every agent thread above normal processes, a GIL holder is never preempted by them.
    """
    global _process_priority
    setup = enable_realtime(priority, want_fifo=True)
    if setup.sched_fifo:
        _process_priority = priority
    if hold_cpu_latency_request(0):
        setup.notes.append("cpu_dma_latency held at 0 µs")
    return setup


_latency_fd: int | None = None


def hold_cpu_latency_request(microseconds: int = 0) -> bool:
    """Ask the kernel to keep CPUs out of deep idle states for as long as this process lives.

    Waking a core from deep idle (or, on a VM, a halted vCPU) adds tens to hundreds of µs to a
    timer wake-up. The request lasts while the file stays open, so the fd is kept for good.
    """
    global _latency_fd
    if _latency_fd is not None:
        return True
    try:
        fd = os.open("/dev/cpu_dma_latency", os.O_WRONLY | os.O_CLOEXEC)
        os.write(fd, int(microseconds).to_bytes(4, "little", signed=True))
    except OSError as exc:
        log.info("cpu_dma_latency request not possible (%s); deep idle states stay allowed", exc)
        return False
    _latency_fd = fd
    return True


@dataclass
class RealtimeSetup:
    """What the capture thread actually got; reported in STATUS and in the session manifest."""

    sched_fifo: bool = False
    priority: int = 0
    timer_slack_ns: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "sched_fifo": self.sched_fifo,
            "priority": self.priority,
            "timer_slack_ns": self.timer_slack_ns,
            "notes": list(self.notes),
        }


def set_timer_slack(ns: int) -> bool:
    """Timer slack of the calling thread (default 50 µs would blur every wake-up)."""
    try:
        import prctl  # python-prctl, when it could be built

        prctl.set_timerslack(ns)
        return True
    except ImportError:
        pass
    except OSError as exc:  # pragma: no cover - depends on the kernel
        log.warning("python-prctl set_timerslack failed: %s", exc)
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(ns), 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_TIMERSLACK) failed: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def enable_realtime(priority: int = 50, want_fifo: bool = True, slack_ns: int = 1) -> RealtimeSetup:
    """Give the *calling thread* SCHED_FIFO and 1 ns timer slack where permitted.

    On Linux, sched_setscheduler(0, …) applies to the calling thread only, which is what we want:
    the network and encoder threads stay at normal priority.
    """
    setup = RealtimeSetup()
    if set_timer_slack(slack_ns):
        setup.timer_slack_ns = slack_ns
    else:
        setup.notes.append("timer slack unchanged")
    if want_fifo:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            setup.sched_fifo = True
            setup.priority = priority
        except (PermissionError, OSError) as exc:
            msg = f"SCHED_FIFO not permitted ({exc}); running at normal priority, expect larger wake errors"
            log.warning(msg)
            setup.notes.append(msg)
    return setup
