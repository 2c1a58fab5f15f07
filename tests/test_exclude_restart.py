"""Record with the cameras that are there: cameras left out by name (CLI, HTTP API) are recorded in
the manifest; "record anyway" records without an offline camera; one camera's agent is restarted
from the API (the simulated rig restarts its process; a Pi's goes through deploy's sudoers rule)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from test_record_cli import run_record

from controller.deploy.plan import DeployOptions
from controller.deploy.render import sudoers_commands
from controller.rig.restart import restart_argv
from syncrig_agent.contract.formats import read_manifest

from web_support import all_online, app_client, controller_for


def test_cli_refuses_an_unknown_camera_before_starting_the_rig(tmp_path: Path) -> None:
    bad = run_record(tmp_path, "--exclude", "cam9")
    assert bad.returncode == 2
    assert "exclude: no camera named cam9 in the rig (cameras: cam0, cam1, cam2)" in bad.stderr


@pytest.mark.slow
def test_cli_exclude_leaves_the_camera_out_and_says_so(tmp_path: Path) -> None:
    result = run_record(tmp_path, "--exclude", "cam2")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "cam2: not recorded: excluded by the user (--exclude)" in result.stdout
    (session,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    manifest = read_manifest(session)
    assert manifest.camera_names == ["cam0", "cam1"]
    assert manifest.excluded == {"cam2": "excluded by the user (--exclude)"}


def test_api_exclude_record_anyway_and_restart(make_rig, tmp_path: Path) -> None:
    rig = make_rig(3)
    rt = controller_for(rig, tmp_path / "ctl")
    try:
        _exclude_record_anyway_and_restart(rig, rt, app_client(rt))
    finally:
        rt.close()


def _exclude_record_anyway_and_restart(rig, rt, api) -> None:  # noqa: ANN001
    api.wait_status(all_online)
    bad = api.post("/api/recording/start", {"seconds": 1, "exclude": "cam2"})
    assert bad.status_code == 400 and bad.get_json()["field"] == "exclude"
    bad = api.post("/api/recording/start", {"seconds": 1, "exclude": ["cam7"]})
    assert bad.status_code == 400 and "no camera named cam7" in bad.get_json()["error"]

    def record(body: dict) -> dict:
        return api.wait_job(api.post("/api/recording/start", {"seconds": 1, **body}).get_json()["job_id"])

    job = record({"exclude": ["cam1"]})
    assert job["state"] == "done", job
    manifest = read_manifest(rt.sessions_root / job["result"]["session_id"])
    assert manifest.camera_names == ["cam0", "cam2"] and manifest.excluded == {"cam1": "excluded by the user"}

    rig.processes["cam2"].send_signal(signal.SIGKILL)
    api.wait_status(lambda s: not s["cameras"][2]["online"])
    job = record({})
    assert job["state"] == "failed" and "record anyway" in job["error"]
    job = record({"override": True})
    assert job["state"] == "done", job  # "record anyway" with cam2 offline
    manifest = read_manifest(rt.sessions_root / job["result"]["session_id"])
    assert manifest.excluded == {"cam2": "offline at start (recorded anyway)"}
    assert all(c["frames"] >= 18 for c in manifest.cameras)

    assert api.post("/api/cameras/cam9/restart").status_code == 404
    job = api.wait_job(api.post("/api/cameras/cam2/restart").get_json()["job_id"])
    assert job["state"] == "done" and job["result"] == {"camera": "cam2", "how": "process"}
    api.wait_status(all_online)


def test_a_pi_agent_restart_is_exactly_a_sudoers_line() -> None:
    options = DeployOptions()
    argv = restart_argv(options)
    assert argv[:2] == ["sudo", "-n"]  # never prompts: a missing rule fails at once
    allowed = sudoers_commands(options.systemctl, ["syncrig-agent.service"]).split(", ")
    assert " ".join(argv[2:]) in allowed
