"""The simulated camera's clock state: what its `SimulatedClock` really is, plus a scripted
discipline state so pre-flight refusals can be exercised on the simulated rig.

`simulation.clock_sync` chooses the state: "synchronized" (default), "unsynchronized", "unknown",
or a PTP port state ("LISTENING", "UNCALIBRATED", "FAULTY", ...) reported as a PTP camera in that
state would be. The offset is the simulated clock's true offset from the host clock (configured
offset + drift × elapsed time), so an offset over the pre-flight limit is refused too.
"""

from __future__ import annotations

import time

from syncrig_agent.clock_state.base import SYNCHRONIZED, UNKNOWN, UNSYNCHRONIZED, ClockState

#: The values `simulation.clock_sync` accepts.
SIMULATED_STATES = (
    "synchronized",
    "unsynchronized",
    "unknown",
    "SLAVE",
    "MASTER",
    "UNCALIBRATED",
    "LISTENING",
    "FAULTY",
    "DISABLED",
    "INITIALIZING",
)


def simulated_state(scripted: str, clock_now_ns: int, realtime_ns: int | None = None) -> ClockState:
    """`clock_now_ns`: the simulated camera clock read just now; its difference from the host clock
    is the camera's offset from the (simulated) shared time source."""
    real = time.time_ns() if realtime_ns is None else realtime_ns
    offset = int(clock_now_ns - real)
    if scripted == "unknown":
        return ClockState(source="simulated", state=UNKNOWN, detail="simulated: clock state unknown")
    if scripted in ("synchronized", "SLAVE", "MASTER"):
        port = scripted if scripted != "synchronized" else None
        return ClockState(
            source="simulated",
            state=SYNCHRONIZED,
            offset_ns=offset,
            port_state=port,
            servo_state="locked",
            local_reference=scripted == "MASTER",
            detail=f"simulated: locked, clock offset {offset / 1e3:+.1f} µs (configured offset + drift)",
        )
    if scripted == "unsynchronized":
        return ClockState(
            source="simulated",
            state=UNSYNCHRONIZED,
            offset_ns=offset,
            servo_state="unlocked",
            detail="simulated: clock not synchronised (simulation.clock_sync = unsynchronized)",
        )
    return ClockState(
        source="simulated",
        state=UNSYNCHRONIZED,
        offset_ns=offset,
        port_state=scripted,
        servo_state="unlocked",
        detail=f"simulated: PTP port {scripted}",
    )
