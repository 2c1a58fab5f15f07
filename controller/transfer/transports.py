"""How the desktop reaches a Pi's recordings: SFTP over SSH (paramiko), or a local directory.

Both expose the same small interface, so pull, verification and deletion run one code path; in
simulation the "Pi" is the agent's own data directory (LocalTransport) or this machine's sshd on
loopback (SftpTransport, in tests). Paths are always `<session id>/...` built from validated ids,
relative to the Pi's data directory; SHA-256 is computed on the Pi side (`sha256sum` over SSH), so
what is compared is what the Pi holds, not a second download of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import shlex
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from controller.deploy.errors import DeployError
from controller.deploy.ssh import open_ssh_client
from syncrig_agent.contract.ids import InvalidName

HASH_CHUNK = 1 << 20
READV_BATCH_BYTES = 32 << 20


class TransportError(RuntimeError):
    pass


def _check_rel(rel: str) -> str:
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise InvalidName(f"not a relative recording path: {rel!r}")
    return rel


def sha256_file(path: Path | str, start: int = 0) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(start)
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Transport(ABC):
    """One camera's data directory on its Pi."""

    label: str

    @abstractmethod
    def size(self, rel: str) -> int | None:
        """Bytes, or None if the file does not exist."""

    @abstractmethod
    def sha256(self, rel: str) -> str:
        """SHA-256 (hex) computed where the file lives."""

    def start_sha256(self, rel: str) -> Callable[[], str]:
        """Start hashing on the Pi now; the returned call waits for the digest. Hashing runs while
        the file is being downloaded, so it costs no extra wall time."""
        result: dict[str, str | BaseException] = {}

        def work() -> None:
            try:
                result["sha"] = self.sha256(rel)
            except BaseException as exc:  # handed to the caller of wait()
                result["error"] = exc

        thread = threading.Thread(target=work, name=f"sha256 {rel}", daemon=True)
        thread.start()

        def wait() -> str:
            thread.join()
            if "error" in result:
                raise result["error"]  # type: ignore[misc]
            return result["sha"]  # type: ignore[return-value]

        return wait

    @abstractmethod
    def open(self, rel: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        """A binary reader positioned at `offset` (`length`: how much will be read, for prefetch)."""

    def read_ranges(self, rel: str, ranges: list[tuple[int, int]]) -> Iterator[bytes]:
        """The bytes of each (offset, length), in order (gap fill reads many small ranges)."""
        with self.open(rel) as fh:
            for offset, length in ranges:
                fh.seek(offset)
                data = fh.read(length)
                if len(data) != length:
                    raise TransportError(f"{self.label}: {rel} ended before {offset + length}")
                yield data

    @abstractmethod
    def remove(self, rel: str) -> None: ...

    @abstractmethod
    def rmdir(self, rel: str) -> bool:
        """Remove an empty directory; False if it is not empty or missing."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LocalTransport(Transport):
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.label = f"local:{self.root}"

    def _path(self, rel: str) -> Path:
        return self.root / _check_rel(rel)

    def size(self, rel: str) -> int | None:
        try:
            return self._path(rel).stat().st_size
        except FileNotFoundError:
            return None

    def sha256(self, rel: str) -> str:
        return sha256_file(self._path(rel))

    def open(self, rel: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        fh = open(self._path(rel), "rb")
        fh.seek(offset)
        return fh

    def remove(self, rel: str) -> None:
        self._path(rel).unlink()

    def rmdir(self, rel: str) -> bool:
        try:
            self._path(rel).rmdir()
            return True
        except OSError:
            return False


class _SftpReader:
    """paramiko raises SSHException/EOFError when the link drops; callers see TransportError."""

    def __init__(self, fh, label: str) -> None:
        self._fh = fh
        self._label = label

    def read(self, n: int = -1) -> bytes:
        import paramiko

        try:
            return self._fh.read(n)
        except (paramiko.SSHException, EOFError) as exc:
            raise TransportError(f"{self._label}: connection lost: {exc}") from None

    def close(self) -> None:
        import paramiko

        with contextlib.suppress(paramiko.SSHException, EOFError, OSError):
            self._fh.close()

    def __enter__(self) -> _SftpReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SftpTransport(Transport):
    """A Pi over SSH, opened exactly as deploy opens it (deploy/ssh.py): host keys must be in
    known_hosts (default ~/.ssh/known_hosts); an unknown one is refused with its fingerprint
    until deploy's confirmation remembered it, a changed one is always refused."""

    def __init__(
        self,
        host: str,
        root: str,
        username: str,
        port: int = 22,
        key_filename: str | None = None,
        known_hosts: str | None = None,
        timeout: float = 15.0,
    ) -> None:
        import paramiko

        self.label = f"sftp:{username}@{host}:{port}{root}"
        self.root = root
        known = Path(known_hosts).expanduser() if known_hosts else None
        try:
            self.client = open_ssh_client(host, port, username, known, key_filename, timeout)
        except DeployError as exc:  # host key unknown or changed, unreachable, login refused
            raise TransportError(f"{self.label}: {exc}") from None
        try:
            self.sftp = self.client.open_sftp()
            if self.root.startswith("~/"):
                self.root = posixpath.join(self.sftp.normalize("."), self.root[2:])
        except (paramiko.SSHException, OSError) as exc:
            self.client.close()
            raise TransportError(f"{self.label}: {exc}") from None

    def _path(self, rel: str) -> str:
        return posixpath.join(self.root, _check_rel(rel))

    def size(self, rel: str) -> int | None:
        try:
            return int(self.sftp.stat(self._path(rel)).st_size or 0)
        except FileNotFoundError:
            return None
        except (OSError, EOFError) as exc:
            raise TransportError(f"{self.label}: stat {rel}: {exc}") from None

    def sha256(self, rel: str) -> str:
        return self.start_sha256(rel)()

    def start_sha256(self, rel: str) -> Callable[[], str]:
        # A fixed program; the one argument is quoted and was built from validated ids only.
        # The command runs on the Pi while we download; wait() collects its answer.
        command = f"sha256sum -- {shlex.quote(self._path(rel))}"
        stdin, stdout, stderr = self.client.exec_command(command, timeout=3600)
        stdin.close()

        def wait() -> str:
            out = stdout.read().decode("ascii", errors="replace")
            err = stderr.read().decode(errors="replace")
            status = stdout.channel.recv_exit_status()
            digest = out.split(" ", 1)[0].lstrip("\\")
            if status != 0 or len(digest) != 64:
                raise TransportError(
                    f"{self.label}: sha256sum {rel} failed ({status}): {err.strip() or out.strip()}"
                )
            return digest

        return wait

    def open(self, rel: str, offset: int = 0, length: int | None = None) -> BinaryIO:
        import paramiko

        try:
            fh = self.sftp.open(self._path(rel), "rb")
            fh.seek(offset)
            if length is None or length > HASH_CHUNK:
                # Pipelined reads: without prefetch every 32 KiB costs a round trip.
                size = self.size(rel) or 0
                fh.prefetch(min(size, offset + length) if length is not None else size)
        except (paramiko.SSHException, EOFError) as exc:
            raise TransportError(f"{self.label}: open {rel}: {exc}") from None
        return _SftpReader(fh, f"{self.label}: {rel}")  # type: ignore[return-value]

    def read_ranges(self, rel: str, ranges: list[tuple[int, int]]) -> Iterator[bytes]:
        # One open file and paramiko's readv, which pipelines the requests: a round trip per
        # batch, not per range. Batches bound what is buffered ahead of the consumer.
        import paramiko

        try:
            with self.sftp.open(self._path(rel), "rb") as fh:
                batch: list[tuple[int, int]] = []
                for item in [*ranges, None]:
                    if item is not None:
                        batch.append(item)
                    if batch and (item is None or sum(n for _, n in batch) >= READV_BATCH_BYTES):
                        for (offset, length), data in zip(batch, fh.readv(batch), strict=True):
                            if len(data) != length:
                                raise TransportError(f"{self.label}: {rel} ended before {offset + length}")
                            yield data
                        batch = []
        except (paramiko.SSHException, EOFError) as exc:
            raise TransportError(f"{self.label}: reading {rel}: {exc}") from None

    def remove(self, rel: str) -> None:
        self.sftp.remove(self._path(rel))

    def rmdir(self, rel: str) -> bool:
        try:
            self.sftp.rmdir(self._path(rel))
            return True
        except OSError:
            return False

    def close(self) -> None:
        self.client.close()
