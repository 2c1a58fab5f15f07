"""A small publish/subscribe bus: rig status and job progress go out to every open page as
server-sent events. Publishing never blocks: a subscriber that stops reading loses its oldest
events, not the publisher's time."""

from __future__ import annotations

import itertools
import json
import queue
import threading
from collections.abc import Iterator

# Per-subscriber backlog; a stalled page drops old events rather than growing without bound.
SUBSCRIBER_BACKLOG = 256
# An SSE comment at least this often keeps proxies and the browser from timing the stream out.
KEEPALIVE_S = 15.0


class Subscription:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self.queue: queue.Queue[tuple[int, str, dict] | None] = queue.Queue(SUBSCRIBER_BACKLOG)
        self.dropped = 0

    def offer(self, event: tuple[int, str, dict] | None) -> None:
        while True:
            try:
                self.queue.put_nowait(event)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    def close(self) -> None:
        self._bus.unsubscribe(self)
        self.offer(None)

    def sse(self, keepalive_s: float = KEEPALIVE_S) -> Iterator[str]:
        """Server-sent-event text, until the bus closes or the client goes away."""
        try:
            yield "retry: 2000\n\n"
            while True:
                try:
                    item = self.queue.get(timeout=keepalive_s)
                except queue.Empty:
                    yield ": keepalive\n\n"
                    continue
                if item is None:
                    return
                event_id, kind, data = item
                yield f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, default=str)}\n\n"
        finally:
            self._bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def subscribe(self) -> Subscription:
        sub = Subscription(self)
        with self._lock:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

    def publish(self, kind: str, data: dict) -> None:
        event = (next(self._ids), kind, data)
        with self._lock:
            subs = list(self._subs)
        for sub in subs:
            sub.offer(event)

    def close(self) -> None:
        with self._lock:
            subs = list(self._subs)
            self._subs.clear()
        for sub in subs:
            sub.offer(None)
