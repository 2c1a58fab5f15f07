"""Configuration and deployment inputs: every bad value is refused with the field named, secrets
are created 0600 and never overwritten, and nothing with shell metacharacters reaches SSH."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from controller.deploy import DeployOptions, plan_rig
from controller.deploy.wheel import agent_sources
from controller.rig.config import CameraEntry, ConfigError, RigConfig, load_config, save_config
from syncrig_agent.contract.ids import (
    InvalidName,
    validate_camera_name,
    validate_session_id,
    validate_subject_id,
)
from syncrig_agent.contract.limits import SETTING_LIMITS
from syncrig_agent.contract.protocol import load_secret, write_secret
from syncrig_agent.settings import AgentSettings, SettingsError

REPO = Path(__file__).resolve().parent.parent


def syncrig(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize(
    "bad", ["../x", "a/b", "a\\b", "x\n", "\x7f", "..", "", ".hidden", "-opt", "a b", "é"]
)
def test_ids_refuse_unsafe_names(bad: str) -> None:
    for validate in (validate_subject_id, validate_session_id, validate_camera_name):
        with pytest.raises(InvalidName):
            validate(bad)


def test_ids_accept_ordinary_names() -> None:
    assert validate_subject_id("mouse-17_b.2") == "mouse-17_b.2"
    assert validate_camera_name("cam_0-left") == "cam_0-left"
    with pytest.raises(InvalidName):
        validate_camera_name("cam.0")  # camera names also become file stems: no dots


def test_agent_settings_name_the_bad_field(tmp_path: Path) -> None:
    base = {"name": "cam0", "role": "server", "data_dir": str(tmp_path), "secret_file": "s"}
    AgentSettings.from_dict(base)
    cases = {
        "width": {"width": 641},
        "role": {"role": "boss"},
        "name": {"name": "cam;rm"},
        "heartbeat_timeout_s": {"heartbeat_interval_s": 5.0, "heartbeat_timeout_s": 2.0},
        "simulation.drop_probability": {"simulation": {"drop_probability": 1.5}},
        "unknown setting": {"colour": "blue"},
        "listen": {"listen": "127.0.0.1:99999"},
        "base_priority": {"base_priority": 60},
    }
    for field, override in cases.items():
        with pytest.raises(SettingsError, match=field.split(".")[0]):
            AgentSettings.from_dict({**base, **override})


def test_rig_config_validation() -> None:
    good = RigConfig(cameras=[CameraEntry("cam0", "10.0.0.10", "server"), CameraEntry("cam1", "pi-b.local")])
    good.validate()
    bad_hosts = ["h;rm -rf /", "$(id)", "a b", "`x`", "host|x", "-oProxyCommand=x", "a..b"]
    for host in bad_hosts:
        with pytest.raises(ConfigError, match=r"cameras\[1\]\.host"):
            RigConfig(cameras=[CameraEntry("cam0", "h0", "server"), CameraEntry("cam1", host)]).validate()
    with pytest.raises(ConfigError, match="duplicate"):
        RigConfig(cameras=[CameraEntry("cam0", "a", "server"), CameraEntry("cam0", "b")]).validate()
    with pytest.raises(ConfigError, match="exactly one"):
        RigConfig(cameras=[CameraEntry("cam0", "a", "server"), CameraEntry("cam1", "b", "server")]).validate()
    with pytest.raises(ConfigError, match="ssh_user"):
        RigConfig(cameras=[CameraEntry("cam0", "a", "server", ssh_user="root;x")]).validate()
    with pytest.raises(ConfigError, match="pi_data_dir"):
        RigConfig(cameras=[CameraEntry("cam0", "a", "server")], pi_data_dir="~/x; rm -rf ~").validate()
    with pytest.raises(ConfigError, match="fps"):
        RigConfig(cameras=[CameraEntry("cam0", "a", "server")], fps=0).validate()


@pytest.mark.parametrize(
    "name", ["bitrate", "keyframe_interval_s", "heartbeat_interval_s", "heartbeat_timeout_s"]
)
def test_agent_and_rig_config_share_each_limit(tmp_path: Path, name: str) -> None:
    """A field the deploy step copies into agent.json has one range: what the desktop saves, the Pi
    accepts, and both refuse the value just outside it with the same message."""
    low, high = SETTING_LIMITS[name].low, SETTING_LIMITS[name].high
    agent = {"name": "cam0", "role": "server", "data_dir": str(tmp_path), "secret_file": "s"}
    cams = [CameraEntry("cam0", "a", "server")]
    timeout = {"heartbeat_timeout_s": 3600.0} if name == "heartbeat_interval_s" else {}
    interval = {"heartbeat_interval_s": 0.05} if name == "heartbeat_timeout_s" else {}
    for value in (low, high):
        AgentSettings.from_dict({**agent, **timeout, **interval, name: value})
        RigConfig(cameras=cams, **timeout, **interval, **{name: value}).validate()
    for value in (low * 0.9, high * 1.1):
        with pytest.raises(SettingsError) as agent_error:
            AgentSettings.from_dict({**agent, **timeout, **interval, name: value})
        with pytest.raises(ConfigError) as rig_error:
            RigConfig(cameras=cams, **timeout, **interval, **{name: value}).validate()
        assert str(agent_error.value) == str(rig_error.value)
        assert str(agent_error.value).startswith(f"{name}: must be a number in {low}..{high}")


def test_config_save_load_round_trip(tmp_path: Path) -> None:
    cfg = RigConfig(cameras=[CameraEntry("cam0", "10.0.0.10", "server")], fps=56.0)
    path = save_config(tmp_path / "rig.json", cfg)
    assert load_config(path) == cfg
    path.write_text(json.dumps({**cfg.to_dict(), "fps": "fast"}))
    with pytest.raises(ConfigError, match="fps"):
        load_config(path)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(path)


def test_secret_file_is_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    secret = write_secret(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_secret(path) == secret
    with pytest.raises(FileExistsError):
        write_secret(path)
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        load_secret(path)


def test_setup_cli_writes_config_and_secret(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "rig.json"
    r = syncrig("setup", "--config", str(cfg), "--camera", "cam0=pi@10.0.0.10", "--camera", "cam1=10.0.0.11")
    assert r.returncode == 0, r.stderr
    config = load_config(cfg)
    assert [c.role for c in config.cameras] == ["server", "client"]
    assert stat.S_IMODE((cfg.parent / "secret").stat().st_mode) == 0o600
    r = syncrig("setup", "--config", str(cfg), "--camera", "cam0=pi@10.0.0.10")
    assert r.returncode == 1 and "--force" in r.stderr
    r = syncrig("setup", "--config", str(tmp_path / "x.json"), "--camera", "cam0=pi@h$(reboot)")
    assert r.returncode == 2 and "host" in r.stderr
    assert not (tmp_path / "x.json").exists()


def test_deploy_plan_and_dry_run(tmp_path: Path) -> None:
    cfg = RigConfig(cameras=[CameraEntry("cam0", "10.0.0.10", "server"), CameraEntry("cam1", "10.0.0.11")])
    deployments = plan_rig(cfg, DeployOptions())
    client = deployments[1].agent_settings
    assert client["role"] == "client" and client["server"] == "10.0.0.10:5005"
    assert client["secret_file"] == "/home/pi/syncrig/secret"
    assert client["preview_listen"] == "0.0.0.0:5008"  # the port the controller's preview URLs use
    AgentSettings.from_dict(client)  # what lands on the Pi is valid agent configuration
    unit = deployments[0].unit("syncrig-agent.service")
    assert "User=pi" in unit and "@DIR@" not in unit
    rels = [rel for _, rel in agent_sources()]
    assert "syncrig_agent/contract/protocol/framing.py" in rels and "syncrig_agent/server.py" in rels
    assert "syncrig_agent/timing/precise_wait.c" in rels
    path = save_config(tmp_path / "rig.json", cfg)
    r = syncrig("deploy", "--config", str(path), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "cam1: pi@10.0.0.11 -> /home/pi/syncrig" in r.stdout
    r = syncrig("deploy", "--config", str(path), "--dry-run", "--camera", "cam7")
    assert r.returncode == 2 and "unknown camera" in r.stderr


def test_install_sh_refuses_metacharacters_before_any_ssh(tmp_path: Path) -> None:
    cfg = tmp_path / "rig.json"
    good = RigConfig(cameras=[CameraEntry("cam0", "10.0.0.10", "server")]).to_dict()
    good["cameras"][0]["name"] = "cam0;touch pwned"
    cfg.write_text(json.dumps(good))
    r = subprocess.run(
        ["bash", str(REPO / "install.sh"), "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2 and "cameras[0].name" in r.stderr
    assert not (tmp_path / "pwned").exists()
