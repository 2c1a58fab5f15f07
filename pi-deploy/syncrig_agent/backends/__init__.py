"""Camera backends: where frames come from. One interface, one file per kind, one factory."""

from syncrig_agent.backends.base import CameraBackend, CaptureControl, CaptureStats
from syncrig_agent.backends.factory import CameraParts, build_camera, make_backend

__all__ = ["CameraBackend", "CameraParts", "CaptureControl", "CaptureStats", "build_camera", "make_backend"]
