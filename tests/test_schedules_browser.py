"""The Schedules and API tabs in Chromium (Playwright), against a controller over a simulated rig
on a real loopback port: add a schedule, see the disk guard skip its run and say why, a bad field
marked, edit it, delete it; the API page lists every route of /api/openapi.json."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controller.web.client import SyncRigClient

from web_support import ServerThread, all_online, app_client, controller_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent / "output" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="BROWSER TESTS NOT RUN: playwright is not installed (pip install -e .[test])",
)
if not Path(CHROMIUM).exists():
    pytest.skip(
        "BROWSER TESTS NOT RUN: no Chromium at /usr/bin/chromium (tools/run-tests apt-installs it as root)",
        allow_module_level=True,
    )


def test_schedules_tab_adds_edits_and_deletes(make_rig, tmp_path: Path) -> None:
    rig = make_rig(1)
    runtime = controller_for(rig, tmp_path / "ctl", fps=20.0)
    app_client(runtime).wait_status(all_online)
    from controller.web import create_app

    server = ServerThread(create_app(runtime))
    SHOTS.mkdir(parents=True, exist_ok=True)
    expect = sync_api.expect
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda dialog: dialog.accept())
            page.goto(server.url + "/")
            page.click('nav a[data-tab="schedules"]')
            expect(page.locator("#no-schedules")).to_be_visible()
            expect(page.locator("#free-space")).not_to_have_text("–")

            # A bad field is refused and marked; nothing is saved.
            form = page.locator("#schedule-form")
            form.locator("[name=name]").fill("nightly")
            form.locator("[name=every]").fill("10")
            form.locator("[name=duration]").fill("10")
            page.click("#schedule-save")
            expect(page.locator('[data-error-for="duration_s"]')).to_contain_text("shorter than the interval")
            expect(form.locator("[name=duration]")).to_have_class("invalid")
            assert SyncRigClient(server.url).schedules() == []

            # Every 10 min for 2 min, guarded by more free space than any disk has: skipped, said why.
            form.locator("[name=duration]").fill("2")
            form.locator("[name=subject]").fill("m1")
            form.locator("[name=min_free_gb]").fill("1000000000")
            page.click("#schedule-save")
            row = page.locator("#schedules tbody tr")
            expect(row).to_have_count(1)
            expect(row.locator('[data-field="name"]')).to_have_text("nightly")
            expect(row.locator('[data-field="every"]')).to_have_text("10 min")
            expect(row.locator('[data-field="duration"]')).to_have_text("2 min")
            expect(row.locator('[data-field="runs"]')).to_have_text("1 skipped", timeout=10_000)
            page.click("[data-history] summary")
            expect(page.locator('[data-history] [data-field="detail"]').first).to_contain_text("disk guard")
            shot(page, "schedules")

            # Edit: every 2 h for 30 min, guard off, disabled; the history stays.
            row.locator('[data-action="edit"]').click()
            expect(form.locator("[name=every]")).to_have_value("10")
            expect(page.locator("#schedule-save")).to_have_text("Save changes")
            form.locator("[name=every]").fill("2")
            form.locator("[name=every_unit]").select_option("3600")
            form.locator("[name=duration]").fill("30")
            form.locator("[name=min_free_gb]").fill("0")
            form.locator("[name=enabled]").uncheck()
            page.click("#schedule-save")
            expect(row.locator('[data-field="every"]')).to_have_text("2 h")
            expect(row.locator('[data-field="duration"]')).to_have_text("30 min")
            expect(row.locator('[data-field="next"]')).to_have_text("disabled")
            expect(row.locator('[data-field="runs"]')).to_have_text("1 skipped")
            (saved,) = SyncRigClient(server.url).schedules()
            assert (saved["every_s"], saved["duration_s"], saved["enabled"]) == (7200, 1800, False)
            assert saved["subject"] == "m1" and saved["min_free_gb"] == 0

            # Delete (confirmed in the dialog).
            row.locator('[data-action="delete"]').click()
            expect(page.locator("#schedules tbody tr")).to_have_count(0)
            assert SyncRigClient(server.url).schedules() == []

            # The API tab renders the OpenAPI document: one row per operation.
            page.click('nav a[data-tab="docs"]')
            spec = SyncRigClient(server.url).openapi()
            operations = sum(len(ops) for ops in spec["paths"].values())
            expect(page.locator("#api-operations tbody tr")).to_have_count(operations)
            expect(page.locator('tr[data-path="/api/schedules"][data-method="post"]')).to_contain_text("CSRF")
            shot(page, "api")
            assert errors == [], errors
            browser.close()
    finally:
        server.close()
        runtime.close()


def shot(page, name: str) -> None:  # noqa: ANN001
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
