"""TTL during a recording: the output thread that sends the planned edges on the shared clock, and
the input monitor that stamps edges into the session. Both write through contract/formats/ttl.py
to the paths SessionLayout gives.

The output thread has its own GridWaiter (its own wake) and runs one SCHED_FIFO step below the
capture thread, so when a strobe edge and a frame are due at the same Tn the frame is served first:
TTL never delays capture. What a late edge costs is visible in its row (wall_ns − target_ns)."""

from __future__ import annotations

import logging
import random
import threading
import time
from pathlib import Path
from typing import TextIO

import numpy as np

from syncrig_agent.backends.base import CaptureControl
from syncrig_agent.contract.formats.ttl import (
    TTL_IN_COLUMNS,
    TTL_OUT_COLUMNS,
    format_in_row,
    format_out_row,
    write_header,
)
from syncrig_agent.contract.grid import FrameGrid
from syncrig_agent.contract.ttl import BARCODE, START_MARKER_NS
from syncrig_agent.timing.camera_clock import CameraClock
from syncrig_agent.timing.realtime import enable_realtime
from syncrig_agent.timing.waiter import GridWaiter
from syncrig_agent.ttl.base import TtlLines
from syncrig_agent.ttl.schedule import PlannedEdge, plan_edges

log = logging.getLogger(__name__)

_FLUSH_EVERY = 64  # rows; the file is also flushed at the end


def _open_new(path: Path, columns: tuple[str, ...]) -> TextIO:
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "x", encoding="ascii", newline="")  # never overwrite a recording's table
    write_header(fh, columns)
    return fh


class TtlOutputRun:
    """Sends start/strobe/barcode edges from T0 until the recording ends; one row per edge. It
    follows the capture's own `CaptureControl`: the end index a STOP (or a timed recording) set,
    T_end being the stop instant, and an abort."""

    def __init__(
        self,
        lines: TtlLines,
        clock: CameraClock,
        grid: FrameGrid,
        control: CaptureControl,
        outputs: dict[str, int],
        strobe_width_ns: int,
        path: Path,
        *,
        fifo_priority: int = 49,
        realtime: bool = True,
        spin_ns: int = 0,
        seed: int | None = None,
    ) -> None:
        self.lines = lines
        self.clock = clock
        self.grid = grid
        self.control = control
        self.outputs = dict(outputs)
        self.strobe_width_ns = int(strobe_width_ns)
        self.path = Path(path)
        self.fifo_priority = fifo_priority
        self.realtime = realtime
        self.spin_ns = spin_ns
        self._rng = random.Random(seed)
        self._aborted = False
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._fh: TextIO | None = None
        self.edges = 0
        self._late_ns: list[int] = []
        self.error: str | None = None

    def start(self) -> TtlOutputRun:
        self._fh = _open_new(self.path, TTL_OUT_COLUMNS)
        self._thread = threading.Thread(target=self._run, name="ttl-out", daemon=True)
        self._thread.start()
        return self

    @property
    def stop_ns(self) -> int | None:
        """No pulse or code starts at or after this instant; those started finish."""
        end = self.control.end_index
        return None if end is None else self.grid.target(end)

    def abort(self) -> None:
        self._aborted = True

    @property
    def aborted(self) -> bool:
        return self._aborted or self.control.aborted

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _stopped(self, edge: PlannedEdge) -> bool:
        stop = self.stop_ns
        return stop is not None and edge.unit_ns >= stop

    def _run(self) -> None:
        enable_realtime(self.fifo_priority, want_fifo=self.realtime)
        # The line is set before the thread drops to the base priority: at that priority the encoder
        # (same SCHED_FIFO level) could hold the core for milliseconds between wake and write.
        waiter = GridWaiter(self.clock, self.spin_ns, relax_after_wake=False)
        longest_unit = max(START_MARKER_NS, BARCODE.duration_ns, self.strobe_width_ns)
        try:
            for edge in plan_edges(self.grid, self.outputs, self.strobe_width_ns, self._rng):
                if self.aborted:
                    break
                if self._stopped(edge):
                    if edge.target_ns > self.stop_ns + longest_unit:  # type: ignore[operator]
                        break  # every unit begun before the stop has ended
                    continue
                wake = waiter.wait_until(edge.target_ns, lambda e=edge: self.aborted or self._stopped(e))
                if wake is None:
                    continue
                self._send(edge.role, edge.line, edge.level, edge.target_ns)
                waiter.relax()
        except Exception as exc:
            log.exception("TTL out failed")
            self.error = f"TTL out failed: {exc}"
        finally:
            waiter.close()
            self._finish()

    def _send(self, role: str, line: int, level: int, target_ns: int) -> None:
        wall = self.lines.set(line, level)
        assert self._fh is not None
        self._fh.write(format_out_row(self.edges, role, line, level, target_ns, wall))
        self.edges += 1
        self._late_ns.append(wall - target_ns)
        if self.edges % _FLUSH_EVERY == 0:
            self._fh.flush()

    def _finish(self) -> None:
        try:
            for role, line in self.outputs.items():
                if self.lines.levels.get(line):  # left high by an abort: low now, the row says when
                    self._send(role, line, 0, self.clock.now_ns())
        except Exception as exc:
            log.error("TTL out: could not drive the lines low: %s", exc)
        finally:
            if self._fh is not None:
                self._fh.close()
            self._done.set()

    def report(self) -> dict:
        late = np.asarray(self._late_ns, dtype=np.int64)
        figures = {}
        if late.size:
            figures = {
                "p50_us": float(np.percentile(late, 50)) / 1e3,
                "p99_us": float(np.percentile(late, 99)) / 1e3,
                "max_us": float(late.max()) / 1e3,
            }
        return {"edges": self.edges, "roles": self.outputs, "late": figures, "error": self.error}


class TtlInputMonitor:
    """Reads input edges for the agent's lifetime; while a recording runs they go to its in table."""

    def __init__(self, lines: TtlLines) -> None:
        self.lines = lines
        self.names = {spec.line: spec.name for spec in lines.inputs}
        self.gates = {spec.name for spec in lines.inputs if spec.record}
        self.counts = {name: 0 for name in self.names.values()}
        self.last: dict[str, dict] = {}
        self._lock = threading.Lock()
        self._fh: TextIO | None = None
        self._rows = 0
        self._reads = 0  # reader loop iterations (end() waits for two)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ttl-in", daemon=True)

    def start(self) -> TtlInputMonitor:
        if self.names:
            self._thread.start()
        return self

    def begin(self, path: Path) -> None:
        """Log every edge from now into `path` (a new file)."""
        with self._lock:
            self._fh = _open_new(Path(path), TTL_IN_COLUMNS)
            self._rows = 0

    def end(self) -> dict:
        """Close the in table once the reader has taken what the lines already hold (two reads:
        edges stamped before the stop but not yet read are not lost)."""
        if self._thread.is_alive():
            seen = self._reads
            deadline = time.monotonic() + 1.0
            while self._reads < seen + 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
            return {"edges": self._rows}

    def _run(self) -> None:
        while not self._closed.is_set():
            try:
                edges = self.lines.read_edges(0.05)
                self._reads += 1
            except Exception as exc:
                log.error("TTL in: reading edges failed: %s", exc)
                self._closed.wait(1.0)
                continue
            with self._lock:
                for edge in edges:
                    name = self.names.get(edge.line, f"in{edge.line}")
                    self.counts[name] = self.counts.get(name, 0) + 1
                    self.last[name] = {"level": edge.level, "wall_ns": edge.wall_ns}
                    if self._fh is not None:
                        self._fh.write(format_in_row(self._rows, name, edge.line, edge.level, edge.wall_ns))
                        self._rows += 1
                if edges and self._fh is not None:
                    self._fh.flush()

    def status(self) -> dict:
        """Per input: edges seen since the agent started, the last level and its time, and whether
        it is a recording gate (STATUS `ttl.inputs`)."""
        with self._lock:
            return {
                name: {"edges": self.counts[name], "record": name in self.gates, **self.last.get(name, {})}
                for name in self.counts
            }

    def close(self) -> None:
        self.end()
        self._closed.set()
