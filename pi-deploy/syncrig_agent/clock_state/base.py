"""What an agent knows about its own clock: the `clock_sync` entry of STATUS.

One record whatever disciplines the clock (ptp4l + phc2sys, chrony, a plain NTP daemon seen only
through the kernel, nothing, or the simulation), so the controller, the manifest and pre-flight
read one shape. Offsets are "this camera's CLOCK_REALTIME minus its time source" in ns, the sign
convention of ptp4l's `master_offset` (chrony's "System time ... slow" is turned around to match).

`state` is one of three words, never a guess:
- "synchronized": the daemon says its servo is locked to a present reference,
- "unsynchronized": it says it is not (no master, converging, not running, stale),
- "unknown": nothing readable said either way (`detail` says why).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

SYNCHRONIZED = "synchronized"
UNSYNCHRONIZED = "unsynchronized"
UNKNOWN = "unknown"

#: Where a reading came from.
SOURCES = ("ptp", "chrony", "ntp", "none", "simulated")


@dataclass
class ClockState:
    source: str  # one of SOURCES, or "unknown" when nothing could be read
    state: str  # SYNCHRONIZED | UNSYNCHRONIZED | UNKNOWN
    offset_ns: int | None = None  # this clock − its time source, as the daemon last measured it
    path_delay_ns: int | None = None  # one-way network delay to the master (PTP mean path delay)
    port_state: str | None = None  # PTP port state: SLAVE, MASTER, UNCALIBRATED, LISTENING, FAULTY ...
    servo_state: str | None = None  # "locked" / "unlocked" / "stepping" / chrony leap status
    grandmaster: str | None = None  # PTP grandmaster identity; chrony: the reference (name or address)
    local_reference: bool = False  # synchronised to itself (a grandmaster, chrony's `local`)
    error_bound_ns: int | None = None  # the daemon's or kernel's bound on |offset| where it gives one
    detail: str = ""  # one human sentence: why this state
    components: dict = field(default_factory=dict)  # per-daemon numbers (ptp4l, phc2sys, kernel ...)
    read_at: float = field(default_factory=time.time)  # Unix seconds of the reading

    @property
    def synchronized(self) -> bool | None:
        return {SYNCHRONIZED: True, UNSYNCHRONIZED: False}.get(self.state)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["synchronized"] = self.synchronized
        return data


def unknown(source: str, reason: str, **kwargs) -> ClockState:
    """A reading that says nothing either way, with the reason."""
    return ClockState(source=source, state=UNKNOWN, detail=reason, **kwargs)


def parse_int(text: str) -> int:
    """'-139.0' / '85' / '+12' → int (pmc prints some integers with a '.0')."""
    return round(float(text))
