"""Clock state end to end on the simulated rig: each agent reports `clock_sync` in STATUS, the
controller shows it, pre-flight refuses an unsynchronised camera by name, "record anyway" records
and says so, and session.json keeps every camera's clock state at start and stop."""

from __future__ import annotations

import json
import os
from pathlib import Path

from controller.rig.config import CameraEntry, RigConfig, save_config
from controller.rig.preflight import PreflightLimits
from controller.rig.simulated import SimCamera
from controller.runtime import ControllerRuntime

from web_support import all_online, app_client, controller_for


def _clock_states_read(status: dict) -> bool:
    return all_online(status) and all(
        (c.get("clock_sync") or {}).get("age_s") is not None for c in status["cameras"]
    )


def test_unsynchronised_camera_is_refused_by_name_and_override_is_recorded(make_rig, tmp_path: Path) -> None:
    cams = [SimCamera("cam0"), SimCamera("cam1", clock_sync="LISTENING"), SimCamera("cam2")]
    rig = make_rig(cameras=cams)
    rt = controller_for(rig, tmp_path / "ctl")
    try:
        api = app_client(rt)
        status = api.wait_status(_clock_states_read)
        cards = {c["name"]: c["clock_sync"] for c in status["cameras"]}
        assert cards["cam0"]["source"] == "simulated" and cards["cam0"]["synchronized"] is True
        assert cards["cam1"]["state"] == "unsynchronized" and cards["cam1"]["port_state"] == "LISTENING"
        assert cards["cam2"]["offset_ns"] == 0  # configured offset 0, no drift: exactly

        pre = api.wait_job(api.post("/api/preflight", {"seconds": 5}).get_json()["job_id"])["result"]
        failed = [(c["camera"], c["check"]) for c in pre["checks"] if c["blocking"] and not c["ok"]]
        assert failed == [("cam1", "clock_sync")], pre["checks"]
        assert "cam1: clock not synchronised" in pre["reason"] and "LISTENING" in pre["reason"]
        passed = {(c["camera"], c["check"]) for c in pre["checks"] if c["ok"]}
        assert {("cam0", "clock_sync"), ("cam2", "clock_sync")} <= passed

        job = api.wait_job(api.post("/api/recording/start", {"seconds": 1}).get_json()["job_id"])
        assert job["state"] == "failed" and "pre-flight failed" in job["error"], job
        assert "cam1: clock not synchronised" in job["error"]
        assert api.get_json("/api/sessions")["sessions"] == []

        job = api.wait_job(
            api.post("/api/recording/start", {"seconds": 1, "override": True}).get_json()["job_id"]
        )
        assert job["state"] == "done", job
        manifest = json.loads((rt.sessions_root / job["result"]["session_id"] / "session.json").read_text())
        assert any("overridden" in n and "cam1: clock not synchronised" in n for n in manifest["notes"])
        reports = manifest["clock_reports"]
        assert sorted(reports) == ["cam0", "cam1", "cam2"]
        for name, report in reports.items():
            for when in ("clock_sync", "clock_sync_at_stop"):
                sync = report[when]
                assert sync["source"] == "simulated", (name, when, sync)
                assert sync["state"] == ("unsynchronized" if name == "cam1" else "synchronized")
                assert isinstance(sync["read_at"], float) and "detail" in sync
        assert reports["cam1"]["clock_sync"]["port_state"] == "LISTENING"
    finally:
        rt.close()


def test_sync_offset_limit_comes_from_the_rig_config(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(os.urandom(32))
    secret.chmod(0o600)
    config = RigConfig(
        cameras=[CameraEntry("cam0", "127.0.0.1", role="server")],
        secret_file=str(secret),
        sessions_root=str(tmp_path / "sessions"),
        extra={"max_sync_offset_us": 250},
    )
    save_config(tmp_path / "rig.json", config)
    assert PreflightLimits().max_sync_offset_us == 100.0
    rt = ControllerRuntime(tmp_path / "rig.json")  # not started: only the limits are looked at
    assert rt.rig.limits.max_sync_offset_us == 250.0
