"""Sleeping until a grid target on a camera's clock.

Each target is converted camera clock → realtime → CLOCK_MONOTONIC at the moment it is armed, so a
slew of the realtime clock (phc2sys, chrony) is followed frame by frame and no error accumulates.
The timer fires `spin_ns` early and the last stretch is spun on the clock, which removes most of
the kernel's wake-up latency (with SCHED_FIFO the spin cannot be preempted by normal threads).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from syncrig_agent.timing import native
from syncrig_agent.timing.camera_clock import CameraClock
from syncrig_agent.timing.realtime import process_priority
from syncrig_agent.timing.timerfd import MonotonicTimer

# Longest single sleep: bounds how late an abort is noticed while waiting for a distant target.
_SLICE_NS = 100_000_000
# A spin never runs longer than planned + this (a clock step must not spin us at RT priority).
_SPIN_CAP_NS = 1_000_000


def realtime_minus(clock_id: int) -> int:
    """CLOCK_REALTIME − `clock_id` (ns), from the tightest of three bracketed reads."""
    best_width = None
    best = 0
    for _ in range(3):
        c0 = time.clock_gettime_ns(clock_id)
        r = time.time_ns()
        c1 = time.clock_gettime_ns(clock_id)
        width = c1 - c0
        if best_width is None or width < best_width:
            best_width = width
            best = r - (c0 + c1) // 2
    return best


def realtime_minus_monotonic() -> int:
    return realtime_minus(time.CLOCK_MONOTONIC)


@dataclass(frozen=True)
class Wake:
    target_ns: int  # on the camera clock
    actual_ns: int  # camera clock when the wait returned
    actual_realtime_ns: int  # host CLOCK_REALTIME at the same instant
    monotonic_ns: int

    @property
    def error_ns(self) -> int:
        return self.actual_ns - self.target_ns


class _FifoWindow:
    """Keeps a SCHED_FIFO thread real-time only from arming to timestamp.

    With more cameras than cores (3 agents on 2 vCPUs here), a camera that stays at its high
    priority while it renders and queues its frame occupies a core that another camera needs for
    its own spin, making that camera hundreds of µs late. Dropping to the process's base priority
    right after the timestamp hands the core over at once; it is boosted again before it sleeps.
    """

    def __init__(self) -> None:
        try:
            self.priority = (
                os.sched_getparam(0).sched_priority if os.sched_getscheduler(0) == os.SCHED_FIFO else 0
            )
        except OSError:
            self.priority = 0

    def boost(self) -> None:
        if self.priority:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.priority))

    def relaxed(self) -> tuple[int, int] | None:
        """(policy, priority) to drop to after a stamp; None when the thread is not boosted."""
        if not self.priority:
            return None
        base = process_priority()
        return (os.SCHED_FIFO, base) if base else (os.SCHED_OTHER, 0)

    def relax(self) -> None:
        target = self.relaxed()
        if target is not None:
            os.sched_setscheduler(0, target[0], os.sched_param(target[1]))


class GridWaiter:
    def __init__(self, clock: CameraClock, spin_ns: int = 0, use_native: bool = True) -> None:
        self.clock = clock
        self.spin_ns = max(0, int(spin_ns))
        self._timer = MonotonicTimer()
        # Sampled on the thread that will wait (the capture thread, after enable_realtime).
        self._fifo = _FifoWindow()
        lib = native.load() if use_native else None
        self._native = native.NativeWaiter(lib) if lib is not None else None

    @property
    def method(self) -> str:
        """How the final wait is done (reported with the capture's realtime setup)."""
        return "clock_nanosleep+spin in C (GIL released)" if self._native else "timerfd+spin in Python"

    def wait_until(self, target_ns: int, should_abort: Callable[[], bool] | None = None) -> Wake | None:
        """Sleep until `target_ns` on the camera clock; None if `should_abort` said so meanwhile.

        Long waits (the start lead) are cut into short slices so an abort is honoured promptly;
        the last slice is always re-armed from a fresh realtime→monotonic conversion.
        """
        self._fifo.boost()
        while True:
            target_mono = self.clock.to_realtime(target_ns) - realtime_minus_monotonic()
            remaining = target_mono - self.spin_ns - time.monotonic_ns()
            if remaining <= _SLICE_NS:
                break
            self._timer.sleep_until(time.monotonic_ns() + _SLICE_NS)
            if should_abort is not None and should_abort():
                self._fifo.relax()
                return None
        if self._native is not None:
            # The C helper drops the priority itself, immediately after the stamp.
            real, now = self._native.wait_and_stamp(
                target_mono, self.spin_ns, _SPIN_CAP_NS, self._fifo.relaxed()
            )
            return Wake(target_ns, self.clock.from_realtime(real), real, now)
        self._timer.sleep_until(target_mono - self.spin_ns)
        now = time.monotonic_ns()
        if self.spin_ns:
            # Bounded spin: never longer than spin_ns past the timer (a clock step could otherwise
            # leave us spinning for seconds at real-time priority).
            limit = now + self.spin_ns + _SPIN_CAP_NS
            while now < target_mono and now < limit:
                # Yielding lets other real-time spinners (other cameras on the same cores) run
                # between our clock reads, so with more spinners than cores each still reads
                # the clock within a few µs of the target instead of one waiting out the others.
                os.sched_yield()
                now = time.monotonic_ns()
        real = time.time_ns()
        self._fifo.relax()
        return Wake(target_ns, self.clock.from_realtime(real), real, now)

    def close(self) -> None:
        self._timer.close()
