"""The agent's clock-state refresher: a background thread reads the clock state every few seconds,
so STATUS only copies the latest reading and never waits on pmc/chronyc/journalctl (each can take
up to their timeout when a daemon hangs)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from syncrig_agent.clock_state.base import ClockState, unknown

log = logging.getLogger(__name__)

DEFAULT_REFRESH_S = 3.0


class ClockMonitor:
    def __init__(self, read: Callable[[], ClockState], refresh_s: float = DEFAULT_REFRESH_S) -> None:
        self._read = read
        self.refresh_s = refresh_s
        self._latest: ClockState | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_state: str | None = None

    def start(self) -> ClockMonitor:
        self._thread = threading.Thread(target=self._loop, name="clock-state", daemon=True)
        self._thread.start()
        return self

    def read_once(self) -> ClockState:
        try:
            state = self._read()
        except Exception as exc:  # a reader bug must not take STATUS down with it
            log.exception("clock state reader failed")
            state = unknown("unknown", f"clock state reader failed: {exc!r}")
        with self._lock:
            self._latest = state
        if state.state != self._last_state:
            log.info("clock: %s (%s) %s", state.state, state.source, state.detail)
            self._last_state = state.state
        return state

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.read_once()
            self._stop.wait(self.refresh_s)

    def snapshot(self) -> dict:
        """The latest reading as STATUS's `clock_sync` (with its age), never blocking on a reader."""
        with self._lock:
            latest = self._latest
        if latest is None:
            return {**unknown("unknown", "clock state not read yet").to_dict(), "age_s": None}
        return {**latest.to_dict(), "age_s": round(max(0.0, time.time() - latest.read_at), 2)}

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
