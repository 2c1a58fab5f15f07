"""TTL lines on a Pi through the kernel's GPIO character device (/dev/gpiochipN), with libgpiod's
Python bindings (`gpiod` 2.x on PyPI; imported lazily, it exists only where it is installed).

Timestamps. The kernel stamps every input edge in its interrupt handler on CLOCK_MONOTONIC (the
line's default event clock, available on every kernel; HTE hardware stamps are not on a Pi). We
map it onto the shared clock with CLOCK_REALTIME − CLOCK_MONOTONIC measured when the events are
read (the tightest of three bracketed reads, timing/waiter.py), i.e. milliseconds after the edge:
phc2sys/chrony slew realtime by at most ~500 ppm, so the map moves < 1 µs in that time (a step of
the clock between edge and read would move it; PTP steps only at start-up). An output edge's time
is the shared clock read right after the line write returned (the write is a single ioctl, a few
µs on a Pi 4/5).

Permissions: the agent opens the chip as its own user; deploy adds it to the `gpio` group, which
owns /dev/gpiochip* (udev rule installed by deploy where the OS has none), so no root is needed.
"""

from __future__ import annotations

import datetime
import os
import time

from syncrig_agent.timing.camera_clock import CameraClock
from syncrig_agent.timing.waiter import realtime_minus_monotonic
from syncrig_agent.ttl.base import InputEdge, InputLine, TtlLineError, TtlLines

CONSUMER = "syncrig"


class GpiodLines(TtlLines):
    kind = "gpiod"

    def __init__(self, clock: CameraClock, chip: str = "/dev/gpiochip0") -> None:
        super().__init__(clock)
        self.chip = chip
        self._request = None
        self._value = None
        self._rising = None

    def open(self, outputs: list[int], inputs: list[InputLine]) -> None:
        super().open(outputs, inputs)
        try:
            import gpiod
            from gpiod.line import Clock, Direction, Edge, Value
        except ImportError as exc:
            raise TtlLineError(f"ttl.backend gpiod: no gpiod package (libgpiod 2.x): {exc}") from None
        if not os.path.exists(self.chip):
            raise TtlLineError(f"ttl.chip: {self.chip} does not exist (no GPIO character device here)")
        edge = {"both": Edge.BOTH, "rising": Edge.RISING, "falling": Edge.FALLING}
        low = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE)
        config: dict = {line: low for line in outputs}
        for spec in inputs:
            config[spec.line] = gpiod.LineSettings(
                direction=Direction.INPUT,
                edge_detection=edge[spec.edges],
                event_clock=Clock.MONOTONIC,
                debounce_period=datetime.timedelta(microseconds=spec.debounce_us),
            )
        try:
            self._request = gpiod.request_lines(self.chip, consumer=CONSUMER, config=config)
        except (OSError, ValueError) as exc:
            raise TtlLineError(
                f"ttl: cannot request lines {sorted(config)} on {self.chip}: {exc} (is the agent's user "
                "in the gpio group, and is no other program holding the lines?)"
            ) from None
        self._value = Value
        self._rising = gpiod.EdgeEvent.Type.RISING_EDGE

    def _drive(self, line: int, level: int) -> int:
        assert self._request is not None and self._value is not None
        self._request.set_value(line, self._value.ACTIVE if level else self._value.INACTIVE)
        return self.clock.now_ns()

    def read_edges(self, timeout_s: float) -> list[InputEdge]:
        request = self._request
        if request is None or not self.inputs:
            time.sleep(timeout_s)
            return []
        if not request.wait_edge_events(datetime.timedelta(seconds=timeout_s)):
            return []
        events = request.read_edge_events()
        offset = realtime_minus_monotonic()
        return [
            InputEdge(e.line_offset, int(e.event_type == self._rising), self._shared(e.timestamp_ns + offset))
            for e in events
        ]

    def _shared(self, realtime_ns: int) -> int:
        return self.clock.from_realtime(realtime_ns)

    def close(self) -> None:
        if self._request is not None:
            self._request.release()
            self._request = None

    def describe(self) -> dict:
        return {**super().describe(), "chip": self.chip, "event_clock": "monotonic → realtime at read"}
