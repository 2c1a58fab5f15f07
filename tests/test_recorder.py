"""The recorder's one wait for the planned end (rig/recorder.py) on a scripted cam0 clock, and the
recording state's table of moves (rig/state.py)."""

from __future__ import annotations

import pytest

from controller.rig.recorder import STOP_MARGIN_NS, wait_for_planned_end
from controller.rig.state import IllegalTransition, RecordingState, move


def scripted(step_ns: int, stop_after: int | None = None):  # noqa: ANN201
    """cam0's clock advancing `step_ns` per round; a stop asked for after `stop_after` rounds."""
    now = [0]
    waits: list[float] = []
    ticks: list[int] = []

    def cam0_now_ns() -> int:
        return now[0]

    def stop_requested(wait_s: float) -> bool:
        waits.append(wait_s)
        now[0] += step_ns
        return stop_after is not None and len(waits) >= stop_after

    return cam0_now_ns, stop_requested, ticks.append, waits, ticks


def test_the_wait_ends_a_margin_after_the_planned_end() -> None:
    now, stop, tick, waits, ticks = scripted(100_000_000)
    assert wait_for_planned_end(1_000_000_000, now, stop, tick, poll_s=0.5) is False
    assert ticks[-1] >= 1_000_000_000 + STOP_MARGIN_NS > ticks[-2]
    assert all(0 < w <= 0.5 for w in waits)


def test_the_wait_never_sleeps_past_the_end_and_margin() -> None:
    now, stop, tick, waits, _ = scripted(100_000_000)
    wait_for_planned_end(50_000_000, now, stop, tick, poll_s=5.0)
    assert waits[0] == pytest.approx((50_000_000 + STOP_MARGIN_NS) / 1e9)


def test_a_stop_ends_the_wait_early_and_without_an_end_only_a_stop_does() -> None:
    now, stop, tick, _, ticks = scripted(100_000_000, stop_after=3)
    assert wait_for_planned_end(10_000_000_000, now, stop, tick, poll_s=0.25) is True
    assert len(ticks) == 3
    now, stop, tick, waits, _ = scripted(100_000_000, stop_after=50)
    assert wait_for_planned_end(None, now, stop, tick, poll_s=0.25) is True
    assert len(waits) == 50 and set(waits) == {0.25}


def test_recording_state_moves_only_along_the_table() -> None:
    S = RecordingState
    assert move(S.IDLE, S.STARTING) is S.STARTING
    assert S.STARTING == "starting" and str(S.STOPPING) == "stopping"  # the UI's strings
    for state in (S.STOPPING, S.COLLECTING):
        assert move(move(S.RECORDING, state), S.IDLE) is S.IDLE
    with pytest.raises(IllegalTransition, match="from idle to collecting"):
        move(S.IDLE, S.COLLECTING)
    with pytest.raises(IllegalTransition):
        move(S.STARTING, S.STARTING)  # a second Start while one is starting
