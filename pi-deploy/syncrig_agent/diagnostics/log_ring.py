"""The agent's recent log lines, kept in memory so the controller can show them (the `logs` request)
without SSH: a bounded ring, so a long-running agent never grows.

A restarted agent starts its ring with its earlier runs' lines (`earlier_run_lines`): on a Pi from
its unit's journal, in a simulated rig from the file its output goes to. A camera that crashed
shows why, not only what it did since."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
from collections import deque
from pathlib import Path

from syncrig_agent.contract.protocol.messages import MAX_LOG_LINES

# The ring keeps exactly as many lines as one `logs` request may ask for.
DEFAULT_CAPACITY = MAX_LOG_LINES
DEFAULT_LOG_LINES = 200
MAX_LINE_CHARS = 1000
# A reply must fit one control message (1 MiB, protocol/framing.py) with room to spare.
MAX_REPLY_BYTES = 768 * 1024
# Between earlier runs' lines and this run's.
RESTART_MARK = "---- agent started {when}; the lines above are from its earlier runs ----"
# How much of an earlier-log file is read back (its tail): enough for DEFAULT_CAPACITY lines.
EARLIER_LOG_TAIL_BYTES = 512 * 1024
JOURNAL_TIMEOUT_S = 5.0


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

    def seed(self, earlier: list[str]) -> None:
        """Start with lines from before this run (oldest first), then a line that marks the start."""
        if not earlier:
            return
        with self.lock:  # type: ignore[union-attr]  # created by Handler.__init__
            for line in earlier:
                self._lines.append(line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + "…")
            self._lines.append(RESTART_MARK.format(when=time.strftime("%Y-%m-%d %H:%M:%S")))

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


def earlier_run_lines(earlier_log: str | Path | None = None, lines: int = DEFAULT_CAPACITY) -> list[str]:
    """This agent's log lines from before this start, oldest first: the tail of `earlier_log` (the
    file its output is appended to, as a simulated rig does), else, when systemd runs it (a Pi),
    its unit's journal; [] when there is neither or it cannot be read (never a reason not to start)."""
    if earlier_log:
        try:
            with open(earlier_log, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - EARLIER_LOG_TAIL_BYTES))
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        return [line for line in text.splitlines() if line.strip()][-lines:]
    unit = _systemd_unit()
    if unit is None:
        return []
    try:
        out = subprocess.run(
            ["journalctl", "-u", unit, "-n", str(lines), "-o", "short-iso", "--no-pager", "-q"],
            capture_output=True,
            text=True,
            timeout=JOURNAL_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.splitlines()[-lines:] if out.returncode == 0 else []


def _systemd_unit() -> str | None:
    """The systemd service this process runs in (from its cgroup), or None when systemd did not
    start it (INVOCATION_ID is set only for a unit's processes)."""
    if not os.environ.get("INVOCATION_ID"):
        return None
    try:
        cgroups = Path("/proc/self/cgroup").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in cgroups.splitlines():
        name = line.rsplit("/", 1)[-1]
        if name.endswith(".service"):
            return name
    return None


def install(
    formatter: logging.Formatter | None = None,
    capacity: int = DEFAULT_CAPACITY,
    earlier: list[str] | None = None,
) -> LogRing:
    """Attach one ring to the root logger (idempotent) so every record the agent logs is kept;
    `earlier`: lines of the agent's earlier runs to start with (`earlier_run_lines`)."""
    global _installed
    if _installed is None:
        ring = LogRing(capacity)
        ring.seed(earlier or [])
        if formatter is not None:
            ring.setFormatter(formatter)
        logging.getLogger().addHandler(ring)
        _installed = ring
    return _installed


def recent_lines(lines: int = DEFAULT_LOG_LINES) -> list[str]:
    """Recent lines of this process's ring; empty when none was installed (an agent run in-process)."""
    return _installed.recent(lines) if _installed is not None else []
