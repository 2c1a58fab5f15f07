"""Why a slot of a recording has no frame: the one list of drop causes.

Every grid slot between T0 and the stop that has no written frame is counted under exactly one
cause. The agent counts them in `CaptureStats` (its STATUS `session.stats` and the capture summary
carry each under `stat`); the session manifest lists them per camera under `manifest_key`
(`drops`), plus `not_reached`, which only the desktop can know; the controller's camera card sums
them live. All three read this list, so a new cause is added here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DropCause:
    stat: str  # the counter's name in CaptureStats and its summary (STATUS session.stats)
    manifest_key: str  # its key in the manifest's per-camera "drops"
    meaning: str


DROP_CAUSES: tuple[DropCause, ...] = (
    DropCause("sensor_drops", "sensor", "the sensor delivered nothing for the slot"),
    DropCause(
        "late_skips",
        "late_skips",
        "the agent woke so late that the sensor's buffers no longer held the frame: the slot is"
        " left empty, the grid kept",
    ),
    DropCause("queue_overflows", "queue_overflows", "the encoder could not keep up: the frame was discarded"),
    DropCause(
        "after_failure",
        "after_failure",
        "captured after the recording failed (disk full, encoder error): not written",
    ),
    DropCause(
        "before_lock",
        "before_lock",
        "a free-running sensor had not phase-locked to the grid yet: not written (wait-for-lock policy)",
    ),
)

#: Manifest only: slots after a lost camera's last whole frame (its agent died, froze or was cut
#: off before STOP reached it); the manifest's `lost` says when and why.
CAMERA_LOST = "camera_lost"

#: Manifest only: slots after a camera stopped early (error, abort, lost server), never attempted.
#: The desktop derives it as expected − recorded − every counted cause.
NOT_REACHED = "not_reached"


def drops_by_cause(stats: Mapping[str, Any]) -> dict[str, int]:
    """A capture's counted drops keyed as in the manifest (a counter the stats lack counts 0)."""
    return {cause.manifest_key: int(stats.get(cause.stat) or 0) for cause in DROP_CAUSES}


def total_drops(stats: Mapping[str, Any]) -> int:
    """Every counted drop of a capture (its STATUS `session.stats` or capture summary `stats`)."""
    return sum(drops_by_cause(stats).values())
