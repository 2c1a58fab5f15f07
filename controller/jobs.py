"""Long work (recording, pre-flight, pull, sync, trim, ...) runs as jobs on worker threads, never in
a request handler. Each job has progress, a log of its own and a result; every change is
published on the event bus so pages update live."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from controller.events import EventBus

log = logging.getLogger(__name__)

JOB_LOG_LINES = 500
# Progress events are rate-limited per job; state changes always go out at once.
PROGRESS_EVENT_INTERVAL_S = 0.2
# How a job answers Cancel. Most stop at their next progress report (JobCancelled). A recording's
# own loop turns Cancel into Stop: its footage is collected, never dropped. These never stop
# half-way: a deploy or a settings restart would leave the rig half-changed, a delete half-done.
HANDLES_CANCEL_ITSELF = frozenset({"record"})
NOT_CANCELLABLE = frozenset({"deploy", "settings", "delete", "logs"})


class JobCancelled(BaseException):
    """Raised inside a job's function by `JobContext.check_cancelled` after a cancel request. A
    BaseException (as asyncio's CancelledError): code that reports one item's failure and goes on
    (`except Exception`, e.g. one camera of a pull) must not swallow the user's Cancel."""


@dataclass
class Job:
    id: str
    kind: str
    title: str
    state: str = "queued"  # queued → running → done | failed | cancelled
    progress: float = 0.0
    message: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    result: Any = None
    error: str | None = None
    log: deque[str] = field(default_factory=lambda: deque(maxlen=JOB_LOG_LINES))
    cancel_requested: bool = False

    @property
    def active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def cancellable(self) -> bool:
        return self.active and self.kind not in NOT_CANCELLABLE

    def add_log(self, text: str) -> None:
        """Every line of the job's log starts with the wall-clock time it was written."""
        stamp = time.strftime("%H:%M:%S")
        for line in text.rstrip("\n").splitlines() or [""]:
            self.log.append(f"{stamp} {line}")

    def to_dict(self, with_log: bool = False) -> dict:
        data = {
            "id": self.id,
            "kind": self.kind,
            "title": self.title,
            "state": self.state,
            "progress": round(self.progress, 4),
            "message": self.message,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "result": self.result,
            "error": self.error,
            "cancel_requested": self.cancel_requested,
            "cancellable": self.cancellable,
        }
        if with_log:
            data["log"] = list(self.log)
        return data


class JobContext:
    """What a job's function gets: report progress, write to the job's log, honour cancel."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        self._runner = runner
        self.job = job

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress; after a Cancel this is where a job stops (unless it handles it)."""
        self.job.progress = min(1.0, max(0.0, float(fraction)))
        if message is not None:
            self.job.message = message
        self._runner._changed(self.job, rate_limited=True)
        if self.job.kind not in HANDLES_CANCEL_ITSELF and self.job.cancellable:
            self.check_cancelled()

    def log(self, line: str) -> None:
        self.job.add_log(line)
        log.info("job %s: %s", self.job.id, line)
        self._runner._changed(self.job, rate_limited=True)

    @property
    def cancelled(self) -> bool:
        return self.job.cancel_requested

    def check_cancelled(self) -> None:
        if self.job.cancel_requested:
            raise JobCancelled("cancelled by the user")


class JobRunner:
    def __init__(self, bus: EventBus | None = None, workers: int = 4, history: int = 200) -> None:
        self.bus = bus
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._history = history
        self._last_event: dict[str, float] = {}
        self._prefix = time.strftime("%H%M%S")

    def submit(self, kind: str, title: str, fn: Callable[[JobContext], Any]) -> Job:
        job = Job(id=f"{self._prefix}-{next(self._ids)}", kind=kind, title=title)
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > self._history:
                oldest = next(iter(self._jobs.values()))
                if oldest.active:
                    break
                self._jobs.popitem(last=False)
        self._changed(job)
        self._pool.submit(self._run, job, fn)
        return job

    def _run(self, job: Job, fn: Callable[[JobContext], Any]) -> None:
        ctx = JobContext(self, job)
        if job.cancel_requested:  # cancelled while it waited for a worker: it never runs
            job.state, job.error, job.started = "cancelled", "cancelled by the user", time.time()
            job.finished = job.started
            job.add_log("cancelled before it started")
            self._changed(job)
            return
        job.state = "running"
        job.started = time.time()
        job.add_log(f"started: {job.title}")
        self._changed(job)
        try:
            job.result = fn(ctx)
            job.state = "done"
            job.progress = 1.0
        except JobCancelled as exc:
            job.state = "cancelled"
            job.error = str(exc)
        except Exception as exc:  # a job's failure is reported on its page, never lost
            job.state = "failed"
            job.error = str(exc) or type(exc).__name__
            job.add_log(traceback.format_exc(limit=8))
            log.warning("job %s (%s) failed: %s", job.id, job.title, job.error)
        finally:
            job.finished = time.time()
            outcome = f": {job.error}" if job.error else ""
            job.add_log(f"{job.state} after {job.finished - job.started:.1f} s{outcome}")
            self._changed(job)

    def _changed(self, job: Job, rate_limited: bool = False) -> None:
        if self.bus is None:
            return
        now = time.monotonic()
        if rate_limited and now - self._last_event.get(job.id, 0.0) < PROGRESS_EVENT_INTERVAL_S:
            return
        if job.active:
            self._last_event[job.id] = now
        else:
            self._last_event.pop(job.id, None)  # its last event: nothing left to rate-limit
        self.bus.publish("job", job.to_dict())

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def list(self, kind: str | None = None) -> list[Job]:
        with self._lock:
            jobs = list(self._jobs.values())
        return [j for j in reversed(jobs) if kind is None or j.kind == kind]

    def active(self, kind: str) -> Job | None:
        return next((j for j in self.list(kind) if j.active), None)

    def cancel(self, job_id: str) -> bool:
        """Ask a job to stop; False when it is not running or cannot stop half-way."""
        job = self.get(job_id)
        if job is None or not job.cancellable:
            return False
        job.cancel_requested = True
        job.add_log("cancel requested by the user")
        self._changed(job)
        return True

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """For tests and the CLI: block until the job has finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(job_id)
            if job is None:
                raise KeyError(job_id)
            if not job.active:
                return job
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} ({job.title}) still {job.state} after {timeout} s")
            time.sleep(0.05)

    def shutdown(self, wait: bool = True) -> None:
        for job in self.list():
            job.cancel_requested = True
        self._pool.shutdown(wait=wait, cancel_futures=True)
