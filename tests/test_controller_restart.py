"""The controller survives its own death during a recording: a new controller re-attaches to cam0,
shows the session recording, and Stop yields complete files."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from session_checks import check_session
from web_support import HttpSession, all_online, assert_complete

REPO = Path(__file__).resolve().parent.parent


def start_controller(config: Path, log: Path) -> tuple[subprocess.Popen, str]:
    fh = open(log, "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "controller", "--config", str(config), "--port", "0"],
        stdout=fh,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    fh.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"SyncRig controller: (http://\S+)", log.read_text(errors="replace"))
        if found and found.group(1) not in getattr(start_controller, "seen", set()):
            start_controller.seen = getattr(start_controller, "seen", set()) | {found.group(1)}
            return proc, found.group(1)
        if proc.poll() is not None:
            raise AssertionError(f"controller exited {proc.returncode}:\n{log.read_text()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"controller did not come up:\n{log.read_text()}")


def test_killed_controller_reattaches_and_stops_with_complete_files(make_rig, tmp_path: Path) -> None:
    rig = make_rig(3)
    config = tmp_path / "rig.json"
    rig.write_rig_config(config, fps=20.0)
    log1, log2 = tmp_path / "ctl1.log", tmp_path / "ctl2.log"
    first, url = start_controller(config, log1)
    try:
        web = HttpSession(url)
        web.wait_status(all_online)
        code, body = web.call("POST", "/api/recording/start", {"subject": "m9", "override": True})
        assert code == 202, body
        status = web.wait_status(
            lambda s: s["recording"]["state"] == "recording" and (s["cameras"][2].get("frames") or 0) >= 20
        )
        session_id = status["recording"]["session_id"]
    finally:
        first.send_signal(signal.SIGKILL)  # no cleanup of any kind
        first.wait(10)
    # the cameras did not notice: still recording the same session
    with rig.link() as link:
        st = link.status()
        assert st["session"]["session_id"] == session_id
        assert st["server"]["state"] == "recording"
        frames_at_kill = st["server"]["session"]["frames"]
    time.sleep(1.0)
    second, url2 = start_controller(config, log2)
    try:
        web2 = HttpSession(url2)
        status = web2.wait_status(
            lambda s: s["recording"]["state"] == "recording" and s["recording"]["session_id"] == session_id
        )
        assert status["recording"]["elapsed_s"] > 1.0
        code, body = web2.call("POST", "/api/recording/stop", {})
        assert code == 202, body
        web2.wait_status(lambda s: s["recording"]["state"] == "idle", timeout=60)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(15)
    session_dir = tmp_path / "rig0" / "sessions" / session_id
    manifest, checks = check_session(session_dir)
    assert any("re-attached" in n for n in manifest.notes), manifest.notes
    for cam in manifest.cameras:
        check = checks[cam["name"]]
        # complete: every slot from T0 to the stop was recorded, decodable, and described
        assert cam["expected_frames"] > frames_at_kill
        assert_complete(cam)
        assert check.decoded == check.pts_lines == check.table_rows == cam["frames"]
    ends = {int(c["last_grid_index"]) for c in manifest.cameras}
    assert len(ends) == 1, ends  # all stopped on the same grid boundary
