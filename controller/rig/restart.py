"""Restart one camera's agent: on a Pi through systemd, with the one command the sudoers drop-in
deploy installed allows (`<systemctl> restart syncrig-agent.service`, run with `sudo -n` over the
checked SSH opener); in simulation the runtime is handed the simulated rig's own restart."""

from __future__ import annotations

from pathlib import Path

from controller.deploy.errors import DeployError
from controller.deploy.plan import AGENT_UNIT, DeployOptions
from controller.deploy.session import SshSession
from controller.deploy.ssh import default_known_hosts
from controller.rig.config import RigConfig


class RestartError(RuntimeError):
    pass


def restart_argv(options: DeployOptions) -> list[str]:
    """Exactly a line of the sudoers drop-in (deploy/render.py sudoers_commands), under `sudo -n`
    so a missing rule fails at once instead of asking for a password."""
    return ["sudo", "-n", options.systemctl, "restart", AGENT_UNIT]


def restart_agent_over_ssh(config: RigConfig, camera: str, options: DeployOptions) -> str:
    """Restart `camera`'s agent on its Pi; returns what systemctl said. RestartError names the
    camera and why (unreachable, host key, sudo rule missing)."""
    by_name = {c.name: c for c in config.cameras}
    if camera not in by_name:
        raise RestartError(f"no camera named {camera!r} in the rig config")
    cam = by_name[camera]
    known_hosts = Path(options.known_hosts).expanduser() if options.known_hosts else default_known_hosts()
    try:
        session = SshSession.open(
            cam.name,
            cam.host,
            cam.ssh_user,
            options.ssh_port,
            known_hosts,
            options.key_filename,
            options.connect_timeout_s,
        )
    except DeployError as exc:
        raise RestartError(f"{camera}: cannot reach {cam.host} over SSH: {exc}") from None
    try:
        return session.run(restart_argv(options), timeout=60.0)
    except DeployError as exc:
        raise RestartError(
            f"{camera}: restart refused ({exc}); the sudoers rule comes with Deploy (install.sh)"
        ) from None
    finally:
        session.close()


__all__ = ["RestartError", "restart_agent_over_ssh", "restart_argv"]
