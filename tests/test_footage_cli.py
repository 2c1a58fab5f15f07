"""The footage commands as a user runs them: `syncrig record` (streams + receivers + verified pull),
`footage-check`, `pull` (idempotent; `--delete-from-pi` only after verification), `transcode`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def syncrig(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "controller", *map(str, args)], capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_record_pull_check_delete_transcode(tmp_path: Path) -> None:
    rig, out = tmp_path / "rig", tmp_path / "sessions"
    rec = syncrig(
        "record", "--sim", "2", "--fps", "30", "--seconds", "2", "--out", out, "--rig-dir", rig,
        "--width", "320", "--height", "240", "--bitrate", "1000000", "--quiet",
    )  # fmt: skip
    (session,) = [p for p in out.iterdir() if p.is_dir()]
    assert "warning: no subject ID" in rec.stderr and "no project ID" in rec.stderr  # allowed, never silently
    # Streamed live, then verified against the agents' own copies.
    assert "raw/ verified against the Pi, stream" in rec.stdout
    assert sorted(p.name for p in (session / "stream").glob("cam0_*.mkv"))
    assert json.loads(syncrig("footage-check", session).stdout)["safe"] is True

    again = syncrig("pull", session, "--rig-dir", rig, "--quiet")  # idempotent: nothing refetched
    assert again.stdout.count("verified (already present") == 2

    (session / "raw" / "cam1.pts").write_text("# timestamp format v2\n0.000000\n")  # damage a copy
    bad = syncrig("footage-check", session, check=False)
    assert bad.returncode == 1 and "cam1.pts" in bad.stdout
    refused = syncrig("pull", session, "--rig-dir", rig, "--quiet", "--delete-from-pi", "--yes", check=False)
    assert refused.returncode == 1 and "refusing to overwrite" in refused.stderr
    assert (rig / "pi" / "cam1" / session.name / "raw" / "cam1.pts").exists()  # nothing deleted
    assert not (rig / "pi" / "cam0" / session.name).exists()  # cam0 was verified: its copy went
    (session / "raw" / "cam1.pts").write_bytes(
        (rig / "pi" / "cam1" / session.name / "raw" / "cam1.pts").read_bytes()
    )
    syncrig("pull", session, "--rig-dir", rig, "--quiet", "--camera", "cam1", "--delete-from-pi", "--yes")
    assert not (rig / "pi" / "cam1" / session.name).exists()
    assert json.loads(syncrig("footage-check", session).stdout)["safe"] is True

    tc = syncrig("transcode", session, "--quiet")
    assert "cam0: archive/cam0.h265.mp4" in tc.stdout and (session / "archive" / "cam1.h265.mp4").exists()


def test_pull_refuses_unknown_camera(tmp_path: Path) -> None:
    session = tmp_path / "20260101-000000-0001"
    (session / "raw").mkdir(parents=True)
    (session / "session.json").write_text(json.dumps({"cameras": [{"name": "cam0"}]}))
    result = syncrig("pull", session, "--rig-dir", tmp_path, "--camera", "cam9", check=False)
    assert result.returncode == 2 and "cam9" in result.stderr
