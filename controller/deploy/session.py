"""One SSH session to a Pi (paramiko): commands as argument vectors, files by SFTP.

A command is a fixed program and arguments, each quoted with shlex.quote, never a shell string
assembled from values; its stdin is closed at once, so nothing on the Pi can read from us (the
SqueakShot installer's ssh swallowed the camera list after the first camera)."""

from __future__ import annotations

import posixpath
import shlex
from pathlib import Path

from controller.deploy.errors import RemoteCommandError
from controller.deploy.ssh import open_ssh_client


class SshSession:
    def __init__(self, client) -> None:  # noqa: ANN001 (paramiko.SSHClient)
        self.client = client
        self._sftp = None

    @classmethod
    def open(
        cls,
        camera: str,
        host: str,
        user: str,
        port: int,
        known_hosts: Path,
        key_filename: str | None = None,
        timeout: float = 15.0,
    ) -> SshSession:
        """Log in through the one checked opener (deploy/ssh.py)."""
        return cls(open_ssh_client(host, port, user, known_hosts, key_filename, timeout, camera))

    @property
    def sftp(self):  # noqa: ANN201
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
        return self._sftp

    def home(self) -> str:
        return self.sftp.normalize(".")

    def run(self, argv: list[str], timeout: float = 900.0) -> str:
        command = " ".join(shlex.quote(a) for a in argv)
        stdin, stdout, stderr = self.client.exec_command(command, timeout=timeout)
        stdin.close()
        stdin.channel.shutdown_write()
        out = stdout.read().decode(errors="replace")
        err = stderr.read().decode(errors="replace")
        status = stdout.channel.recv_exit_status()
        if status != 0:
            detail = (err.strip() or out.strip())[-2000:]
            raise RemoteCommandError(f"`{command}` exited {status}: {detail}")
        return out

    def exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
        except FileNotFoundError:
            return False
        return True

    def mkdirs(self, path: str, mode: int = 0o755) -> None:
        current = "/" if path.startswith("/") else ""
        for part in path.strip("/").split("/"):
            current = posixpath.join(current, part)
            if not self.exists(current):
                self.sftp.mkdir(current, mode)

    def put_bytes(self, data: bytes, path: str, mode: int = 0o644) -> None:
        """Write through a temporary name with its final mode set before the first byte, then
        rename over the old file: a reader never sees a half-written or wider-readable file."""
        tmp = f"{path}.part"
        with self.sftp.open(tmp, "wb") as fh:
            fh.chmod(mode)
            fh.write(data)
        self.sftp.posix_rename(tmp, path)

    def put_file(self, local: Path, path: str, mode: int = 0o644) -> None:
        tmp = f"{path}.part"
        self.sftp.put(str(local), tmp)
        self.sftp.chmod(tmp, mode)
        self.sftp.posix_rename(tmp, path)

    def close(self) -> None:
        if self._sftp is not None:
            self._sftp.close()
        self.client.close()
