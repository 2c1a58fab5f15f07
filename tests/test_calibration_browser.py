"""The Calibration page in Chromium (Playwright): calibrate a synthetic session from the form, then
the error table, coverage heat maps, 3D layout and download links; a bad board is refused on the
page. Screenshot in tests/output/screenshots/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from calibration_support import rigless_runtime
from web_support import ServerThread

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent / "output" / "screenshots"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]  # fmt: skip

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="BROWSER TESTS NOT RUN: playwright is not installed (pip install .[test])"
)
if not Path(CHROMIUM).exists():
    pytest.skip("BROWSER TESTS NOT RUN: no Chromium at /usr/bin/chromium", allow_module_level=True)


LOADED = "sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }"


def test_calibration_page_in_chromium(tmp_path: Path) -> None:
    from controller.web import create_app

    runtime = rigless_runtime(tmp_path)
    server = ServerThread(create_app(runtime))
    SHOTS.mkdir(parents=True, exist_ok=True)
    expect = sync_api.expect
    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(server.url + "/calibration")
            expect(page.locator("#cal-squares-x")).to_have_value("10")  # the stored board spec
            expect(page.locator("#cal-result")).to_be_hidden()

            page.fill("#cal-marker-mm", "70")  # larger than the square: refused with the reason
            page.click("#cal-run")
            expect(page.locator("#cal-error")).to_contain_text("marker_mm", timeout=10_000)

            page.fill("#cal-marker-mm", "45")
            page.click("#cal-run")
            expect(page.locator("#cal-result")).to_be_visible(timeout=180_000)
            expect(page.locator("#cal-cameras tbody tr")).to_have_count(2)
            expect(page.locator('#cal-cameras tr[data-camera="cam1"]')).to_contain_text("/")
            expect(page.locator("#cal-coverage img")).to_have_count(2)
            for img in ("#cal-plot-layout", "#cal-plot-reprojection", "#cal-coverage img"):
                page.wait_for_function(
                    LOADED,
                    arg=img,
                    timeout=20_000,
                )
            href = page.get_attribute("#cal-dl-pose2sim", "href")
            assert href.endswith("/calibration/files/Calib.toml")
            assert b"[metadata]" in page.request.get(server.url + href).body()
            expect(page.locator("#cal-error")).to_be_hidden()
            page.screenshot(path=str(SHOTS / "calibration.png"), full_page=True)
            assert not errors, errors
            browser.close()
    finally:
        server.close()
        runtime.close()
