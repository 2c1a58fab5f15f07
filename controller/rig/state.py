"""Where the controller's recording is in its life, and the one table of the moves between states.

The UI gets the state's value ("idle", "starting", ...) in `/api/status` `recording.state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum


class RecordingState(str, Enum):
    IDLE = "idle"  # nothing recording: a recording may start
    STARTING = "starting"  # pre-flight, receivers, START on cam0
    RECORDING = "recording"  # the cameras record; waiting for the planned end or a Stop
    STOPPING = "stopping"  # Stop asked for: STOP now, then collect the files
    COLLECTING = "collecting"  # the planned end passed: STOP (summaries only), collect the files

    def __str__(self) -> str:
        return self.value


S = RecordingState

#: Every move the recording may make.
TRANSITIONS: Mapping[RecordingState, frozenset[RecordingState]] = {
    # RECORDING straight from IDLE: re-attached to a recording a previous controller started.
    S.IDLE: frozenset({S.STARTING, S.RECORDING}),
    S.STARTING: frozenset({S.RECORDING, S.IDLE}),  # IDLE: refused or failed before it began
    S.RECORDING: frozenset({S.STOPPING, S.COLLECTING}),
    # Back to RECORDING when the STOP or the collection failed: the cameras may still record and
    # Stop can be retried.
    S.STOPPING: frozenset({S.IDLE, S.RECORDING}),
    S.COLLECTING: frozenset({S.IDLE, S.RECORDING}),
}


class IllegalTransition(RuntimeError):
    """A move the table does not allow: a bug in the caller, never a user error."""


def move(current: RecordingState, to: RecordingState) -> RecordingState:
    """`to`, when the table allows the move from `current`."""
    if to not in TRANSITIONS[current]:
        raise IllegalTransition(f"recording state cannot go from {current} to {to}")
    return to
