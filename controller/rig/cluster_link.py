"""The desktop's one authenticated connection to cam0.

Every command carries a request id; a reply that arrives after its request timed out is dropped by
the connection and can never be read as the answer to the next command (SqueakShot's race)."""

from __future__ import annotations

import logging
import threading

from syncrig_agent.contract.protocol import (
    START,
    STATUS,
    STOP,
    Connection,
    ConnectionClosed,
    measure_clock_offset,
)
from syncrig_agent.contract.protocol.links import connect_peer
from syncrig_agent.contract.protocol.replies import RigStatus, StartReply, StatusReply, StopReply

log = logging.getLogger(__name__)


class ClusterLink:
    def __init__(
        self,
        address: tuple[str, int],
        secret: bytes,
        name: str = "desktop",
        heartbeat_interval_s: float = 1.0,
        heartbeat_timeout_s: float = 10.0,
    ) -> None:
        self.address = address
        self.secret = secret
        self.name = name
        self.heartbeat_interval_s = heartbeat_interval_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.conn: Connection | None = None
        self.welcome: dict | None = None
        self._lock = threading.Lock()

    def connect(self, timeout: float = 5.0) -> dict:
        with self._lock:
            if self.conn is not None and not self.conn.closed:
                return self.welcome or {}
            sock, welcome = connect_peer(
                self.address, self.secret, {"name": self.name, "role": "controller"}, timeout=timeout
            )
            self.conn = Connection(
                sock,
                peer_name=f"cam0@{self.address[0]}:{self.address[1]}",
                heartbeat_interval=self.heartbeat_interval_s,
                heartbeat_timeout=self.heartbeat_timeout_s,
            )
            self.conn.start()
            self.welcome = welcome
            return welcome

    @property
    def connected(self) -> bool:
        return self.conn is not None and not self.conn.closed

    def request(self, msg: dict, timeout: float = 10.0) -> dict:
        if not self.connected:
            self.connect()
        assert self.conn is not None
        return self.conn.request(msg, timeout)

    def status(self, timeout: float = 5.0) -> RigStatus:
        return StatusReply.from_dict(self.request({"type": STATUS}, timeout)).status

    def start(
        self,
        session_id: str,
        period_ns: int,
        fps: float,
        files: dict[str, str],
        frames: int | None = None,
        timeout: float = 20.0,
        streams: dict[str, str] | None = None,
    ) -> StartReply:
        """Start on cam0's next T0; with `frames`, every camera stops by itself after that many slots;
        `streams` maps cameras to the "HOST:PORT" of their live-stream receivers."""
        msg = {"type": START, "session_id": session_id, "period_ns": period_ns, "fps": fps, "files": files}
        if frames is not None:
            msg["frames"] = frames
        if streams:
            msg["streams"] = streams
        return StartReply.from_dict(self.request(msg, timeout))

    def stop(self, at_ns: int | None = None, timeout: float = 60.0) -> StopReply:
        msg: dict = {"type": STOP}
        if at_ns is not None:
            msg["at_ns"] = at_ns
        return StopReply.from_dict(self.request(msg, timeout))

    def clock_offset(self, samples: int = 8) -> dict:
        """cam0's clock relative to this machine's, NTP-style over the control link."""
        if not self.connected:
            self.connect()
        assert self.conn is not None
        return measure_clock_offset(self.conn, samples=samples)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close("controller closing")
            self.conn = None

    def __enter__(self) -> ClusterLink:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["ClusterLink", "ConnectionClosed"]
