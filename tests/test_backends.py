"""The camera-backend contract, run against every backend this machine can run.

The picamera2 backend needs libcamera and a Pi camera; off a Pi it is skipped (loudly) and the
synthetic backend — its twin behind the same interface — carries the contract."""

from __future__ import annotations

import time

import numpy as np
import pytest

from syncrig_agent.backends import CaptureControl, CaptureStats, make_backend
from syncrig_agent.contract.grid import FrameGrid, period_ns_for_fps
from syncrig_agent.timing import SystemClock


def _available(kind: str):
    if kind == "picamera2":
        try:
            import picamera2  # noqa: F401
        except Exception as exc:  # ImportError, or libcamera missing underneath
            pytest.skip(
                f"picamera2 backend NOT TESTED here: picamera2/libcamera unavailable ({exc}); "
                "it runs only on a Raspberry Pi"
            )
    backend = make_backend(
        kind, 320, 240, SystemClock(), **({"camera_name": "cam0"} if kind == "synthetic" else {})
    )
    try:
        backend.open()
    except Exception as exc:
        pytest.skip(f"{kind} backend NOT TESTED here: cannot open a camera ({exc})")
    return backend


@pytest.mark.parametrize("kind", ["synthetic", "picamera2"])
def test_backend_contract(kind: str) -> None:
    backend = _available(kind)
    period = period_ns_for_fps(30)
    grid = FrameGrid(time.time_ns() + 100_000_000, period)
    control = CaptureControl()
    control.stop_at_index(15)
    stats = CaptureStats()
    frames = []
    backend.run(grid, control, lambda f: frames.append(f) or True, stats)
    backend.close()
    assert frames, "no frames delivered"
    idx = [f.meta.grid_index for f in frames]
    assert idx == sorted(set(idx)) and idx[-1] < 15 and idx[0] >= 0
    for f in frames:
        assert f.image.dtype == np.uint8 and f.image.shape == (240 * 3 // 2, 320)
        assert f.meta.target_ns == grid.target(f.meta.grid_index)
        assert abs(f.meta.wall_ns - f.meta.target_ns) < period // 2
    assert stats.captured == len(frames)
    assert stats.queue_overflows == 0 and stats.after_failure == 0  # the receiver counts those


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown camera backend"):
        make_backend("webcam9000", 320, 240, SystemClock())
