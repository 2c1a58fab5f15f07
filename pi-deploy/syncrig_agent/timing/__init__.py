"""Realtime scheduling primitives: absolute timers, clock conversion, thread priority."""

from .camera_clock import CameraClock, SimulatedClock, SystemClock
from .realtime import RealtimeSetup, enable_realtime
from .timerfd import MonotonicTimer
from .waiter import GridWaiter, Wake

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
