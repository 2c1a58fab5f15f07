"""Camera backends: where frames come from. One interface, one file per kind."""

from .base import CameraBackend, CaptureControl, CapturedFrame, CaptureStats, FrameMeta, make_backend

__all__ = ["CameraBackend", "CaptureControl", "CaptureStats", "CapturedFrame", "FrameMeta", "make_backend"]
