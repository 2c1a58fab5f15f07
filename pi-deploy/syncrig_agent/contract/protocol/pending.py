"""The request/reply bookkeeping of one connection: fresh request ids, the requests still waiting
for a reply, matching a reply to its request by id, and failing the rest when the link closes.

One lock guards the ids, the table and its closed flag. A request's reply fields are written
under that lock before its ``done`` event is set, so a waiter that times out and then finds its
entry already taken knows the reply is there to use.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["PendingRequest", "PendingRequests"]


class PendingRequest:
    """One outstanding request. Fields are written under the table's lock before ``done`` is set."""

    __slots__ = ("done", "reply", "error", "t1", "t4", "is_ping", "heartbeat", "created")

    def __init__(self, is_ping: bool, heartbeat: bool = False) -> None:
        self.done = threading.Event()
        self.reply: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.t1: int | None = None  # wall clock just before our send (ns)
        self.t4: int | None = None  # wall clock when the reply was read (ns)
        self.is_ping = is_ping
        self.heartbeat = heartbeat  # fire-and-forget: nobody waits, so the heartbeat expires it
        self.created = time.monotonic()


class PendingRequests:
    """The requests of one connection that await a reply, by request id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._by_id: dict[int, PendingRequest] = {}
        self._closed = False

    def open(self, is_ping: bool, heartbeat: bool = False) -> tuple[int, PendingRequest] | None:
        """A new request under a fresh id; None once the table is closed."""
        with self._lock:
            if self._closed:
                return None
            rid = next(self._ids)
            pending = PendingRequest(is_ping, heartbeat)
            self._by_id[rid] = pending
        return rid, pending

    def forget(self, rid: int) -> bool:
        """Drop request ``rid`` (its send failed, or it timed out) so that a late reply matches
        nothing; False if a reply has already taken it."""
        with self._lock:
            return self._by_id.pop(rid, None) is not None

    def answer(
        self, rid: int, reply: dict[str, Any], t4: int, on_answer: Callable[[PendingRequest], None]
    ) -> PendingRequest | None:
        """Hand ``reply`` (read at ``t4``) to request ``rid`` and call ``on_answer`` with it, both
        under the lock; None if no request waits under that id. The caller sets ``done``."""
        with self._lock:
            pending = self._by_id.pop(rid, None)
            if pending is not None:
                pending.reply = reply
                pending.t4 = t4
                on_answer(pending)
        return pending

    def expire_heartbeats(self, now: float, max_age: float) -> None:
        """Drop heartbeat pings older than ``max_age`` s: they are never waited on, so nobody else
        would remove an unanswered one (a reply arriving later is dropped like any late reply)."""
        with self._lock:
            stale = [rid for rid, p in self._by_id.items() if p.heartbeat and now - p.created > max_age]
            for rid in stale:
                del self._by_id[rid]

    def close(self) -> list[PendingRequest]:
        """Refuse new requests; returns those still waiting, for the caller to fail."""
        with self._lock:
            self._closed = True
            pending = list(self._by_id.values())
            self._by_id.clear()
        return pending
