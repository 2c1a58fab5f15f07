"""`syncrig record --config rig.json` on a rig whose agents were started from deploy's agent.json
files (as systemd starts them): the controller's own recording service, the UI's outputs and pull."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from config_agents import REPO, ConfigFileRig
from session_checks import check_session
from web_support import assert_complete


@pytest.fixture
def config_rig(tmp_path: Path):
    rig = ConfigFileRig(tmp_path / "rig")
    rig.start(fps=20.0)
    yield rig
    rig.stop()


def run_record(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "controller", "record", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)


def test_record_with_config_makes_a_verified_session(config_rig: ConfigFileRig) -> None:
    result = run_record(
        "--config", str(config_rig.config_path), "--seconds", "1.5", "--subject", "m7", "--project", "night"
    )
    assert result.returncode == 0, result.stderr + result.stdout
    sessions_root = config_rig.workdir / "sessions"
    (session,) = [p for p in sessions_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert session.name.endswith("_night_m7") and "-0001_" in session.name
    assert f"session {session.name}" in result.stdout
    manifest, cams = check_session(session)
    assert [c["name"] for c in manifest.cameras] == ["cam0", "cam1"]
    for entry in manifest.cameras:
        assert_complete(entry, expected=30)
        assert cams[entry["name"]].decoded == entry["frames"]
    ledger = json.loads((session / "transfer.json").read_text())
    for name in ("cam0", "cam1"):
        assert ledger["cameras"][name]["files"][f"{name}.h264"]["verified"]
    assert result.stdout.count("raw/ verified against the Pi") == 2
    # The pre-flight ran, as the UI's Record runs it (nothing overridden).
    assert not any("pre-flight" in note for note in manifest.notes)


def test_record_with_a_bad_config_names_the_file(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from controller.cli.main import main

    bad = tmp_path / "rig.json"
    bad.write_text('{"cameras": []}')
    assert main(["record", "--config", str(bad), "--seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "cameras" in err and "Traceback" not in err
    assert main(["record", "--sim", "2", "--seconds", "1"]) == 2
    assert "--out" in capsys.readouterr().err
