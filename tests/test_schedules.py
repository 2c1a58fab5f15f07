"""Recording schedules: every planned run becomes a numbered session, across a controller killed in
the middle of a run and started again; the disk guard skips a run and says why; bad fields are
named. The controllers are real processes driven through the Python client
(controller/web/client.py)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller.runtime import ControllerRuntime
from controller.web import create_app
from controller.web.client import ApiError, SyncRigClient
from syncrig_agent.contract.formats import read_manifest

from web_support import ServerThread, all_online, app_client, controller_for

REPO = Path(__file__).resolve().parent.parent
EVERY_S = 6.0
DURATION_S = 2.0
RUNS = 3
FPS = 20.0


def wait_until(predicate, timeout: float, what: str, show=None):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {timeout} s waiting for {what}" + (f"; last: {show()}" if show else "")
    )


def start_controller(config: Path, log: Path) -> tuple[subprocess.Popen, SyncRigClient]:
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "controller", "--config", str(config), "--port", "0"],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def url() -> str | None:
        if proc.poll() is not None:
            raise AssertionError(f"controller exited {proc.returncode}:\n{log.read_text()}")
        found = re.search(r"SyncRig controller: (http://\S+)", log.read_text(errors="replace"))
        return found.group(1) if found else None

    return proc, SyncRigClient(wait_until(url, 30, "the controller to serve"))


def sessions(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def test_a_schedule_spanning_a_restart_records_every_planned_run(make_rig, tmp_path: Path) -> None:
    rig = make_rig(2)
    config = tmp_path / "rig.json"
    rig.write_rig_config(config, fps=FPS)
    first, api = start_controller(config, tmp_path / "ctl1.log")
    try:
        wait_until(lambda: all_online(api.status()), 30, "the cameras online")
        start = time.time() + 0.5
        schedule = api.create_schedule(
            name="overnight",
            every_s=EVERY_S,
            duration_s=DURATION_S,
            start_at=start,
            until=start + (RUNS - 1) * EVERY_S,
            subject="m5",
            project="sleep",
        )
        assert schedule["planned_runs"] == RUNS and schedule["next_due"] == start
        wait_until(lambda: api.status()["recording"]["state"] == "recording", 20, "the first run to record")
    finally:
        first.send_signal(signal.SIGKILL)  # mid-run, no cleanup of any kind
        first.wait(10)
    second, api = start_controller(config, tmp_path / "ctl2.log")
    try:

        def finished() -> dict | None:
            (s,) = api.schedules()
            return s if s["next_due"] is None and all(r["state"] != "started" for r in s["runs"]) else None

        done = wait_until(finished, 40, "every run to finish")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    runs = done["runs"]
    assert [(r["index"], r["state"]) for r in runs] == [(i, "done") for i in range(RUNS)], runs
    made = sessions(rig.workdir / "sessions")
    assert [p.name for p in made] == [r["session_id"] for r in runs]
    numbers = [int(re.match(r"\d{8}-\d{6}-(\d+)_", p.name).group(1)) for p in made]
    assert numbers == list(range(numbers[0], numbers[0] + RUNS))
    for path, run in zip(made, runs, strict=True):
        manifest = read_manifest(path)
        assert (manifest.subject, manifest.project) == ("m5", "sleep")
        # Each run started (its recording job) inside its own window, and recorded after it was due
        # (T0 follows the pre-flight, which takes seconds on a loaded machine).
        assert run["due"] <= run["at"] < run["due"] + EVERY_S, run
        assert manifest.t0_ns / 1e9 > run["due"], (run, manifest.t0_ns)
        for cam in manifest.cameras:
            assert cam["expected_frames"] == DURATION_S * FPS
            assert cam["frames"] + cam["dropped"] == cam["expected_frames"]
    assert any("re-attached" in note for note in read_manifest(made[0]).notes)


def test_disk_guard_skips_and_fields_are_named(make_rig, tmp_path: Path) -> None:
    rig = make_rig(1)
    runtime = controller_for(rig, tmp_path, fps=FPS)
    try:
        api = app_client(runtime)
        guard = api.post(
            "/api/schedules", {"every_s": 30, "duration_s": 1, "min_free_gb": 1e9, "name": "guarded"}
        )
        assert guard.status_code == 201, guard.get_json()
        skipped = wait_until(
            lambda: (runs := api.get_json("/api/schedules")["schedules"][0]["runs"]) and runs[0],
            10,
            "the run",
        )
        assert skipped["state"] == "skipped" and skipped["index"] == 0
        assert "disk guard" in skipped["reason"] and "GB free" in skipped["reason"]
        assert sessions(rig.workdir / "sessions") == []
        bad = api.post("/api/schedules", {"every_s": 10, "duration_s": 10})
        assert bad.status_code == 400 and bad.get_json()["field"] == "duration_s"
        bad = api.post("/api/schedules", {"every_s": "often", "duration_s": 1})
        assert bad.status_code == 400 and bad.get_json()["field"] == "every_s"
        bad = api.post("/api/schedules", {"every_s": 10, "duration_s": 1, "subject": "a/b"})
        assert bad.status_code == 400 and bad.get_json()["field"] == "subject"
        sid = guard.get_json()["id"]
        edited = api.client.put(
            f"/api/schedules/{sid}",
            json={"enabled": False, "min_free_gb": 0},
            headers={"X-CSRF-Token": api.csrf},
        )
        assert edited.status_code == 200 and edited.get_json()["enabled"] is False
        assert edited.get_json()["name"] == "guarded" and edited.get_json()["runs"][0]["state"] == "skipped"
        assert edited.get_json()["next_due"] is None
        server = ServerThread(create_app(runtime))
        try:  # the Python client turns a refusal into ApiError with the field
            with pytest.raises(ApiError) as err:
                SyncRigClient(server.url).create_schedule(every_s=5, duration_s=9)
            assert err.value.status == 400 and err.value.field == "duration_s"
        finally:
            server.close()
        missing = api.client.delete("/api/schedules/nope", headers={"X-CSRF-Token": api.csrf})
        assert missing.status_code == 404
        gone = api.client.delete(f"/api/schedules/{sid}", headers={"X-CSRF-Token": api.csrf})
        assert gone.status_code == 200 and api.get_json("/api/schedules")["schedules"] == []
    finally:
        runtime.close()


def test_an_unreadable_schedules_file_is_named_not_overwritten(tmp_path: Path) -> None:
    from controller.events import EventBus
    from controller.jobs import JobRunner
    from controller.rig.schedule import ScheduleError, Scheduler

    path = tmp_path / "schedules.json"
    path.write_text("{not json")
    with pytest.raises(ScheduleError, match=re.escape(str(path))):
        Scheduler(path, lambda: None, JobRunner(), EventBus(), tmp_path)
    assert path.read_text() == "{not json"


def test_runs_due_while_the_controller_was_down_are_missed_not_replayed(make_rig, tmp_path: Path) -> None:
    rig = make_rig(1)
    first = controller_for(rig, tmp_path, fps=FPS)
    start = time.time() + 1.0
    try:
        # The disk guard skips the run that does come due, so no recording is needed to see it.
        created = app_client(first).post(
            "/api/schedules",
            {"every_s": 1, "duration_s": 0.5, "start_at": start, "until": start + 2, "min_free_gb": 1e9},
        )
        assert created.status_code == 201, created.get_json()
    finally:
        first.close()
    time.sleep(max(0.0, start + 2.2 - time.time()))  # down through the windows of runs 0 and 1
    second = ControllerRuntime(tmp_path / "rig.json", poll_interval_s=0.25).start()
    try:
        api = app_client(second)
        (schedule,) = wait_until(
            lambda: [s for s in api.get_json("/api/schedules")["schedules"] if len(s["runs"]) == 3],
            10,
            "the third run",
        )
    finally:
        second.close()
    states = [(r["index"], r["state"]) for r in schedule["runs"]]
    assert states == [(0, "missed"), (1, "missed"), (2, "skipped")], schedule["runs"]
    assert "controller was not running" in schedule["runs"][0]["reason"]
    assert schedule["runs"][2]["at"] >= schedule["runs"][2]["due"] == start + 2
    assert schedule["next_due"] is None  # the last planned run is past: nothing replayed


def test_a_run_refused_by_the_preflight_is_retried_within_its_window(make_rig, tmp_path: Path) -> None:
    rig = make_rig(2)
    runtime = controller_for(rig, tmp_path, fps=FPS)
    try:
        api = app_client(runtime)
        api.wait_status(all_online)
        rig.terminate("cam1")  # the pre-flight refuses a rig with a camera missing
        api.wait_status(lambda s: not s["cameras"][1]["online"])
        start = time.time()
        created = api.post(
            "/api/schedules", {"every_s": 20, "duration_s": 1, "start_at": start, "until": start}
        )
        assert created.status_code == 201, created.get_json()

        def run() -> dict | None:
            runs = api.get_json("/api/schedules")["schedules"][0]["runs"]
            return runs[0] if runs else None

        retrying = wait_until(
            lambda: (r := run()) and r["state"] == "retrying" and r, 20, "a refused run", run
        )
        assert "pre-flight failed" in retrying["reason"] and "cam1" in retrying["reason"]
        rig.spawn(rig.cameras[1], "client")
        rig.wait_connected(20)
        done = wait_until(
            lambda: (r := run()) and r["state"] in ("done", "failed") and r, 30, "the retried run"
        )
    finally:
        runtime.close()
    assert done["state"] == "done" and done["attempts"] >= 2, done
    assert done["at"] < done["due"] + 20
    (session,) = sessions(rig.workdir / "sessions")
    assert session.name == done["session_id"]
