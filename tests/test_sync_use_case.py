"""The one sync use case (controller/pipeline/sync.py) behind `syncrig sync` and the web's Sync job:
a tolerance in µs reaches the matcher as the same, rounded, integer ns from both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import controller.pipeline.sync as sync_use_case
from controller.cli.main import main as syncrig
from controller.rig.config import CameraEntry, RigConfig, save_config
from controller.runtime import ControllerRuntime
from controller.web import create_app
from syncrig_agent.contract.protocol.auth import write_secret

from web_support import ApiClient

SESSION_ID = "tolsession"
# 1.001 µs is 1000.9999999999999 ns in binary floating point: truncation gives 1000, rounding 1001.
TOLERANCE_US = 1.001


def test_tolerance_is_rounded_to_the_nearest_ns() -> None:
    assert sync_use_case.tolerance_ns(TOLERANCE_US) == 1001
    assert sync_use_case.tolerance_ns(0.0004) == 0
    assert sync_use_case.tolerance_ns(0.0006) == 1
    assert sync_use_case.tolerance_ns(250.0) == 250_000
    assert sync_use_case.tolerance_ns(None) is None


@pytest.fixture
def recorded_tolerances(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Stand in for the matcher: record the tolerance it is asked for, answer a minimal report."""
    seen: list[int | None] = []

    def analyze(session: Path, *, tolerance_ns=None, mode="auto", reference=None, progress=None) -> dict:  # noqa: ANN001
        seen.append(tolerance_ns)
        return {"session": session.name, "verdict": "ok"}

    monkeypatch.setattr(sync_use_case, "analyze_session", analyze)
    return seen


def _rigless_app(tmp_path: Path) -> ApiClient:
    write_secret(tmp_path / "secret")
    config = RigConfig(
        cameras=[CameraEntry("cam0", "127.0.0.1", "server")],
        control_port=9,  # never started: no rig is asked anything
        sessions_root=str(tmp_path / "sessions"),
        secret_file=str(tmp_path / "secret"),
    )
    save_config(tmp_path / "rig.json", config)
    session = tmp_path / "sessions" / SESSION_ID
    session.mkdir(parents=True)
    (session / "session.json").write_text(json.dumps({"id": SESSION_ID}))
    return ApiClient(create_app(ControllerRuntime(tmp_path / "rig.json", poll_interval_s=5.0)))


def test_cli_and_web_give_the_matcher_the_same_ns(
    tmp_path: Path, recorded_tolerances: list[int | None], capsys: pytest.CaptureFixture
) -> None:
    api = _rigless_app(tmp_path)
    session = tmp_path / "sessions" / SESSION_ID
    cli = ["sync", str(session), "--tolerance-us", str(TOLERANCE_US), "--analyze-only", "--json", "--quiet"]
    assert syncrig(cli) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "ok"

    body = {"tolerance_us": TOLERANCE_US, "outputs": False}
    job = api.wait_job(api.post(f"/api/sessions/{SESSION_ID}/sync", body).get_json()["job_id"])
    assert job["state"] == "done", job
    assert job["result"] == {"session_id": SESSION_ID, "verdict": "ok"}

    assert recorded_tolerances == [1001, 1001]
