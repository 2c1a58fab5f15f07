"""TTL lines on the Settings page: per camera, outputs (start/strobe/barcode → GPIO line), inputs
(name → line, optionally gating the recording) and the strobe width, checked by the Pi agent's own
rules (`TtlSettings.validate`, through the rig file's `pi_ttl_settings`) with the camera and field
named, saved to the rig file, pushed by Deploy on a real rig and said to be unused by the simulated
rig (whose TTL comes from `syncrig demo --ttl-out`). The API here, then real Chromium (Playwright)
against one controller for the module."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from controller.rig.config import CameraEntry, RigConfig, save_config
from controller.runtime import ControllerRuntime
from syncrig_agent.contract.protocol import write_secret

from loopback_sshd import free_port
from web_support import ApiClient, ServerThread, app_client

GOOD_TTL = {
    "outputs": {"start": 5, "strobe": 6},
    "inputs": [{"name": "lick", "line": 17, "record": True}],
    "strobe_width_us": 8000,
}


def real_rig_runtime(workdir: Path, **kw) -> ControllerRuntime:
    """A controller for a real rig of two Pis that are not there (nothing answers on cam0's port):
    the Settings page and its API need no camera."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_secret(workdir / "secret")
    config = RigConfig(
        cameras=[CameraEntry("cam0", "127.0.0.1", "server"), CameraEntry("cam1", "127.0.0.2", "client")],
        fps=30.0,
        sessions_root=str(workdir / "sessions"),
        control_port=free_port(),
        secret_file=str(workdir / "secret"),
    )
    save_config(workdir / "rig.json", config)
    return ControllerRuntime(workdir / "rig.json", poll_interval_s=5.0, **kw).start()


def cameras_with(api: ApiClient, index: int, ttl: dict) -> list[dict]:
    cameras = api.get_json("/api/settings")["config"]["cameras"]
    cameras[index]["ttl"] = ttl
    return cameras


def test_ttl_settings_api_refuses_naming_camera_and_field_and_saves_for_deploy(tmp_path: Path) -> None:
    runtime = real_rig_runtime(tmp_path / "real")
    try:
        api = app_client(runtime)
        before = runtime.config_path.read_text()
        for ttl, field, words in [
            ({"outputs": {"strobe": -1}}, "cameras[1].ttl.outputs.strobe", "0..511, got -1"),
            ({"outputs": {"start": 5, "strobe": 5}}, "cameras[1].ttl.outputs.strobe", "line 5 is already"),
            ({"outputs": {"start": 5}, "inputs": [{"line": 5}]}, "cameras[1].ttl.inputs[0].line", "already"),
            ({**GOOD_TTL, "strobe_width_us": 20000}, "cameras[1].ttl.strobe_width_us", "more than half"),
            ({**GOOD_TTL, "strobe_width_us": "wide"}, "cameras[1].ttl.strobe_width_us", "got wide"),
            ({"outputs": {"flash": 3}}, "cameras[1].ttl.outputs", "unknown role 'flash'"),
            ({"inputs": [{"line": 4, "name": "a b"}]}, "cameras[1].ttl.inputs[0].name", ""),
        ]:
            resp = api.post("/api/settings", {"cameras": cameras_with(api, 1, ttl)})
            body = resp.get_json()
            assert resp.status_code == 400 and body["field"] == field, (ttl, body)
            assert words in body["error"] and "(camera cam1)" in body["error"], body
        assert runtime.config_path.read_text() == before  # nothing written
        # The same rule as the agent's START: a frame rate that leaves the strobe over half a period.
        resp = api.post("/api/settings", {"cameras": cameras_with(api, 1, GOOD_TTL), "fps": 100})
        assert resp.get_json()["field"] == "cameras[1].ttl.strobe_width_us", resp.get_json()
        resp = api.post("/api/settings", {"cameras": cameras_with(api, 1, GOOD_TTL)})
        result = resp.get_json()
        assert resp.status_code == 200, result
        assert result["changed"] == ["ttl"] and result["deploy_for"] == ["ttl"] and "Deploy" in result["note"]
        saved = json.loads(runtime.config_path.read_text())
        assert saved["cameras"][1]["ttl"] == GOOD_TTL and saved["cameras"][0]["ttl"] == {}
        assert runtime.config.cameras[1].ttl == GOOD_TTL
        # Saving the page unchanged changes nothing; a new camera name is a camera change, not TTL.
        again = api.post("/api/settings", {"cameras": cameras_with(api, 1, GOOD_TTL)}).get_json()
        assert again["changed"] == [], again
    finally:
        runtime.close()


def test_the_simulated_rig_says_its_ttl_comes_from_ttl_out(tmp_path: Path) -> None:
    restarts: list[object] = []
    runtime = real_rig_runtime(tmp_path / "sim", apply_settings=lambda config, ctx: restarts.append(config))
    try:
        api = app_client(runtime)
        result = api.post("/api/settings", {"cameras": cameras_with(api, 0, GOOD_TTL)}).get_json()
        assert result["changed"] == ["ttl"] and result["not_simulated"] == ["ttl"], result
        assert result["applied"] == [] and result["restart_for"] == [] and result["job_id"] is None
        assert restarts == []  # the simulated cameras did not restart for lines they do not use
        page = api.get("/settings").get_data(as_text=True)
        assert "its TTL comes from <code>syncrig demo --ttl-out</code>" in page
    finally:
        runtime.close()


# -- in Chromium ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def settings_page(tmp_path_factory):
    # Imported here: without Playwright or Chromium it skips the browser test loudly, not the API's.
    from test_browser import CHROMIUM, CHROMIUM_ARGS, SHOTS, sync_api

    from controller.web import create_app

    runtime = real_rig_runtime(tmp_path_factory.mktemp("ttlui"))

    server = ServerThread(create_app(runtime))
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield runtime, server.url, page, errors, sync_api.expect, SHOTS
            browser.close()
    finally:
        server.close()
        runtime.close()


def test_ttl_lines_are_set_saved_shown_after_reload_and_bad_ones_refused(settings_page) -> None:
    runtime, url, page, errors, expect, shots = settings_page
    page.goto(url + "/settings")
    expect(page.locator("#ttl-table tbody tr")).to_have_count(2)
    expect(page.locator("#ttl-hint")).to_contain_text("reaches the Pis with Deploy")
    row = page.locator("#ttl-table tbody tr").nth(1)
    expect(row.locator(".ttl-camera")).to_have_text("cam1")
    row.locator("[name=ttl-start]").fill("5")
    row.locator("[name=ttl-strobe]").fill("6")
    row.locator("[name=ttl-strobe_width_us]").fill("8000")
    row.locator(".ttl-add-input").click()
    row.locator("[name=ttl-in-name]").fill("lick")
    row.locator("[name=ttl-in-line]").fill("17")
    row.locator("[name=ttl-in-record]").check()
    page.click("#save-settings")
    expect(page.locator("#settings-result")).to_contain_text("Run Deploy to push TTL lines to the Pis")
    assert json.loads(runtime.config_path.read_text())["cameras"][1]["ttl"] == GOOD_TTL
    page.reload()
    row = page.locator("#ttl-table tbody tr").nth(1)
    expect(row.locator("[name=ttl-start]")).to_have_value("5")
    expect(row.locator("[name=ttl-strobe]")).to_have_value("6")
    expect(row.locator("[name=ttl-barcode]")).to_have_value("")
    expect(row.locator("[name=ttl-strobe_width_us]")).to_have_value("8000")
    expect(row.locator("[name=ttl-in-name]")).to_have_value("lick")
    expect(row.locator("[name=ttl-in-line]")).to_have_value("17")
    expect(row.locator("[name=ttl-in-record]")).to_be_checked()
    page.screenshot(path=str(shots / "40-settings-ttl.png"), full_page=True)
    saved = runtime.config_path.read_text()
    error = page.locator('[data-error-for="ttl"]')
    for name, value, words in [
        ("ttl-strobe", "-1", "cameras[1].ttl.outputs.strobe: must be a GPIO line offset 0..511, got -1"),
        ("ttl-strobe", "5", "cameras[1].ttl.outputs.strobe: line 5 is already ttl.outputs.start"),
        ("ttl-in-line", "6", "cameras[1].ttl.inputs[0].line: line 6 is already ttl.outputs.strobe"),
        ("ttl-strobe_width_us", "20000", "cameras[1].ttl.strobe_width_us: 20000 µs is more than half"),
    ]:
        page.reload()
        field = page.locator("#ttl-table tbody tr").nth(1).locator(f"[name={name}]")
        field.fill(value)
        page.click("#save-settings")
        expect(error).to_contain_text(words)
        expect(error).to_contain_text("(camera cam1)")
        expect(field).to_have_class("invalid")
    page.screenshot(path=str(shots / "41-settings-ttl-refused.png"), full_page=True)
    assert runtime.config_path.read_text() == saved  # nothing written
    # A camera removed takes its TTL row with it.
    page.reload()
    page.locator("#cam-table tbody tr").nth(1).locator("button").click()
    expect(page.locator("#ttl-table tbody tr")).to_have_count(1)
    assert not errors, errors
