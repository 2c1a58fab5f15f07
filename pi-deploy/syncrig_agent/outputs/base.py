"""Output base class: receives every encoded frame in stream order.

An output that fails (disk full, peer gone) marks itself failed and gets no more frames; the
encoder keeps feeding the others. `essential` outputs (the local recording) make the whole
recording report an error when they fail.
"""

from __future__ import annotations

import logging

from syncrig_agent.frames import EncodedFrame

log = logging.getLogger(__name__)


class Output:
    essential = False

    def __init__(self) -> None:
        self.recording = False
        self.failed = False
        self.error: str | None = None
        self.frames = 0

    def start(self) -> None:
        self.recording = True

    def deliver(self, frame: EncodedFrame) -> None:
        if not self.recording or self.failed:
            return
        try:
            self.output_frame(frame)
            self.frames += 1
        except Exception as exc:
            self.fail(f"{type(exc).__name__}: {exc}")

    def output_frame(self, frame: EncodedFrame) -> None:
        """Write one frame; raise on failure."""

    def fail(self, reason: str) -> None:
        log.error("%s failed: %s", type(self).__name__, reason)
        self.failed = True
        self.error = reason

    def stop(self) -> None:
        self.recording = False

    def report(self) -> dict:
        """What this output did, for the capture summary."""
        return {
            "kind": type(self).__name__,
            "frames": self.frames,
            "failed": self.failed,
            "error": self.error,
        }
