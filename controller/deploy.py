"""Deploying the agent to the Pis over SSH (install.sh → `syncrig deploy`).

Everything goes through paramiko: files by SFTP, commands as fixed programs whose arguments are
each quoted with shlex.quote from values the config validation already restricted — no shell
string is ever built from unvalidated input. Host keys must be known (~/.ssh/known_hosts) unless
the user explicitly accepts new ones. The loop over cameras reads nothing from stdin, so every
camera is deployed (SqueakShot's installer let ssh swallow the list after the first camera).
"""

from __future__ import annotations

import json
import logging
import posixpath
import shlex
from dataclasses import dataclass
from pathlib import Path

from syncrig_agent.settings import AgentSettings

from .rig_config import CameraEntry, RigConfig

log = logging.getLogger(__name__)

PI_DEPLOY = Path(__file__).resolve().parent.parent / "pi-deploy"
PI_PACKAGES = ("numpy>=1.24", "av>=12.0")


@dataclass
class CameraDeployment:
    camera: CameraEntry
    install_dir: str  # absolute on the Pi
    agent_settings: dict
    unit: str


def agent_settings_for(config: RigConfig, cam: CameraEntry, install_dir: str, data_dir: str) -> dict:
    server = config.server
    settings = AgentSettings(
        name=cam.name,
        role=cam.role,
        data_dir=data_dir,
        secret_file=posixpath.join(install_dir, "secret"),
        listen=f"0.0.0.0:{config.control_port}",
        fanout_listen=f"0.0.0.0:{config.fanout_port}",
        preview_listen=f"0.0.0.0:{cam.preview_port}",
        server=f"{server.host}:{config.fanout_port}",
        host_label=cam.host,
        backend="picamera2",
        width=config.width,
        height=config.height,
        bitrate=config.bitrate,
        keyframe_interval_s=config.keyframe_interval_s,
        heartbeat_interval_s=config.heartbeat_interval_s,
        heartbeat_timeout_s=config.heartbeat_timeout_s,
    ).validate()
    data = settings.as_dict()
    data.pop("simulation", None)
    return data


def render_unit(user: str, install_dir: str) -> str:
    template = (PI_DEPLOY / "systemd" / "syncrig-agent.service").read_text()
    return template.replace("@USER@", user).replace("@DIR@", install_dir)


def _expand(path: str, home: str) -> str:
    return posixpath.join(home, path[2:]) if path.startswith("~/") else path


def plan(config: RigConfig, home_of: dict[str, str]) -> list[CameraDeployment]:
    """What would be deployed where (home directories resolved per camera)."""
    out = []
    for cam in config.validate().cameras:
        home = home_of[cam.name]
        install_dir = _expand(config.pi_install_dir, home)
        data_dir = _expand(config.pi_data_dir, home)
        out.append(
            CameraDeployment(
                cam,
                install_dir,
                agent_settings_for(config, cam, install_dir, data_dir),
                render_unit(cam.ssh_user, install_dir),
            )
        )
    return out


def package_files() -> list[tuple[Path, str]]:
    """(local file, path relative to the install dir) for the agent package."""
    root = PI_DEPLOY / "syncrig_agent"
    files = sorted(p for p in root.rglob("*") if p.suffix in (".py", ".c"))
    return [(p, posixpath.join("syncrig_agent", *p.relative_to(root).parts)) for p in files]


class DeployError(RuntimeError):
    pass


def _run(client, argv: list[str], timeout: float = 600.0) -> str:
    command = " ".join(shlex.quote(a) for a in argv)
    _stdin, stdout, stderr = client.exec_command(command, timeout=timeout)
    _stdin.close()  # never let a remote command read from us
    out = stdout.read().decode(errors="replace")
    err = stderr.read().decode(errors="replace")
    status = stdout.channel.recv_exit_status()
    if status != 0:
        raise DeployError(f"`{command}` failed ({status}): {err.strip() or out.strip()}")
    return out


def _mkdirs(sftp, path: str) -> None:
    parts = path.strip("/").split("/")
    current = "/" if path.startswith("/") else ""
    for part in parts:
        current = posixpath.join(current, part)
        try:
            sftp.stat(current)
        except FileNotFoundError:
            sftp.mkdir(current)


def deploy_camera(
    config: RigConfig,
    cam: CameraEntry,
    secret: bytes,
    port: int = 22,
    key_filename: str | None = None,
    accept_new_host_keys: bool = False,
    install_packages: bool = True,
    start_service: bool = True,
    known_hosts: str | None = None,
) -> CameraDeployment:
    """Copy the agent, its settings and the secret to one camera; optionally venv + systemd unit."""
    import paramiko

    client = paramiko.SSHClient()
    known = Path(known_hosts) if known_hosts else Path.home() / ".ssh" / "known_hosts"
    if known_hosts is None:
        client.load_system_host_keys()
    if known.exists():
        client.load_host_keys(str(known))
    if accept_new_host_keys:
        log.warning("accepting unknown host keys (trust on first use) for %s", cam.host)
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    else:
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
    try:
        client.connect(
            cam.host.strip("[]"),
            port=port,
            username=cam.ssh_user,
            key_filename=key_filename,
            timeout=15,
            allow_agent=True,
            look_for_keys=key_filename is None,
        )
    except (paramiko.SSHException, OSError) as exc:
        raise DeployError(f"{cam.name} ({cam.ssh_user}@{cam.host}): {exc}") from None
    if accept_new_host_keys:
        known.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(known))  # trust on *first* use: remembered from now on
    try:
        sftp = client.open_sftp()
        home = sftp.normalize(".")
        (deployment,) = [
            d for d in plan(config, {c.name: home for c in config.cameras}) if d.camera.name == cam.name
        ]
        base = deployment.install_dir
        for local, rel in package_files():
            _mkdirs(sftp, posixpath.dirname(posixpath.join(base, rel)))
            sftp.put(str(local), posixpath.join(base, rel))
        _mkdirs(sftp, deployment.agent_settings["data_dir"])
        with sftp.open(posixpath.join(base, "agent.json"), "w") as fh:
            fh.write(json.dumps(deployment.agent_settings, indent=2) + "\n")
        secret_path = posixpath.join(base, "secret")
        with sftp.open(secret_path, "w") as fh:
            fh.chmod(0o600)  # before any byte of the secret is written
            fh.write(secret + b"\n")
        unit_path = posixpath.join(base, "syncrig-agent.service")
        with sftp.open(unit_path, "w") as fh:
            fh.write(deployment.unit)
        if install_packages:
            _run(client, ["python3", "-m", "venv", "--system-site-packages", posixpath.join(base, "venv")])
            _run(
                client,
                [posixpath.join(base, "venv", "bin", "python"), "-m", "pip", "install", "-q", *PI_PACKAGES],
            )
        if start_service:
            _run(
                client,
                [
                    "sudo",
                    "-n",
                    "install",
                    "-m",
                    "0644",
                    unit_path,
                    "/etc/systemd/system/syncrig-agent.service",
                ],
            )
            _run(client, ["sudo", "-n", "systemctl", "daemon-reload"])
            _run(client, ["sudo", "-n", "systemctl", "enable", "syncrig-agent.service"])
            _run(client, ["sudo", "-n", "systemctl", "restart", "syncrig-agent.service"])
        return deployment
    finally:
        client.close()
