"""The one way the desktop opens SSH to a Pi, for deploy (deploy/session.py) and for pull over SFTP
(transfer/transports.py): one known_hosts file, one host-key policy (hostkeys.StrictHostKeyPolicy).
A host missing from known_hosts is refused with its fingerprint until someone confirmed it (deploy's
prompt, the UI's Trust button or --accept-new-host-keys add it to that file); a key that differs
from the remembered one is always refused."""

from __future__ import annotations

from pathlib import Path

from controller.deploy.errors import DeployError
from controller.deploy.hostkeys import (
    HostKeyChanged,
    HostKeyUnknown,
    StrictHostKeyPolicy,
    changed_message,
    fingerprint,
)


def default_known_hosts() -> Path:
    """OpenSSH's own file, so a Pi trusted with `ssh` is trusted here and the other way round."""
    return Path.home() / ".ssh" / "known_hosts"


def open_ssh_client(
    host: str,
    port: int,
    user: str,
    known_hosts: Path | None = None,
    key_filename: str | None = None,
    timeout: float = 15.0,
    camera: str = "",
):  # noqa: ANN201 (a connected paramiko.SSHClient)
    """Log in as `user` at host:port after checking the host key against `known_hosts` (default:
    ~/.ssh/known_hosts). Raises HostKeyUnknown, HostKeyChanged, or DeployError for anything else
    (unreachable, authentication refused) — each naming the host."""
    import paramiko

    known_hosts = known_hosts or default_known_hosts()
    client = paramiko.SSHClient()
    if known_hosts.exists():
        client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(StrictHostKeyPolicy(camera or host, known_hosts))
    try:
        client.connect(
            host.strip("[]"),
            port=port,
            username=user,
            key_filename=key_filename,
            timeout=timeout,
            banner_timeout=timeout,
            auth_timeout=timeout,
            allow_agent=key_filename is None,
            look_for_keys=key_filename is None,
        )
    except (HostKeyUnknown, HostKeyChanged):
        client.close()
        raise
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyChanged(
            changed_message(
                exc.hostname,
                exc.key.get_name(),
                fingerprint(exc.key),
                {exc.expected_key.get_name(): exc.expected_key},
                known_hosts,
            )
        ) from None
    except (paramiko.SSHException, OSError) as exc:
        client.close()
        raise DeployError(f"cannot log in as {user}@{host}:{port}: {exc}") from None
    return client
