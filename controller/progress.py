"""Progress reporting: the callback type every long job takes, and a terminal progress bar with no
dependencies (long jobs show progress, on a TTY or in a log)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

# progress(fraction done 0..1, label of the current step): what every pipeline, dataset, transfer
# and deploy job reports, and what the job runner and the CLI's bars consume.
Progress = Callable[[float, str], None]

# progress(items done, items total): for work counted in items whose total is known up front
# (board detection counts frames); the caller turns it into a fraction with its own label.
CountProgress = Callable[[int, int], None]


class ProgressBar:
    def __init__(self, label: str, total: float, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.total = total
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self._last_pct = -1

    def update(self, done: float) -> None:
        frac = 0.0 if self.total <= 0 else min(1.0, max(0.0, done / self.total))
        now = time.monotonic()
        pct = int(frac * 100)
        if self._tty:
            if now - self._last_draw < 0.1 and frac < 1.0:
                return
            filled = int(frac * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r{self.label} [{bar}] {pct:3d}% {now - self.started:5.1f}s")
            self.stream.flush()
        elif pct // 10 != self._last_pct // 10:
            # Not a terminal (CI log): one line every 10 %.
            self.stream.write(f"{self.label}: {pct}% ({now - self.started:.1f}s)\n")
        self._last_pct = pct
        self._last_draw = now

    def close(self) -> None:
        self.update(self.total)
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
