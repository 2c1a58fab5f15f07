"""Camera backends: where frames come from. One interface, one file per kind."""

from syncrig_agent.backends.base import (
    CameraBackend,
    CaptureControl,
    CapturedFrame,
    CaptureStats,
    FrameMeta,
    make_backend,
)

__all__ = ["CameraBackend", "CaptureControl", "CaptureStats", "CapturedFrame", "FrameMeta", "make_backend"]
