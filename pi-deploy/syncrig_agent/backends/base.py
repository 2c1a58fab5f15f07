"""The camera backend interface.

A backend turns a frame grid into frames: the synthetic sensor is triggered at each grid target;
a real Pi sensor free-runs and its frames are labelled with the grid slot they belong to. Either
way it hands `CapturedFrame`s (I420 pixels + honest timestamps) to `deliver`, which feeds the
encoder → outputs chain, and it never blocks on that chain.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from syncrig_agent.contract.drops import DROP_CAUSES
from syncrig_agent.contract.grid import FrameGrid
from syncrig_agent.frames import CapturedFrame
from syncrig_agent.timing.camera_clock import CameraClock

# Completed frames a sensor holds for software that is late to collect them (libcamera's request
# queue; picamera2 allots 4–6 buffers to video): a stall shorter than this many frames loses none.
SENSOR_BUFFERS = 4


@dataclass
class CaptureStats:
    """Counters of one capture run; every frame that is not written is counted in exactly one.

    One counter per drop cause of `syncrig_agent.contract.drops.DROP_CAUSES` (what each means is
    written there), named by its `stat`."""

    captured: int = 0
    sensor_drops: int = 0
    late_skips: int = 0
    queue_overflows: int = 0
    after_failure: int = 0
    before_lock: int = 0
    # Free-running sensors: extra frames that fell on an already used slot while unlocked (not
    # written; frames, not slots, so not a drop cause).
    slot_repeats: int = 0
    phase_lock_report: Callable[[], Any] | None = None  # the servo's report (free-running backends)
    first_index: int | None = None
    last_index: int | None = None
    wake_errors_ns: list[int] = field(default_factory=list)  # bounded window for STATUS

    def note_wake_error(self, err_ns: int) -> None:
        self.wake_errors_ns.append(err_ns)
        if len(self.wake_errors_ns) > 4096:
            del self.wake_errors_ns[:2048]

    def summary(self) -> dict:
        errs = np.asarray(self.wake_errors_ns, dtype=np.int64)
        wake = {}
        if errs.size:
            wake = {
                "p50_us": float(np.percentile(errs, 50) / 1e3),
                "p99_us": float(np.percentile(errs, 99) / 1e3),
                "max_us": float(errs.max() / 1e3),
            }
        return {
            "captured": self.captured,
            **{cause.stat: getattr(self, cause.stat) for cause in DROP_CAUSES},
            "slot_repeats": self.slot_repeats,
            "phase_lock": self.phase_lock_report() if self.phase_lock_report else None,
            "first_index": self.first_index,
            "last_index": self.last_index,
            "wake_error": wake,
        }


class CaptureControl:
    """Tells a running capture when to end: at a grid index (clean stop) or at once (abort)."""

    def __init__(self) -> None:
        self._end_index: int | None = None
        self._abort = threading.Event()
        self._lock = threading.Lock()

    def stop_at_index(self, end_index: int) -> None:
        with self._lock:
            # A second STOP may only bring the end closer, never extend a stopping recording.
            if self._end_index is None or end_index < self._end_index:
                self._end_index = end_index

    def abort(self) -> None:
        self._abort.set()

    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    @property
    def end_index(self) -> int | None:
        return self._end_index

    def finished(self, index: int) -> bool:
        end = self._end_index
        return self._abort.is_set() or (end is not None and index >= end)


class CameraBackend(ABC):
    """Base class: configure once (`open`), then `run` one capture per session."""

    kind: str = "base"
    #: Triggered sensors expose when asked; free-running ones must be phase-locked to the grid.
    triggered: bool = True
    #: The live preview can show a recording (it reuses the recorded frames); False where the
    #: hardware cannot serve both, so viewers are refused (409) while the camera records.
    preview_while_recording: bool = True

    def __init__(self, width: int, height: int, clock: CameraClock) -> None:
        self.width = width
        self.height = height
        self.clock = clock

    def open(self) -> None:
        """Acquire the device and allocate buffers, so that arming a session is cheap."""

    @abstractmethod
    def run(
        self,
        grid: FrameGrid,
        control: CaptureControl,
        deliver: Callable[[CapturedFrame], bool],
        stats: CaptureStats,
    ) -> None:
        """Capture until `control` says stop.

        `deliver` returns False when the frame was not accepted; the receiver has counted why
        (queue overflow, recording failed), so the backend counts only frames accepted.
        """

    def close(self) -> None:
        """Release the device."""

    def describe(self) -> dict:
        return {"kind": self.kind, "width": self.width, "height": self.height, "clock": self.clock.describe()}
