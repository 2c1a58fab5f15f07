"""`syncrig demo` as a user runs it: a process that starts the simulated rig and the UI, applies
settings from the page by restarting the simulated cameras, and shuts everything down on SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from web_support import HttpSession, all_online, assert_complete

REPO = Path(__file__).resolve().parent.parent


def test_demo_serves_records_applies_settings_and_shuts_down(tmp_path: Path) -> None:
    log = tmp_path / "demo.log"
    workdir = tmp_path / "demo"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "controller",
                "demo",
                "--cameras",
                "2",
                "--workdir",
                str(workdir),
                "--port",
                "0",
                "--width",
                "320",
                "--height",
                "240",
            ],
            stdout=fh,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    try:
        deadline = time.monotonic() + 60
        url = None
        while url is None and time.monotonic() < deadline:
            found = re.search(r"SyncRig controller: (http://localhost:\d+/)", log.read_text(errors="replace"))
            url = found.group(1) if found else None
            assert proc.poll() is None, log.read_text()
            time.sleep(0.1)
        assert url, log.read_text()
        web = HttpSession(url)
        status = web.wait_status(all_online)
        assert [c["name"] for c in status["cameras"]] == ["cam0", "cam1"]
        # a capture setting from the page restarts the simulated cameras with it
        code, body = web.call("POST", "/api/settings", {"width": 256, "height": 192, "fps": 15})
        assert code == 200 and body["job_id"], body
        deadline = time.monotonic() + 60
        while True:
            _, job = web.call("GET", f"/api/jobs/{body['job_id']}")
            if job["state"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["state"] == "done", job
        web.wait_status(all_online)
        code, started = web.call("POST", "/api/recording/start", {"seconds": 1, "override": True})
        assert code == 202, started
        deadline = time.monotonic() + 60
        while True:
            _, job = web.call("GET", f"/api/jobs/{started['job_id']}")
            if job["state"] not in ("queued", "running"):
                break
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
        assert job["state"] == "done", job
        manifest = json.loads(
            (workdir / "sessions" / job["result"]["session_id"] / "session.json").read_text()
        )
        assert manifest["fps"] == 15
        assert [(c["width"], c["height"]) for c in manifest["cameras"]] == [(256, 192)] * 2
        for cam in manifest["cameras"]:
            assert_complete(cam, expected=15)
        config = json.loads((workdir / "rig.json").read_text())
        assert (config["width"], config["fps"]) == (256, 15)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, log.read_text()
    # the simulated agents went with it
    pids = [json.loads(p.read_text()).get("pid") for p in (workdir / "run").glob("*.ready.json")]
    time.sleep(0.5)
    alive = [pid for pid in pids if pid and Path(f"/proc/{pid}").exists()]
    assert not alive, alive
