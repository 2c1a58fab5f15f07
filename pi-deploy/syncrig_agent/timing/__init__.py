"""Realtime scheduling primitives: absolute timers, clock conversion, thread priority."""

from syncrig_agent.timing.camera_clock import CameraClock, SimulatedClock, SystemClock
from syncrig_agent.timing.realtime import RealtimeSetup, enable_realtime
from syncrig_agent.timing.timerfd import MonotonicTimer
from syncrig_agent.timing.waiter import GridWaiter, Wake

__all__ = [
    "CameraClock",
    "GridWaiter",
    "MonotonicTimer",
    "RealtimeSetup",
    "SimulatedClock",
    "SystemClock",
    "Wake",
    "enable_realtime",
]
