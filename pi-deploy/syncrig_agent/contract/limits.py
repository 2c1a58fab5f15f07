"""The one table of the agent settings' numeric limits. The Pi validates its own agent.json with it
(settings.AgentSettings) and the desktop validates the rig configuration, whose capture and
heartbeat fields become that agent.json (deploy/render.py), with the same rows — so a value the
desktop saves is never one a Pi then refuses, and the error names the field and the range the same
way on both sides (validation.check_ranges)."""

from __future__ import annotations

from typing import NamedTuple


class Limit(NamedTuple):
    """An inclusive range, its unit, and why the range is what it is."""

    low: float
    high: float
    unit: str
    why: str


SETTING_LIMITS: dict[str, Limit] = {
    # Shared with the rig configuration (controller/rig/config.py): the deploy step copies these.
    "bitrate": Limit(100_000, 200_000_000, "bit/s", "a sanity bound on the encoder's rate target"),
    # GOP = round(fps × interval) frames (camera_agent). Under 50 ms the GOP is ~3 frames at the
    # rig's 56 fps: nearly every frame an IDR frame, the bitrate spent on intra frames. A receiver
    # or a trim resumes at a keyframe, so 50 ms already bounds that wait to a few frames. The
    # desktop always refused less; the agent's looser 0.01 only ever admitted such streams.
    "keyframe_interval_s": Limit(0.05, 60.0, "s", "≥ a few frames per GOP; ≤ a minute to resume"),
    # One heartbeat per interval per link, each an HMAC-signed message and a wake of cam0's
    # watchdog while it also encodes: every 50 ms already notices a lost peer in a fraction of a
    # second; 10 ms bought nothing but load on a Pi that is recording.
    "heartbeat_interval_s": Limit(0.05, 60.0, "s", "the link's liveness ping period"),
    # Must exceed the interval (checked separately); 0.1 s is two pings at the fastest interval, so
    # one ping late by a scheduling hiccup does not drop a link (0.05 could never pass that check).
    "heartbeat_timeout_s": Limit(0.1, 3600.0, "s", "silence after which a link is declared dead"),
    # Agent-only settings.
    "min_lead_ms": Limit(1.0, 10_000.0, "ms", "START lead time: at least one scheduling tick"),
    "max_lead_ms": Limit(1.0, 10_000.0, "ms", "START lead time cam0 grants at most"),
    "spin_us": Limit(0.0, 5000.0, "µs", "busy-wait before a grid slot; more wastes a core"),
    "queue_frames": Limit(1, 10_000, "frames", "encoder backlog before frames are dropped"),
    "stream_queue_frames": Limit(1, 10_000, "frames", "live stream backlog before stream drops"),
    "fifo_priority": Limit(1, 99, "", "SCHED_FIFO priority range of Linux"),
    "base_priority": Limit(1, 98, "", "below fifo_priority (checked separately)"),
    "min_free_mb": Limit(0, 10_000_000, "MB", "disk space kept free while recording"),
    "preview_fps": Limit(0.5, 30.0, "fps", "the MJPEG preview must not compete with capture"),
    "lock_timeout_s": Limit(0.0, 600.0, "s", "how long to wait for phase lock after T0"),
    "lock_lead_ms": Limit(0.0, 10_000.0, "ms", "START lead a free-running camera asks for"),
    "lock_threshold_us": Limit(1.0, 10_000.0, "µs", "|phase error| that counts as locked"),
    "clock_refresh_s": Limit(0.1, 600.0, "s", "period of the pmc/chronyc clock query"),
}


def ranges(*names: str) -> dict[str, tuple[float, float, str]]:
    """The (low, high, unit) of the named settings, as validation.check_ranges takes them."""
    return {
        name: (SETTING_LIMITS[name].low, SETTING_LIMITS[name].high, SETTING_LIMITS[name].unit)
        for name in names
    }
