"""Pre-flight rules on recorded STATUS shapes: every failing condition refuses with its reason,
warnings never do (the simulated rig cannot overheat or under-volt, so these feed real shapes)."""

from __future__ import annotations

from controller.rig.preflight import PreflightLimits, run_checks
from syncrig_agent.diagnostics.health import decode_throttled

GB = 1_000_000_000


def camera(
    name: str,
    *,
    free: int = 100 * GB,
    temp: float | None = 55.0,
    throttled: int | None = 0,
    state: str = "idle",
) -> dict:
    return {
        "name": name,
        "state": state,
        "health": {
            "disk": {"free_bytes": free, "total_bytes": 128 * GB},
            "temperature_c": temp,
            "throttled": None if throttled is None else {"raw": throttled, **decode_throttled(throttled)},
        },
    }


def status(*clients: tuple[str, dict, dict]) -> dict:
    return {
        "server": camera("cam0"),
        "clients": {
            name: {"connected": True, "status": st, "status_age_s": 0.5, "clock_offset_ns": 20_000, **extra}
            for name, st, extra in clients
        },
    }


def blocking_failures(result) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(c.camera, c.check) for c in result.failures]


def test_a_healthy_rig_passes() -> None:
    st = status(("cam1", camera("cam1"), {}), ("cam2", camera("cam2"), {}))
    result = run_checks(
        st, ["cam0", "cam1", "cam2"], 25_000_000, 600, PreflightLimits(), desktop_free_bytes=500 * GB
    )
    assert result.ok, result.reason()
    assert result.expected_bytes_per_camera == 25_000_000 // 8 * 600


def test_each_failure_refuses_with_its_reason() -> None:
    st = status(
        ("cam1", camera("cam1", free=1 * GB), {}),  # 1 h at 25 Mbit/s needs ~11 GB
        ("cam2", camera("cam2", temp=84.5), {}),
        ("cam3", camera("cam3", throttled=0x1), {}),  # under-voltage now
        ("cam4", camera("cam4", state="recording"), {}),
        ("cam5", camera("cam5"), {"status_age_s": 12.0}),
        ("cam6", camera("cam6"), {"connected": False}),
    )
    names = ["cam0", "cam1", "cam2", "cam3", "cam4", "cam5", "cam6", "cam7"]
    result = run_checks(st, names, 25_000_000, None, PreflightLimits(), desktop_free_bytes=10 * GB)
    assert set(blocking_failures(result)) == {
        ("cam1", "disk"),
        ("cam2", "temperature"),
        ("cam3", "throttling"),
        ("cam4", "idle"),
        ("cam5", "online"),
        ("cam6", "online"),
        ("cam7", "online"),
        ("desktop", "disk"),
    }
    reason = result.reason()
    assert "cam2: 84.5 °C" in reason and "under_voltage" in reason and "already recording" in reason


def test_past_throttling_and_unknown_sensors_only_warn() -> None:
    st = status(
        ("cam1", camera("cam1", throttled=0x50000, temp=None), {})
    )  # under-volted / throttled since boot
    result = run_checks(st, ["cam0", "cam1"], 8_000_000, 60, PreflightLimits())
    assert result.ok, result.reason()
    warnings = {(c.camera, c.check) for c in result.checks if not c.ok and not c.blocking}
    assert ("cam1", "throttling_history") in warnings
    # A temperature nobody measured is not a pass: it is shown as unknown, in words.
    temp = next(c.to_dict() for c in result.checks if (c.camera, c.check) == ("cam1", "temperature"))
    assert (temp["ok"], temp["outcome"], temp["label"]) == (False, "unknown", "Temperature")


def test_clock_offsets_from_the_burst_measurement_win() -> None:
    st = status(("cam1", camera("cam1"), {"clock_offset_ns": 9_000_000}), ("cam2", camera("cam2"), {}))
    burst = {
        "cam0": {"offset_ns": 0, "reference": True},
        "cam1": {"offset_ns": 40_000},
        "cam2": {"error": "timeout"},
    }
    result = run_checks(
        st,
        ["cam0", "cam1", "cam2"],
        8_000_000,
        60,
        PreflightLimits(max_clock_offset_us=500),
        clock_check=burst,
    )
    assert blocking_failures(result) == [("cam2", "clock_offset")]
    cam1 = next(c for c in result.checks if (c.camera, c.check) == ("cam1", "clock_offset"))
    assert cam1.ok and cam1.value == 40.0
    # a limit is a limit: 600 µs over a 500 µs limit fails
    burst["cam2"] = {"offset_ns": -600_000}
    result = run_checks(
        st,
        ["cam0", "cam1", "cam2"],
        8_000_000,
        60,
        PreflightLimits(max_clock_offset_us=500),
        clock_check=burst,
    )
    assert blocking_failures(result) == [("cam2", "clock_offset")]
    assert "-600.0 µs" in result.reason()
