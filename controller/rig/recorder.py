"""The recorder's wait between START and STOP: until cam0's clock passes the planned end, or a stop
is asked for. One loop for the headless `record()` and the controller's recording job.

The end is measured on cam0's clock (the one T0 and the planned end are on), never on this
machine's; the STOP goes out `STOP_MARGIN_NS` after the planned end, when every camera has
stopped by itself and the STOP only collects their summaries (it never extends a recording).
"""

from __future__ import annotations

from collections.abc import Callable

# How long after the planned end the STOP (which then collects the summaries) is sent.
STOP_MARGIN_NS = 200_000_000


def wait_for_planned_end(
    planned_stop_ns: int | None,
    cam0_now_ns: Callable[[], int],
    stop_requested: Callable[[float], bool],
    on_tick: Callable[[int], None],
    poll_s: float,
) -> bool:
    """Wait for the planned end (forever without one) or a stop; True when stopped before it.

    Each round reads `cam0_now_ns()` (which may raise to abandon the wait), reports it to
    `on_tick`, then calls `stop_requested(wait_s)`, which waits up to `wait_s` seconds and says
    whether a stop was asked for. The wait is at most `poll_s`, and never past the end + margin.
    """
    while True:
        now = cam0_now_ns()
        on_tick(now)
        wait_s = poll_s
        if planned_stop_ns is not None:
            left_ns = planned_stop_ns + STOP_MARGIN_NS - now
            if left_ns <= 0:
                return False
            wait_s = min(poll_s, left_ns / 1e9)
        if stop_requested(wait_s):
            return True
