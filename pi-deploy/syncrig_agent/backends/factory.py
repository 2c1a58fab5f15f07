"""The one place that knows the camera backend kinds: settings in, the camera's clock and backend out.

A synthetic camera is a simulation all through: a simulated clock (offset and drift from the
settings), a simulated sensor, and a scripted clock-sync state for STATUS. A real camera runs on
the system clock and reports what disciplines it (ptp4l, chrony, the kernel). Adding a backend
kind touches this module (and the settings' list of accepted kinds).

Backends are imported lazily: picamera2 only exists on a Pi.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from syncrig_agent.backends.base import CameraBackend
from syncrig_agent.backends.free_running import LockPolicy
from syncrig_agent.clock_state import ClockState, make_reader, simulated_state
from syncrig_agent.settings import AgentSettings
from syncrig_agent.timing.camera_clock import CameraClock, SimulatedClock, SystemClock


@dataclass(frozen=True)
class CameraParts:
    """What an agent's settings make of its camera."""

    clock: CameraClock  # the clock frames are scheduled and timestamped on
    backend: CameraBackend
    read_clock_state: Callable[[], ClockState]  # polled in the background for STATUS


def build_camera(settings: AgentSettings) -> CameraParts:
    """The clock, backend and clock-state reader that `settings.backend` calls for."""
    if settings.backend == "synthetic":
        sim = settings.simulation
        clock: CameraClock = SimulatedClock(
            offset_ns=round(sim.clock_offset_us * 1000), drift_ppm=sim.drift_ppm
        )
        backend = make_backend(
            "synthetic", settings.width, settings.height, clock, **synthetic_options(settings)
        )
        return CameraParts(clock, backend, simulated_clock_reader(sim.clock_sync, clock))
    # A real camera (picamera2): the system clock, disciplined by ptp4l/chrony, whose state they report.
    clock = SystemClock()
    backend = make_backend(
        settings.backend,
        settings.width,
        settings.height,
        clock,
        options=settings.picamera2,
        lock=lock_policy(settings),
    )
    return CameraParts(clock, backend, make_reader(settings.clock_source))


def make_backend(kind: str, width: int, height: int, clock: CameraClock, **options: object) -> CameraBackend:
    """One backend of `kind` from explicit constructor options (the synthetic kind's `trigger`
    option picks its sensor model: triggered per grid slot, or free-running and phase-locked)."""
    if kind == "synthetic" and options.get("trigger") == "freerun":
        from syncrig_agent.backends.synthetic_freerun import SyntheticFreeRunningCamera

        options = {k: v for k, v in options.items() if k not in ("trigger", "drop_probability", "spin_us")}
        return SyntheticFreeRunningCamera(width, height, clock, **options)  # type: ignore[arg-type]
    if kind == "synthetic":
        from syncrig_agent.backends.synthetic import SyntheticCamera

        return SyntheticCamera(width, height, clock, **options)  # type: ignore[arg-type]
    if kind == "picamera2":
        from syncrig_agent.backends.pi_camera import Picamera2Camera

        return Picamera2Camera(width, height, clock, **options)  # type: ignore[arg-type]
    raise ValueError(f"unknown camera backend {kind!r} (expected 'synthetic' or 'picamera2')")


def synthetic_options(settings: AgentSettings) -> dict[str, object]:
    """The synthetic backend's constructor options for its trigger model."""
    sim = settings.simulation
    if sim.trigger == "freerun":
        return {
            "trigger": "freerun",
            "camera_name": settings.name,
            "crystal_ppm": sim.crystal_ppm,
            "jitter_us": sim.jitter_us,
            "delay_frames": sim.sensor_delay_frames,
            "lock": lock_policy(settings),
        }
    return {
        "camera_name": settings.name,
        "drop_probability": sim.drop_probability,
        "spin_us": settings.spin_us,
        "trigger": sim.trigger,
        "jitter_us": sim.jitter_us,
        "scene": sim.scene,
        "scene_config": sim.charuco,
    }


def lock_policy(settings: AgentSettings) -> LockPolicy:
    """How a free-running sensor locks to the grid (Pi cameras and the synthetic freerun model)."""
    return LockPolicy(
        wait_for_lock=settings.wait_for_lock,
        lock_timeout_s=settings.lock_timeout_s,
        lock_lead_ms=settings.lock_lead_ms,
        threshold_us=settings.lock_threshold_us,
    )


def simulated_clock_reader(scripted: str, clock: CameraClock) -> Callable[[], ClockState]:
    """A simulated camera reports the scripted sync state of its simulated clock."""

    def read() -> ClockState:
        real = time.time_ns()  # one instant on both clocks: the exact simulated offset
        return simulated_state(scripted, clock.from_realtime(real), real)

    return read
