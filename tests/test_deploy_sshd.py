"""install.sh / `syncrig deploy` against a real OpenSSH server on loopback.

The "Pi" is this machine reached through sshd on 127.0.0.1 with a throw-away host key and a
throw-away client key; the install goes to a temporary directory. Package installation (pip on
the Pi) and the systemd unit are not exercised here (--no-packages --no-service): there is no
systemd in the test sandbox, and the venv step would download wheels for minutes."""

from __future__ import annotations

import getpass
import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from controller.deploy import DeployError, deploy_camera
from controller.rig_config import CameraEntry, RigConfig, save_config
from syncrig_agent.protocol import load_secret, write_secret
from syncrig_agent.settings import AgentSettings

REPO = Path(__file__).resolve().parent.parent


def rig(tmp_path: Path) -> RigConfig:
    user = getpass.getuser()
    return RigConfig(
        cameras=[
            CameraEntry("cam0", "127.0.0.1", "server", ssh_user=user),
            CameraEntry("cam1", "127.0.0.1", "client", ssh_user=user),
        ],
        pi_install_dir=str(tmp_path / "pi" / "syncrig"),
        pi_data_dir=str(tmp_path / "pi" / "recordings"),
        secret_file=str(tmp_path / "secret"),
    )


def test_deploy_copies_agent_settings_and_secret(sshd, tmp_path: Path) -> None:
    config = rig(tmp_path)
    secret = write_secret(tmp_path / "secret")

    def deploy():
        return deploy_camera(
            config,
            config.cameras[1],
            secret,
            port=sshd["port"],
            key_filename=sshd["key"],
            known_hosts=sshd["known_hosts"],
            install_packages=False,
            start_service=False,
        )

    deployment = deploy()
    base = Path(deployment.install_dir)
    assert base == tmp_path / "pi" / "syncrig"
    secret_file = base / "secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert load_secret(secret_file) == secret
    settings = AgentSettings.from_file(base / "agent.json")
    assert settings.name == "cam1" and settings.role == "client" and settings.backend == "picamera2"
    assert settings.server == f"127.0.0.1:{config.fanout_port}"
    assert (base / "syncrig_agent" / "timing" / "precise_wait.c").exists()
    assert f"WorkingDirectory={base}" in (base / "syncrig-agent.service").read_text()
    # The copied package is complete: run from the install dir, the copy (not this checkout's
    # installed package) is what imports, with everything the agent needs.
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import syncrig_agent.server, syncrig_agent.client; print(syncrig_agent.__file__)",
        ],
        cwd=base,
        capture_output=True,
        text=True,
    )
    assert probe.returncode == 0, probe.stderr
    assert Path(probe.stdout.strip()).parent == base / "syncrig_agent"
    # Re-deploying updates code and settings but never writes a new secret over the old one
    # with wider permissions.
    deploy()
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600


def test_unknown_host_key_is_refused(sshd, tmp_path: Path) -> None:
    config = rig(tmp_path)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(DeployError, match="known_hosts|not found"):
        deploy_camera(
            config,
            config.cameras[0],
            b"x" * 32,
            port=sshd["port"],
            key_filename=sshd["key"],
            known_hosts=str(empty),
            install_packages=False,
            start_service=False,
        )
    assert not (tmp_path / "pi").exists()


def test_install_sh_deploys_every_camera(sshd, tmp_path: Path) -> None:
    config = rig(tmp_path)
    config_path = save_config(tmp_path / "rig.json", config)
    write_secret(tmp_path / "secret")
    result = subprocess.run(
        [
            "bash",
            str(REPO / "install.sh"),
            "--config",
            str(config_path),
            "--ssh-port",
            str(sshd["port"]),
            "--identity",
            sshd["key"],
            "--known-hosts",
            sshd["known_hosts"],
            "--no-packages",
            "--no-service",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    # Both cameras were deployed (SqueakShot's loop stopped after the first one).
    assert "cam0: installed" in result.stdout and "cam1: installed" in result.stdout
    agent = json.loads((tmp_path / "pi" / "syncrig" / "agent.json").read_text())
    assert agent["name"] in ("cam0", "cam1")  # same directory on this one "Pi": the last one wins
