"""Clock state: is this camera's CLOCK_REALTIME disciplined, by what, and how well?

One parser per source (`pmc`, `phc2sys`, `chrony`, `kernel`), the PTP two-hop verdict (`ptp`), the
readers that run the tools (`readers`), the simulated twin (`simulated`) and the background refresher
the agent's STATUS reads (`monitor`). STATUS key: `clock_sync` (a `ClockState.to_dict()` + `age_s`).
"""

from syncrig_agent.clock_state.base import SYNCHRONIZED, UNKNOWN, UNSYNCHRONIZED, ClockState, unknown
from syncrig_agent.clock_state.monitor import ClockMonitor
from syncrig_agent.clock_state.readers import (
    CLOCK_SOURCES,
    AutoReader,
    ChronyReader,
    KernelReader,
    PtpReader,
    make_reader,
)
from syncrig_agent.clock_state.simulated import SIMULATED_STATES, simulated_state

__all__ = [
    "CLOCK_SOURCES",
    "SIMULATED_STATES",
    "SYNCHRONIZED",
    "UNKNOWN",
    "UNSYNCHRONIZED",
    "AutoReader",
    "ChronyReader",
    "ClockMonitor",
    "ClockState",
    "KernelReader",
    "PtpReader",
    "make_reader",
    "simulated_state",
    "unknown",
]
