"""Recording gated by a TTL input: an agent input marked `"record": true` (agent settings `ttl.inputs`)
starts a recording when its line goes high and stops it when it goes low.

The controller sees the inputs in each camera's STATUS (`ttl.inputs`: edge count, last level), so
a change is acted on at the next poll (the poller's interval, 1 s by default): a gate shorter than
that may be missed, and the recording starts on cam0's next T0 after the poll. The edge's exact
time is in the session's `ttl/<cam>.in.csv` when the line changed during a recording (the
falling edge that stops it, typically)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from syncrig_agent.contract.protocol.replies import RigStatus

log = logging.getLogger(__name__)


class TtlRecordTrigger:
    def __init__(
        self, start: Callable[[], object], stop: Callable[[], object], recording: Callable[[], bool]
    ) -> None:
        self.start = start
        self.stop = stop
        self.recording = recording
        self._seen: dict[tuple[str, str], int] = {}

    def observe(self, status: RigStatus | None) -> str | None:
        """Act on the gates' changes since the last status: "start", "stop" or None."""
        if status is None:
            return None
        wanted = None
        for camera, link in status.camera_links().items():
            ttl = (link.status.ttl if link.status is not None else None) or {}
            for name, info in (ttl.get("inputs") or {}).items():
                if not info.get("record"):
                    continue
                edges, before = int(info.get("edges", 0)), self._seen.get((camera, name))
                self._seen[(camera, name)] = edges
                if before is not None and edges != before:
                    wanted = "start" if info.get("level") else "stop"
        if wanted == "start" and not self.recording():
            self._act(self.start, "start")
        elif wanted == "stop" and self.recording():
            self._act(self.stop, "stop")
        return wanted

    @staticmethod
    def _act(action: Callable[[], object], what: str) -> None:
        try:
            action()
            log.info("TTL gate: %s recording", what)
        except Exception as exc:  # noqa: BLE001 - the poller must go on (RigError: busy, ...)
            log.warning("TTL gate: could not %s the recording: %s", what, exc)
