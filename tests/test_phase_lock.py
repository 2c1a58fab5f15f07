"""The phase-lock servo against the pure free-running sensor model, in virtual time (fast).

The model is the same one the real-time simulated sensor runs; the servo is the one the agent
runs on a Pi. Without the servo a free-running sensor's phase against the grid is uniformly
spread (checked statistically, so that test fails if it were not); with it every camera locks
within 2 s and stays within 50 µs."""

from __future__ import annotations

import random

import numpy as np
import pytest
from scipy import stats

from syncrig_agent.backends.phase_lock import (
    LOCKED,
    LOCKING,
    LOST,
    LockTracker,
    PhaseServo,
    SensorLimits,
    ServoConfig,
)
from syncrig_agent.backends.sensor_model import FreeRunningSensorModel, imx708_limits
from syncrig_agent.contract.grid import period_ns_for_fps

T0 = 1_800_000_000_000_000_000
LIMITS = imx708_limits()


def run_locked(
    fps: float,
    ppm: float,
    phase: float,
    seconds: float,
    delay: int = 1,
    jitter_ns: float = 2000.0,
    servo: bool = True,
    seed: int = 0,
    limits: SensorLimits = LIMITS,
    **model_kwargs,
):
    """Start the sensor 0.5 s before T0 at `phase` (fraction of a period) and run it."""
    period = period_ns_for_fps(fps)
    start = T0 - 500_000_000 + round(phase * period)
    model = FreeRunningSensorModel(
        limits, start, ppm, delay_frames=delay, jitter_ns=jitter_ns, seed=seed, **model_kwargs
    )
    loop = PhaseServo(T0, period, limits, ServoConfig(delay_frames=delay))
    model.start(loop.first_duration())
    times, errors, requests = [], [], []
    while True:
        frame = model.next_frame()
        if frame.start_ns - start > seconds * 1e9:
            break
        times.append(frame.start_ns - start)
        errors.append(loop.phase_error_ns(frame.start_ns)[1])
        if servo:
            request = loop.update(frame.start_ns, frame.sequence)
            model.set_frame_duration(request)
            requests.append(request)
    return loop, np.asarray(times), np.asarray(errors), np.asarray(requests)


@pytest.mark.parametrize("fps", [30.0, 56.0])
@pytest.mark.parametrize("delay", [1, 2])
def test_locks_within_two_seconds_for_crystal_errors_and_start_phases(fps: float, delay: int) -> None:
    rng = random.Random(int(fps) * 10 + delay)
    cases = [
        (ppm, phase) for ppm in (-50.0, -17.0, 0.0, 23.0, 50.0) for phase in (0.0, 0.26, 0.5, 0.74, 0.999)
    ]
    cases += [(rng.uniform(-50, 50), rng.random()) for _ in range(10)]
    for ppm, phase in cases:
        loop, t, e, _ = run_locked(fps, ppm, phase, 8.0, delay=delay, seed=rng.randrange(1000))
        report = loop.report()
        assert report["state"] == LOCKED, (ppm, phase, report)
        locked_after_s = (report["locked_at_ns"] - (T0 - 500_000_000 + round(phase * loop.period_ns))) / 1e9
        after = np.abs(e[t > 2e9])
        assert locked_after_s < 2.0, (ppm, phase, locked_after_s)
        assert np.percentile(after, 99) <= 50_000 and after.max() <= 50_000, (ppm, phase, after.max())
        assert report["losses"] == 0


def test_requests_are_whole_lines_within_the_mode_limits() -> None:
    # 56 fps is the IMX708 mode's maximum: frames can barely be shortened, so the servo must lock
    # by lengthening (moving to the next slot) — and never ask for less than the minimum.
    for phase in (0.1, 0.45, 0.55, 0.9):
        loop, _, e, requests = run_locked(56.0, 40.0, phase, 4.0)
        lines = requests / LIMITS.line_time_ns
        assert np.all(np.abs(lines - np.round(lines)) * LIMITS.line_time_ns <= 1.0)
        assert requests.min() >= LIMITS.min_duration_ns and requests.max() <= LIMITS.max_duration_ns
        assert loop.state == LOCKED and abs(e[-1]) < 50_000
    narrow = SensorLimits(33_000_000, 33_700_000, 10_000.0)  # ±0.35 ms around 30 fps
    loop, t, e, requests = run_locked(30.0, -30.0, 0.5, 6.0, limits=narrow)
    assert requests.min() >= narrow.min_duration_ns and requests.max() <= narrow.max_duration_ns
    assert loop.clamped > 0, "a half-period start phase needs more than the limits give per frame"
    assert loop.state == LOCKED and np.abs(e[t > 5e9]).max() < 50_000


def test_period_outside_the_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="outside the sensor mode"):
        PhaseServo(T0, period_ns_for_fps(60.0), LIMITS)


def test_holds_lock_through_crystal_drift_and_wander() -> None:
    loop, t, e, _ = run_locked(
        56.0, 45.0, 0.3, 90.0, drift_ppm_per_min=3.0, wander_ppm_per_sqrt_min=1.0, jitter_ns=3000.0
    )
    after = np.abs(e[t > 2e9])
    assert loop.report()["losses"] == 0 and np.percentile(after, 99) <= 50_000


def test_skipped_frames_keep_the_prediction_consistent() -> None:
    """Frames the software never saw (sequence gaps) still used up committed durations."""
    period = period_ns_for_fps(30.0)
    model = FreeRunningSensorModel(LIMITS, T0 - 400_000_000 + period // 3, 30.0, delay_frames=2, seed=3)
    loop = PhaseServo(T0, period, LIMITS, ServoConfig(delay_frames=2))
    model.start(loop.first_duration())
    errors = []
    for k in range(600):
        frame = model.next_frame()
        if k % 7 == 3:
            continue  # lost downstream
        model.set_frame_duration(loop.update(frame.start_ns, frame.sequence))
        errors.append(abs(loop.phase_error_ns(frame.start_ns)[1]))
    assert loop.state == LOCKED and max(errors[-300:]) < 50_000


def test_without_the_servo_the_phase_is_uniformly_spread() -> None:
    """Free-running sensors started at random instants land anywhere in the period; the same
    statistic on servoed sensors rejects uniformity overwhelmingly (so this test can fail)."""
    rng = random.Random(7)
    free, locked = [], []
    period = period_ns_for_fps(56.0)
    for i in range(400):
        ppm, phase = rng.uniform(-50, 50), rng.random()
        for servo, out in ((False, free), (True, locked)):
            loop, t, e, _ = run_locked(56.0, ppm, phase, 2.5, servo=servo, seed=i)
            out.append(e[np.searchsorted(t, 2e9)] / period + 0.5)  # phase at 2 s, in [0, 1)
    uniform = stats.kstest(free, "uniform")
    assert uniform.pvalue > 0.01, f"free-running phases are not uniform: {uniform}"
    assert stats.kstest(locked, "uniform").pvalue < 1e-30
    assert max(abs(np.asarray(locked) - 0.5)) * period < 50_000


def test_lock_state_machine() -> None:
    tracker = LockTracker(threshold_ns=50_000, lock_frames=5, lose_frames=3)
    for err in (900_000, 300_000, 40_000, 20_000, -10_000, 5_000):
        assert tracker.observe(err, 0, 0) == LOCKING
    assert tracker.observe(-3_000, 123, 7) == LOCKED
    assert (tracker.locked_at_ns, tracker.locked_at_index, tracker.frames_to_lock) == (123, 7, 7)
    assert tracker.report()["label"] == "locked ±40.0 µs"  # the 900 µs acquisition error is not in it
    tracker.observe(120_000, 0, 8)  # one outlier does not lose it
    tracker.observe(1_000, 0, 9)
    assert tracker.state == LOCKED
    for _ in range(3):
        tracker.observe(500_000, 0, 10)
    assert tracker.state == LOST and tracker.losses == 1
    for _ in range(5):
        tracker.observe(1_000, 999, 11)
    assert tracker.state == LOCKED and tracker.locked_at_ns == 123  # the first lock is the session's


def test_quantise_clamps_and_rounds_to_lines() -> None:
    limits = SensorLimits(1_000_000, 2_000_000, 10_000.0)
    assert limits.quantise(1_234_567) == 1_230_000
    assert limits.quantise(0) == 1_000_000 and limits.quantise(9e9) == 2_000_000
    with pytest.raises(ValueError):
        SensorLimits(2, 1, 1.0)
