"""The grid waiter is never early on the clock it stamps with, whatever the realtime→monotonic
conversion says: that conversion is an estimate from bracketed clock reads and only arms the timer.
(A wake 30 ns early once failed test_timing on a fresh clone, when the spin still ended on the
converted monotonic target.)"""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncrig_agent.timing import GridWaiter, SimulatedClock, SystemClock
from syncrig_agent.timing import waiter as waiter_module
from syncrig_agent.timing.waiter import realtime_not_before


@given(
    st.integers(-(10**10), 10**10),
    st.floats(-500, 500, allow_nan=False),
    st.integers(-(10**12), 10**12),
)
def test_realtime_not_before_is_the_first_instant_at_the_target(offset: int, ppm: float, delta: int) -> None:
    ref = 1_790_000_000_000_000_000
    clock = SimulatedClock(offset, ppm, reference_ns=ref)
    target = ref + delta
    real = realtime_not_before(clock, target)
    assert clock.from_realtime(real) >= target
    assert clock.from_realtime(real - 1) < target


@pytest.mark.parametrize("overestimate_ns", [700_000, 3_500_000], ids=["within-spin", "beyond-spin-cap"])
@pytest.mark.parametrize("use_native", [True, False], ids=["C-helper", "python-fallback"])
def test_wake_is_never_early_when_the_conversion_overestimates(
    monkeypatch: pytest.MonkeyPatch, use_native: bool, overestimate_ns: int
) -> None:
    # An offset that is too large arms the timer too early; beyond spin + cap the spin gives up
    # before the target and the waiter has to wait again instead of returning early.
    true_offset = waiter_module.realtime_minus_monotonic()
    monkeypatch.setattr(waiter_module, "realtime_minus_monotonic", lambda: true_offset + overestimate_ns)
    waiter = GridWaiter(SystemClock(), spin_ns=0, use_native=use_native)
    assert ("C" in waiter.method) == use_native
    try:
        for _ in range(5):
            target = time.time_ns() + 2_000_000
            wake = waiter.wait_until(target)
            assert wake is not None
            assert wake.actual_realtime_ns >= target
            assert wake.error_ns >= 0
    finally:
        waiter.close()


def test_simulated_camera_wake_is_never_early() -> None:
    clock = SimulatedClock(offset_ns=123_457, drift_ppm=-37.3)
    waiter = GridWaiter(clock, spin_ns=100_000)
    try:
        errors = [waiter.wait_until(clock.now_ns() + 1_000_000 + i).error_ns for i in range(20)]
    finally:
        waiter.close()
    assert min(errors) >= 0
