"""The one place that knows the TTL line kinds (settings.TTL_BACKENDS)."""

from __future__ import annotations

from syncrig_agent.settings import TtlSettings
from syncrig_agent.timing.camera_clock import CameraClock
from syncrig_agent.ttl.base import InputLine, TtlLines


def open_lines(settings: TtlSettings, clock: CameraClock) -> TtlLines | None:
    """The agent's TTL lines, opened (outputs low, inputs watched); None when TTL is off."""
    if not settings.enabled:
        return None
    lines: TtlLines
    if settings.backend == "simulated":
        from syncrig_agent.ttl.simulated import SimulatedLines

        lines = SimulatedLines(clock, settings.sim_listen, settings.wires, settings.barcode_seed)
    elif settings.backend == "gpiod":
        from syncrig_agent.ttl.gpiod_lines import GpiodLines

        lines = GpiodLines(clock, settings.chip)
    else:
        raise ValueError(f"ttl.backend: unknown kind {settings.backend!r}")
    lines.open(sorted(settings.outputs.values()), [InputLine.from_setting(e) for e in settings.inputs])
    return lines
