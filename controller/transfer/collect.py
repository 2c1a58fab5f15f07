"""Getting a session's footage onto the desktop, as one object the recorder calls twice:
before START (start the live receivers → stream destinations) and after STOP (wait for every
stream's end, stop the receivers, pull + verify + gap-fill every camera's raw files)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from controller.progress import Progress
from controller.receivers import ReceiverManager
from controller.transfer.pull import TransportFactory, pull_session
from controller.transfer.transports import LocalTransport, SftpTransport

if TYPE_CHECKING:
    from controller.rig.cameras import CameraInfo
    from controller.rig.config import RigConfig

log = logging.getLogger(__name__)


def local_sources(cameras: list[CameraInfo]) -> dict[str, TransportFactory]:
    """Cameras whose data directory is reachable here (simulation): the local transport."""
    return {c.name: (lambda root=c.data_dir: LocalTransport(root)) for c in cameras if c.data_dir is not None}


def sftp_sources(
    config: RigConfig,
    cameras: list[str] | None = None,
    port: int = 22,
    key_filename: str | None = None,
    known_hosts: str | None = None,
) -> dict[str, TransportFactory]:
    """A real rig: each camera's Pi over SFTP (its host and user from the rig config, the data
    directory `pi_data_dir`). Unknown camera names are a ValueError."""
    by_name = {c.name: c for c in config.cameras}
    names = list(by_name) if cameras is None else cameras
    unknown = [c for c in names if c not in by_name]
    if unknown:
        raise ValueError(f"camera(s) not in the rig config: {', '.join(unknown)}")
    return {
        name: (
            lambda cam=by_name[name]: SftpTransport(
                cam.host,
                config.pi_data_dir,
                cam.ssh_user,
                port=port,
                key_filename=key_filename,
                known_hosts=known_hosts,
            )
        )
        for name in names
    }


@dataclass
class Collection:
    """What happens to a session's footage around a recording.

    `stream`: run one live receiver per camera (needs `secret_file`, the rig's shared secret).
    `sources`: how to reach each camera's Pi after the recording (default: local data dirs).
    """

    stream: bool = False
    secret_file: Path | None = None
    bind_host: str = "127.0.0.1"
    advertise_host: str | None = None
    segment_seconds: float = 2.0
    sources: dict[str, TransportFactory] | None = None
    stream_end_timeout_s: float = 15.0
    # A camera STOP did not reach may still be writing (it records until its heartbeat timeout):
    # the pull waits this long at most for it to close or fall still.
    settle_timeout_s: float = 30.0
    progress: Progress | None = None
    receivers: ReceiverManager | None = field(default=None, init=False)

    def start_streams(self, session_dir: Path, cameras: list[str]) -> dict[str, str] | None:
        """Start the receivers; the destinations for START (None when not streaming)."""
        if not self.stream:
            return None
        if self.secret_file is None:
            raise ValueError("streaming needs the rig's shared secret file")
        self.receivers = ReceiverManager(
            session_dir,
            cameras,
            self.secret_file,
            bind_host=self.bind_host,
            advertise_host=self.advertise_host,
            segment_seconds=self.segment_seconds,
        )
        return self.receivers.start()

    def abort(self) -> None:
        """START failed: stop the receivers (their empty files stay; nothing is deleted)."""
        if self.receivers is not None:
            self.receivers.stop(timeout=5.0)

    def finish(
        self,
        session_dir: Path,
        cameras: list[CameraInfo],
        t0_ns: int | None = None,
        lost: set[str] | frozenset[str] = frozenset(),
    ) -> dict:
        """After STOP: streams ended → receivers stopped → pull, verify, gap-fill. JSON result.
        `lost` cameras (STOP could not reach them) send no END: their streams are not waited for.
        `t0_ns` rebuilds a lost camera's `.pts` (transfer/reconcile.py)."""
        stream_status = None
        if self.receivers is not None:
            if not self.receivers.wait_complete(self.stream_end_timeout_s, skip=lost):
                log.warning(
                    "not every stream ended within %.0f s; stopping the receivers", self.stream_end_timeout_s
                )
            stream_status = self.receivers.stop()
        sources = self.sources if self.sources is not None else local_sources(cameras)
        result = (
            pull_session(
                session_dir, sources, progress=self.progress, t0_ns=t0_ns, settle_s=self.settle_timeout_s
            )
            if sources
            else {"ok": True, "cameras": {}}
        )
        result["stream"] = stream_status
        missing = [c.name for c in cameras if c.name not in sources]
        if missing:
            result["not_pulled"] = missing
        return result
