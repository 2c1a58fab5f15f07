"""Round-trip and clock-offset statistics of one link, from NTP-style ping timestamps.

Each ping yields (t1 our send, t2 peer receive, t3 peer send, t4 our receive). The heartbeat
pings feed a `LinkTiming` continuously (lead choice, STATUS); `measure_clock_offset` takes a
dedicated burst for the pre-flight clock check — over the control link, not an SSH `date`.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Protocol

from syncrig_agent.contract.protocol.errors import RequestTimeout

ClockSample = tuple[int, int, int, int]

RTT_HISTORY = 64  # samples kept
CLOCK_WINDOW = 16  # recent samples the offset estimate chooses from


def rtt_of(sample: ClockSample) -> int:
    t1, t2, t3, t4 = sample
    return (t4 - t1) - (t3 - t2)


def offset_of(sample: ClockSample) -> int:
    """Peer clock minus ours."""
    t1, t2, t3, t4 = sample
    return ((t2 - t1) + (t3 - t4)) // 2


class Pingable(Protocol):
    """What the clock check needs of a link (a `Connection` is one): its peer's name and a ping."""

    peer_name: str

    def ping(self, timeout: float = 1.0) -> ClockSample: ...


class LinkTiming:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rtt_samples: deque[int] = deque(maxlen=RTT_HISTORY)
        self._samples: deque[ClockSample] = deque(maxlen=RTT_HISTORY)

    def record(self, sample: ClockSample) -> bool:
        """Keep a sample unless it is impossible (negative span: a clock stepped or the peer lies —
        such a sample would win the min-RTT selection)."""
        t1, t2, t3, t4 = sample
        if rtt_of(sample) < 0 or t3 < t2:
            return False
        with self._lock:
            self.rtt_samples.append(rtt_of(sample))
            self._samples.append(sample)
        return True

    def rtt_ns_max(self) -> int | None:
        """Largest of the recent round-trip times (ns), or None before the first sample."""
        with self._lock:
            return max(self.rtt_samples) if self.rtt_samples else None

    def rtt_ns_median(self) -> int | None:
        """Median (lower middle for an even count) of recent round-trip times (ns), or None."""
        with self._lock:
            values = sorted(self.rtt_samples)
        return values[(len(values) - 1) // 2] if values else None

    def samples(self) -> list[ClockSample]:
        with self._lock:
            return list(self._samples)

    def clock_offset_ns(self) -> int | None:
        """Peer clock minus ours (ns), from the lowest-RTT recent sample; None if none.

        The lowest-RTT sample has the least room for asymmetric queueing delay, which is what
        limits NTP's offset estimate.
        """
        recent = self.samples()[-CLOCK_WINDOW:]
        if not recent:
            return None
        return offset_of(min(recent, key=rtt_of))


def measure_clock_offset(conn: Pingable, samples: int = 8, timeout: float = 1.0) -> dict[str, int]:
    """Pre-flight clock check: ``samples`` sequential pings over the link.

    Returns ``{"offset_ns": peer clock minus ours, "rtt_ns": RTT of the sample used,
    "samples": number of pings answered}`` from the lowest-RTT sample. Pings that time out
    are skipped; RequestTimeout is raised only if none was answered.
    """
    if samples < 1:
        raise ValueError("samples must be at least 1")
    got: list[ClockSample] = []
    for _ in range(samples):
        try:
            sample = conn.ping(timeout)
        except RequestTimeout:
            continue
        if rtt_of(sample) >= 0:
            got.append(sample)
    if not got:
        raise RequestTimeout(f"no usable ping reply from {conn.peer_name} in {samples} attempts")
    best = min(got, key=rtt_of)
    return {"offset_ns": offset_of(best), "rtt_ns": rtt_of(best), "samples": len(got)}
