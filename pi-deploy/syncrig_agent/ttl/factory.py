"""The one place that knows the TTL line kinds (settings.TTL_BACKENDS)."""

from __future__ import annotations

from syncrig_agent.settings import TtlSettings
from syncrig_agent.timing.camera_clock import CameraClock
from syncrig_agent.ttl.base import InputLine, TtlLines


def open_lines(settings: TtlSettings, clock: CameraClock, secret_file: str = "") -> TtlLines | None:
    """The agent's TTL lines, opened (outputs low, inputs watched); None when TTL is off.
    `secret_file`: the rig's shared secret, which signs simulated wires' edges."""
    if not settings.enabled:
        return None
    lines: TtlLines
    if settings.backend == "simulated":
        from syncrig_agent.contract.protocol import load_secret
        from syncrig_agent.ttl.simulated import SimulatedLines

        try:
            secret = load_secret(secret_file) if (settings.sim_listen or settings.wires) else b""
        except (OSError, ValueError) as exc:
            raise ValueError(f"ttl: simulated wires sign their edges with the shared secret: {exc}") from None
        lines = SimulatedLines(clock, secret, settings.sim_listen, settings.wires, settings.barcode_seed)
    elif settings.backend == "gpiod":
        from syncrig_agent.ttl.gpiod_lines import GpiodLines

        lines = GpiodLines(clock, settings.chip)
    else:
        raise ValueError(f"ttl.backend: unknown kind {settings.backend!r}")
    lines.open(sorted(settings.outputs.values()), [InputLine.from_setting(e) for e in settings.inputs])
    return lines
