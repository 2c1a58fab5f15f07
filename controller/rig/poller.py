"""The rig's status poller: one thread asks cam0 for STATUS every poll interval and keeps the last
answer, so request handlers read a fresh snapshot and never wait on the network; it also keeps each
camera's frame rate while it records."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from controller.rig.cluster_link import ClusterLink
from syncrig_agent.contract.protocol import ConnectionClosed, RemoteError, RequestTimeout
from syncrig_agent.contract.protocol.replies import RigStatus

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0
MAX_BACKOFF_S = 5.0
# A rate is measured over at least this much of the camera's clock, so it does not jump.
RATE_WINDOW_NS = 500_000_000


@dataclass(frozen=True)
class Polled:
    """What the last poll saw (one consistent snapshot)."""

    status: RigStatus | None  # None while the link is down
    at: float | None  # this machine's time (s) when `status` arrived
    link_error: str | None
    streams: dict | None  # the live receivers' per-camera status, when a recording streams


class StatusPoller:
    def __init__(
        self,
        link: ClusterLink,
        on_poll: Callable[[], None],
        streams: Callable[[], dict | None],
        interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        """`on_poll` runs after every poll (publishing the snapshot); `streams` reads the live
        receivers' status, here, once per poll rather than per page request."""
        self.link = link
        self.on_poll = on_poll
        self.streams = streams
        self.interval_s = interval_s
        self._polled = Polled(None, None, None, None)
        self._frames_seen: dict[str, tuple[int, int]] = {}  # camera → (its clock, frames) at the rate's start
        self._fps: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="rig-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def is_alive(self) -> bool:
        """Whether the polling thread runs (it must outlive every failure of the link)."""
        return self._thread is not None and self._thread.is_alive()

    def latest(self) -> Polled:
        with self._lock:
            return self._polled

    def fps(self, camera: str) -> float:
        """The camera's frames per second as of the last polls (0 before two were far enough apart)."""
        with self._lock:
            return self._fps.get(camera, 0.0)

    def cam0_now_ns(self) -> int | None:
        """cam0's clock as of its last status, carried forward by the time since (a slow or missed
        poll must not stall a wait on it); None without a status."""
        polled = self.latest()
        if polled.status is None or polled.at is None or not polled.status.server.clock_now_ns:
            return None
        return int(polled.status.server.clock_now_ns + (time.time() - polled.at) * 1e9)

    def _loop(self) -> None:
        backoff = self.interval_s
        while not self._stopping.is_set():
            try:
                if not self.link.connected:
                    self.link.connect(timeout=3.0)
                status = self.link.status(timeout=3.0)
                streams = self.streams()
                with self._lock:
                    self._polled = Polled(status, time.time(), None, streams)
                    self._update_rates(status)
                backoff = self.interval_s
            except Exception as exc:  # noqa: BLE001 - the poller must outlive any failure of the link
                # (a handshake cut by a restarting cam0 raises protocol errors, not only OSError;
                # a malformed STATUS raises InvalidReply, a ValueError)
                if not isinstance(exc, (OSError, ConnectionClosed, RequestTimeout, RemoteError, ValueError)):
                    log.warning("status poll failed: %s: %s", type(exc).__name__, exc)
                error = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self._polled = Polled(None, self._polled.at, error, self._polled.streams)
                self.link.close()  # the next request reconnects
                backoff = min(MAX_BACKOFF_S, backoff * 2)
            try:
                self.on_poll()
            except Exception:  # noqa: BLE001
                log.exception("could not publish the rig status")
            self._stopping.wait(backoff)

    def _update_rates(self, status: RigStatus) -> None:
        # Frames per second between two statuses of the same camera, timed by that camera's own
        # clock reading in each status (a client's status reaches us through cam0's poll, so
        # our receive times would make the rate jump).
        for name, entry in status.camera_links().items():
            st = entry.status
            if st is None or st.clock_now_ns is None:
                continue
            frames, at = (st.session.frames if st.session else 0), st.clock_now_ns
            prev = self._frames_seen.get(name)
            if prev is not None and at > prev[0] and frames >= prev[1]:
                if at - prev[0] >= RATE_WINDOW_NS:
                    self._fps[name] = (frames - prev[1]) / ((at - prev[0]) / 1e9)
                    self._frames_seen[name] = (at, frames)
            else:
                self._frames_seen[name] = (at, frames)
