"""Sleeping until a grid target on a camera's clock.

Each target is converted camera clock → realtime → CLOCK_MONOTONIC at the moment it is armed, so a
slew of the realtime clock (phc2sys, chrony) is followed frame by frame and no error accumulates.
The timer fires `spin_ns` early and the last stretch is spun on the clock, which removes most of
the kernel's wake-up latency (with SCHED_FIFO the spin cannot be preempted by normal threads).

Never early, by construction: the monotonic conversion only arms the timer. The spin ends on
CLOCK_REALTIME itself, at the first realtime instant the camera clock maps at or after the target,
and the read that ends it is the frame's stamp. (The conversion is an estimate from bracketed
clock reads, tens of ns off at times; a spin that ended on the monotonic target woke that early.)
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


def realtime_not_before(clock: CameraClock, target_ns: int) -> int:
    """The first CLOCK_REALTIME instant at which `clock` reads `target_ns` or later.

    `to_realtime` rounds (a simulated clock divides by its rate), so its answer can map back a
    nanosecond or two before the target; step forward until it does not. `from_realtime` never
    decreases as realtime advances, so this ends after a step or two.
    """
    real = clock.to_realtime(target_ns)
    while clock.from_realtime(real) < target_ns:
        real += 1
    return real


class GridWaiter:
    def __init__(
        self, clock: CameraClock, spin_ns: int = 0, use_native: bool = True, relax_after_wake: bool = True
    ) -> None:
        """`relax_after_wake` False: the thread keeps its high priority after the wake until it calls
        `relax()` (TTL out sets its line first; the capture thread drops at once)."""
        self.clock = clock
        self.spin_ns = max(0, int(spin_ns))
        self.relax_after_wake = relax_after_wake
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
        target_real = realtime_not_before(self.clock, target_ns)
        while True:
            self._fifo.boost()
            target_mono = self._sleep_to_last_slice(target_real, should_abort)
            if target_mono is None:
                self._fifo.relax()
                return None
            real, mono = self._final_wait(target_real, target_mono)
            if real >= target_real:
                return Wake(target_ns, self.clock.from_realtime(real), real, mono)
            # The spin cap ended the wait first: the realtime clock was stepped back while we
            # waited. Wait again from a fresh conversion rather than return an early wake.

    def _sleep_to_last_slice(self, target_real: int, should_abort: Callable[[], bool] | None) -> int | None:
        """Sleep in slices until the target is a slice away; its CLOCK_MONOTONIC estimate (None: abort)."""
        while True:
            target_mono = target_real - realtime_minus_monotonic()
            remaining = target_mono - self.spin_ns - time.monotonic_ns()
            if remaining <= _SLICE_NS:
                return target_mono
            self._timer.sleep_until(time.monotonic_ns() + _SLICE_NS)
            if should_abort is not None and should_abort():
                return None

    def _final_wait(self, target_real: int, target_mono: int) -> tuple[int, int]:
        """(realtime, monotonic) stamps; realtime >= target_real unless the spin cap ended the wait."""
        if self._native is not None:
            # The C helper drops the priority itself, immediately after a stamp on target.
            return self._native.wait_and_stamp(
                target_real,
                target_mono,
                self.spin_ns,
                _SPIN_CAP_NS,
                self._fifo.relaxed() if self.relax_after_wake else None,
            )
        self._timer.sleep_until(target_mono - self.spin_ns)
        # Bounded spin: never longer than spin_ns past the timer (a clock step could otherwise
        # leave us spinning for seconds at real-time priority).
        limit = time.monotonic_ns() + self.spin_ns + _SPIN_CAP_NS
        real = time.time_ns()
        while real < target_real and time.monotonic_ns() < limit:
            # Yielding lets other real-time spinners (other cameras on the same cores) run
            # between our clock reads, so with more spinners than cores each still reads
            # the clock within a few µs of the target instead of one waiting out the others.
            os.sched_yield()
            real = time.time_ns()
        mono = time.monotonic_ns()
        if real >= target_real and self.relax_after_wake:
            self._fifo.relax()
        return real, mono

    def relax(self) -> None:
        """Back to the process's base priority (after a wake with `relax_after_wake` False)."""
        self._fifo.relax()

    def close(self) -> None:
        self._timer.close()
