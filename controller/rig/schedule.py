"""Recording schedules kept by the controller: "every N minutes/hours, record D seconds, until a
time", each run the UI's Record (`RigService.start_recording`: pre-flight, START, streams, pull), so
each scheduled session is numbered like any other.

Run k of a schedule is due at `start_at + k·every_s` (runs due after `until` are not planned). It
starts at its due time, or later if the rig is busy or the controller was not running, but only
while it is still the current run (before run k+1 is due): a run that could not start inside its
window is recorded as `missed` with the reason, never replayed later, so a controller that comes
back after a long outage neither records a burst of catch-up sessions nor overlaps the next run. A
run that was recording when the controller stopped is re-attached by the rig service (its session
completes normally) and the schedule carries on with the following runs.

A run whose recording failed before its session began (a pre-flight refusal, such as a camera still
closing the previous session's files) is `retrying`: started again every `RETRY_S` while its
window lasts, then `failed` with the last reason.

Disk guard: when the sessions root has less than `min_free_gb` free at a run's due time, the run is
`skipped` with the free space and the threshold named (the job log, the schedule's history, the
server log); the next run checks again.

Schedules and their history live in `<sessions root>/.syncrig/schedules.json` (written
atomically), so they survive a restart of the controller."""

from __future__ import annotations

import json
import logging
import math
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from controller.events import EventBus
from controller.jobs import JobRunner
from controller.rig.service import MAX_RECORDING_S, RigError, RigService
from controller.rig.state import RecordingState
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.ids import InvalidName, validate_subject_id
from syncrig_agent.contract.layout import SessionLayout

log = logging.getLogger(__name__)

SCHEDULES_FILE = "schedules.json"
TICK_S = 0.25
MIN_EVERY_S = 1.0
HISTORY_RUNS = 100  # the latest runs kept per schedule
# What a run became (its history entry's `state`).
RUN_STATES = ("started", "retrying", "done", "failed", "skipped", "missed", "unknown")
RETRY_S = 2.0  # a run that failed before its session began is tried again this much later
GB = 1e9


class ScheduleError(ValueError):
    """A schedule field that cannot be used; `field` names it (the page marks it)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ScheduleNotFound(KeyError):
    pass


@dataclass
class Schedule:
    id: str
    every_s: float
    duration_s: float
    start_at: float  # Unix seconds: run 0 is due then
    until: float | None = None  # Unix seconds: no run is due after it (None: until removed)
    name: str = ""
    subject: str | None = None
    project: str | None = None
    min_free_gb: float = 0.0  # disk guard on the desktop's sessions root
    override_preflight: bool = False
    enabled: bool = True
    next_run: int = 0  # the first run not yet started, skipped or missed
    runs: list[dict] = field(default_factory=list)  # newest last: index, due, state, session_id, reason

    def due(self, index: int) -> float:
        return self.start_at + index * self.every_s

    def planned(self, index: int) -> bool:
        return self.until is None or self.due(index) <= self.until

    def current_run(self, now: float) -> int | None:
        """The run whose window [due, next due) holds `now`, if it is planned."""
        if now < self.start_at:
            return None
        index = math.floor((now - self.start_at) / self.every_s)
        return index if self.planned(index) else None

    def planned_runs(self) -> int | None:
        """How many runs the schedule plans in all (None: no end)."""
        if self.until is None:
            return None
        return max(0, math.floor((self.until - self.start_at) / self.every_s) + 1)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["planned_runs"] = self.planned_runs()
        upcoming = self.next_run
        data["next_due"] = self.due(upcoming) if self.enabled and self.planned(upcoming) else None
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Schedule:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# The fields a user sets (the rest is the schedule's own bookkeeping).
EDITABLE = (
    "name",
    "every_s",
    "duration_s",
    "start_at",
    "until",
    "subject",
    "project",
    "min_free_gb",
    "override_preflight",
    "enabled",
)


def _number(data: dict, name: str, required: bool = False) -> float | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise ScheduleError(f"{name}: required", name)
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ScheduleError(f"{name}: must be a number, got {value!r}", name)
    try:
        number = float(value)
    except ValueError:
        raise ScheduleError(f"{name}: must be a number, got {value!r}", name) from None
    if not math.isfinite(number):
        raise ScheduleError(f"{name}: must be a finite number", name)
    return number


def _checked_fields(data: dict, now: float) -> dict:
    """The editable fields of `data`, validated; the error names the field and what it must be."""
    if not isinstance(data, dict):
        raise ScheduleError("a schedule must be a JSON object")
    every = _number(data, "every_s", required=True)
    duration = _number(data, "duration_s", required=True)
    if every < MIN_EVERY_S:
        raise ScheduleError(f"every_s: must be at least {MIN_EVERY_S:g} s, got {every:g}", "every_s")
    if not 0 < duration <= MAX_RECORDING_S:
        raise ScheduleError(
            f"duration_s: must be in (0, {MAX_RECORDING_S:g}], got {duration:g}", "duration_s"
        )
    if duration >= every:
        raise ScheduleError(
            f"duration_s: must be shorter than the interval ({every:g} s), got {duration:g}: "
            "a run would still record when the next is due",
            "duration_s",
        )
    start_at = _number(data, "start_at")
    start_at = now if start_at is None else start_at
    until = _number(data, "until")
    if until is not None and until < start_at:
        raise ScheduleError("until: must not be before start_at", "until")
    min_free_gb = _number(data, "min_free_gb") or 0.0
    if min_free_gb < 0:
        raise ScheduleError(f"min_free_gb: must be 0 or more, got {min_free_gb:g}", "min_free_gb")
    checked: dict = {
        "every_s": every,
        "duration_s": duration,
        "start_at": start_at,
        "until": until,
        "min_free_gb": min_free_gb,
    }
    for name in ("subject", "project"):
        value = data.get(name)
        if value is None or value == "":
            checked[name] = None
            continue
        if not isinstance(value, str):
            raise ScheduleError(f"{name}: must be text", name)
        try:
            checked[name] = validate_subject_id(value, f"{name} ID")
        except InvalidName as exc:
            raise ScheduleError(str(exc), name) from None
    name = data.get("name", "")
    if not isinstance(name, str) or len(name) > 100:
        raise ScheduleError("name: must be text of at most 100 characters", "name")
    checked["name"] = name
    for flag, default in (("override_preflight", False), ("enabled", True)):
        value = data.get(flag, default)
        if not isinstance(value, bool):
            raise ScheduleError(f"{flag}: must be true or false", flag)
        checked[flag] = value
    return checked


class Scheduler:
    """Keeps the schedules, starts their runs on a thread and records what each run became."""

    def __init__(
        self,
        path: Path,
        rig: Callable[[], RigService],
        jobs: JobRunner,
        bus: EventBus,
        sessions_root: Path,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.rig = rig
        self.jobs = jobs
        self.bus = bus
        self.sessions_root = Path(sessions_root)
        self.clock = clock
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.schedules: dict[str, Schedule] = self._load()
        # Job ids are only meaningful to the runner that issued them (a restarted controller may
        # issue the same id again): runs remember which scheduler started them.
        self.runner = secrets.token_hex(4)
        self._busy: set[tuple[str, int]] = set()  # (schedule, run) found the rig busy in its window

    # -- persistence -------------------------------------------------------------------------
    def _load(self) -> dict[str, Schedule]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {s["id"]: Schedule.from_dict(s) for s in data["schedules"]}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Never overwrite what cannot be read: the schedules stay off until someone looks.
            raise ScheduleError(f"{self.path}: cannot read the schedules: {exc}") from None

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.path, {"schedules": [asdict(s) for s in self.schedules.values()]})

    def _changed(self) -> None:
        self._save()
        self.bus.publish("schedules", {"schedules": self.list()})

    # -- what the UI and the API do --------------------------------------------------------
    def list(self) -> list[dict]:
        with self._lock:
            return [s.to_dict() for s in self.schedules.values()]

    def get(self, schedule_id: str) -> Schedule:
        with self._lock:
            try:
                return self.schedules[schedule_id]
            except KeyError:
                raise ScheduleNotFound(f"no schedule {schedule_id!r}") from None

    def create(self, data: dict) -> dict:
        now = self.clock()
        checked = _checked_fields(data, now)
        schedule = Schedule(id=secrets.token_hex(4), **checked)
        # A first run whose window is still open (start_at a moment ago: "now" in a form) starts now.
        current = schedule.current_run(now)
        schedule.next_run = current if current is not None else _first_run_not_before(schedule, now)
        with self._lock:
            self.schedules[schedule.id] = schedule
            self._changed()
        log.info(
            "schedule %s created: every %g s for %g s", schedule.id, schedule.every_s, schedule.duration_s
        )
        return schedule.to_dict()

    def update(self, schedule_id: str, data: dict) -> dict:
        """Replace the editable fields; the history stays, and the next run is the first one due
        from now on (runs of the old timing are not marked missed)."""
        now = self.clock()
        with self._lock:
            schedule = self.get(schedule_id)
            merged = {name: getattr(schedule, name) for name in EDITABLE} | dict(data)
            for name, value in _checked_fields(merged, now).items():
                setattr(schedule, name, value)
            schedule.next_run = _first_run_not_before(schedule, now)
            for entry in schedule.runs:  # a retry belongs to the old timing's run
                if entry["state"] == "retrying":
                    entry.update(state="failed", reason=entry["reason"] + " (the schedule was edited)")
            self._changed()
            return schedule.to_dict()

    def delete(self, schedule_id: str) -> None:
        """Forget a schedule (a run it started keeps recording: Stop ends it)."""
        with self._lock:
            self.get(schedule_id)
            del self.schedules[schedule_id]
            self._changed()

    # -- running -----------------------------------------------------------------------------
    def start(self) -> Scheduler:
        self._thread = threading.Thread(target=self._loop, name="scheduler", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _loop(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:  # one bad tick must not end the schedules
                log.exception("scheduler tick failed")

    def tick(self) -> None:
        now = self.clock()
        with self._lock:
            changed = False
            for schedule in self.schedules.values():
                changed |= self._follow_runs(schedule)
                if schedule.enabled:
                    changed |= self._start_due_run(schedule, now)
            if changed:
                self._changed()

    def _record(self, schedule: Schedule, index: int, state: str, **extra: object) -> dict:
        entry = {"index": index, "due": schedule.due(index), "state": state, "at": self.clock(), **extra}
        schedule.runs.append(entry)
        del schedule.runs[:-HISTORY_RUNS]
        if state in ("skipped", "missed", "failed"):
            log.warning("schedule %s run %d %s: %s", schedule.id, index, state, extra.get("reason"))
        return entry

    def _start_due_run(self, schedule: Schedule, now: float) -> bool:
        current = schedule.current_run(now)
        changed = self._close_retries(schedule, now)
        last_planned = schedule.planned_runs()
        # Runs whose window has passed without a start: missed, never replayed.
        end = current if current is not None else _first_run_not_before(schedule, now)
        if last_planned is not None:
            end = min(end, last_planned)
        if schedule.next_run < end:
            total = f"; {end - schedule.next_run} runs missed in all" if end - schedule.next_run > 1 else ""
            for index in range(max(schedule.next_run, end - HISTORY_RUNS), end):
                if (schedule.id, index) in self._busy:
                    reason = "the rig was busy (another recording) until the next run was due"
                else:
                    reason = "the controller was not running while it was due"
                self._busy.discard((schedule.id, index))
                self._record(schedule, index, "missed", reason=reason + total)
            schedule.next_run = end
            changed = True
        if current is None:
            return changed
        retry = next((r for r in schedule.runs if r["index"] == current and r["state"] == "retrying"), None)
        if current < schedule.next_run and (retry is None or now < retry["retry_at"]):
            return changed
        rig = self.rig()
        if rig.active is not None or rig.recording_state != RecordingState.IDLE:
            self._busy.add((schedule.id, current))
            return changed  # busy: try again next tick, while the window lasts
        free = _free_bytes(self.sessions_root)
        entry = retry or self._record(schedule, current, "starting")
        entry["at"] = now
        if free is not None and free < schedule.min_free_gb * GB:
            entry["state"] = "skipped"
            entry["reason"] = (
                f"disk guard: {free / GB:.2f} GB free on {self.sessions_root}, below the schedule's "
                f"{schedule.min_free_gb:g} GB"
            )
            log.warning("schedule %s run %d skipped: %s", schedule.id, current, entry["reason"])
        else:
            try:
                job_id = rig.start_recording(
                    schedule.subject, schedule.project, schedule.duration_s, schedule.override_preflight
                )
            except RigError as exc:
                self._failed_to_start(schedule, entry, str(exc), now)
            else:
                entry.update(state="started", job_id=job_id, runner=self.runner, session_id=None)
                entry["attempts"] = entry.get("attempts", 0) + 1
        self._busy.discard((schedule.id, current))
        schedule.next_run = max(schedule.next_run, current + 1)
        return True

    def _failed_to_start(self, schedule: Schedule, entry: dict, reason: str, now: float) -> None:
        """Retry while the run's window lasts; then it has failed."""
        entry["reason"] = reason
        if now + RETRY_S < entry["due"] + schedule.every_s:
            entry.update(state="retrying", retry_at=now + RETRY_S)
            log.info("schedule %s run %d will be retried: %s", schedule.id, entry["index"], reason)
        else:
            entry["state"] = "failed"
            log.warning("schedule %s run %d failed: %s", schedule.id, entry["index"], reason)

    def _close_retries(self, schedule: Schedule, now: float) -> bool:
        changed = False
        for entry in schedule.runs:
            if entry["state"] == "retrying" and now >= entry["due"] + schedule.every_s:
                entry["state"] = "failed"
                changed = True
        return changed

    def _follow_runs(self, schedule: Schedule) -> bool:
        """Fill in what started runs became: their session id, then done or failed."""
        changed = False
        rig = self.rig()
        for entry in schedule.runs:
            if entry["state"] != "started":
                continue
            active = rig.active
            ours = entry.get("runner") == self.runner and entry.get("job_id")
            job = self.jobs.get(entry["job_id"]) if ours else None
            if (
                job is None
                and active is not None
                and entry.get("session_id") in (None, active.session_id)
                and rig.record_job_id
            ):
                # A controller restart: the rig service re-attached this run under a new job.
                entry.update(job_id=rig.record_job_id, runner=self.runner)
                job = self.jobs.get(rig.record_job_id)
                changed = True
            if (
                active is not None
                and entry.get("session_id") is None
                and rig.record_job_id == entry.get("job_id")
            ):
                entry["session_id"] = active.session_id
                changed = True
            if job is None:
                if active is None:
                    session = entry.get("session_id")
                    if session and SessionLayout(self.sessions_root / session).manifest.is_file():
                        entry["state"] = "done"
                    else:
                        entry["state"] = "unknown"
                        entry["reason"] = "the controller stopped before this run's outcome was known"
                    changed = True
                continue
            if job.state == "done":
                entry["state"] = "done"
                entry["session_id"] = (job.result or {}).get("session_id", entry.get("session_id"))
                changed = True
            elif not job.active:
                reason = job.error or job.state
                if entry.get("session_id") is None:  # its session never began: worth another try
                    self._failed_to_start(schedule, entry, reason, self.clock())
                else:
                    entry.update(state="failed", reason=reason)
                changed = True
        return changed


def _first_run_not_before(schedule: Schedule, now: float) -> int:
    if now <= schedule.start_at:
        return 0
    return math.ceil((now - schedule.start_at) / schedule.every_s)


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None
