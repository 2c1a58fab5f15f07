"""What the pages say about faults, in real Chromium (tests/test_browser.py's fixture): a camera
left out from the Record page, an offline camera's agent restarted from its card, a camera killed
mid-recording named on its session page (when, why, frames kept), and the footage words derived
from the files now (after "delete camera copies" the page no longer says verified; a re-pull works)."""

from __future__ import annotations

import os
import signal
import time

from test_browser import shot, sync_api, ui  # noqa: F401 (ui is the fixture)

from syncrig_agent.contract.formats import read_manifest


def _start_from_page(page, seconds: str = "") -> None:  # noqa: ANN001
    page.fill("#seconds", seconds)
    page.click("#start-btn")


def test_fault_pages_in_chromium(ui) -> None:  # noqa: F811
    rig, runtime, url, page, errors = ui
    expect = sync_api.expect
    page.goto(url + "/")
    boxes = page.locator('#exclude-box input[name="exclude"]')
    expect(boxes).to_have_count(3)

    # Leave cam1 out of a short recording.
    page.check('#exclude-box input[value="cam1"]')
    _start_from_page(page, "1")
    expect(page.locator("#rec-state-big")).to_have_text("recording", timeout=20_000)
    expect(page.locator("#rec-state-big")).to_have_text("idle", timeout=40_000)
    first = sorted(p for p in runtime.sessions_root.iterdir() if not p.name.startswith("."))[-1]
    assert read_manifest(first).excluded == {"cam1": "excluded by the user"}
    page.uncheck('#exclude-box input[value="cam1"]')

    # An offline camera comes back through its card's Restart button.
    os.kill(rig.processes["cam2"].pid, signal.SIGKILL)
    card = page.locator('.card[data-camera="cam2"]')
    expect(card.locator('dd[data-field="state"]')).to_have_text("offline", timeout=20_000)
    card.locator(".restart-btn").click()
    expect(card.locator('dd[data-field="state"]')).to_have_text("idle", timeout=30_000)
    shot(page, "record-restarted-camera")

    # cam2 dies 2 s into an open recording: the session keeps its frames and says so.
    _start_from_page(page)
    expect(page.locator("#rec-state-big")).to_have_text("recording", timeout=20_000)
    time.sleep(2.0)
    os.kill(rig.processes["cam2"].pid, signal.SIGKILL)
    time.sleep(1.0)
    stopped = time.monotonic()
    page.click("#stop-btn")
    expect(page.locator("#rec-state-big")).to_have_text("idle", timeout=40_000)
    assert time.monotonic() - stopped < 10.0
    session = sorted(p for p in runtime.sessions_root.iterdir() if not p.name.startswith("."))[-1]
    cam2 = read_manifest(session).camera("cam2")
    assert cam2["lost"] and cam2["frames"] > 20, cam2

    page.goto(f"{url}/sessions/{session.name}")
    summary = page.locator("#s-summary")
    expect(summary).to_contain_text("Camera lost")
    expect(summary).to_contain_text(f"cam2 lost: {cam2['lost']['reason']}")
    expect(summary).to_contain_text(f"its last frame {cam2['lost']['at_s']:.2f} s into the recording")
    expect(summary).to_contain_text(f"its {cam2['frames']} frames are kept")
    expect(summary).to_contain_text("verified on the desktop (the cameras still hold their copies)")
    expect(page.locator('#s-cameras tr[data-camera="cam2"]')).to_contain_text("camera_lost")
    expect(page.locator('#s-transfer tr[data-camera="cam2"]')).to_contain_text("(camera lost: ")
    shot(page, "session-lost-camera")

    # Free the cameras' copies: the page stops saying "verified"; a re-pull still works.
    page.fill("#delete-confirm", session.name)
    page.click("#delete-btn")
    expect(page.locator("#delete-result")).to_have_text("Camera copies deleted.", timeout=30_000)
    expect(summary).to_contain_text("on the desktop only: camera copies deleted (cam0, cam1, cam2)")
    expect(summary).not_to_contain_text("verified on the desktop")
    page.click("#pull-btn")
    expect(page.locator("#footage-result")).to_have_text("Pull: done", timeout=30_000)
    shot(page, "session-after-delete-and-repull")
    assert not errors, errors
