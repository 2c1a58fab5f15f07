"""The agent's recent log lines, kept in memory so the controller can show them (the `logs` request)
without SSH: a bounded ring, so a long-running agent never grows."""

from __future__ import annotations

import json
import logging
from collections import deque

from syncrig_agent.contract.protocol.messages import MAX_LOG_LINES

# The ring keeps exactly as many lines as one `logs` request may ask for.
DEFAULT_CAPACITY = MAX_LOG_LINES
DEFAULT_LOG_LINES = 200
MAX_LINE_CHARS = 1000
# A reply must fit one control message (1 MiB, protocol/framing.py) with room to spare.
MAX_REPLY_BYTES = 768 * 1024


class LogRing(logging.Handler):
    def __init__(self, capacity: int = DEFAULT_CAPACITY, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._lines: deque[str] = deque(maxlen=capacity)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # One entry per line (tracebacks included), so "the last N lines" means what it says.
            for line in self.format(record).splitlines():
                self._lines.append(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…")
        except Exception:
            self.handleError(record)

    def recent(self, lines: int = DEFAULT_LOG_LINES) -> list[str]:
        """The last `lines` lines, oldest first (fewer if they would not fit one reply)."""
        if lines <= 0:
            return []
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            snapshot = list(self._lines)[-lines:]
        size = 0
        for i in range(len(snapshot) - 1, -1, -1):
            size += len(json.dumps(snapshot[i])) + 2
            if size > MAX_REPLY_BYTES:
                return snapshot[i + 1 :]
        return snapshot


_installed: LogRing | None = None


def install(formatter: logging.Formatter | None = None, capacity: int = DEFAULT_CAPACITY) -> LogRing:
    """Attach one ring to the root logger (idempotent) so every record the agent logs is kept."""
    global _installed
    if _installed is None:
        ring = LogRing(capacity)
        if formatter is not None:
            ring.setFormatter(formatter)
        logging.getLogger().addHandler(ring)
        _installed = ring
    return _installed


def recent_lines(lines: int = DEFAULT_LOG_LINES) -> list[str]:
    """Recent lines of this process's ring; empty when none was installed (an agent run in-process)."""
    return _installed.recent(lines) if _installed is not None else []
