"""Live-stream receivers on the desktop: per camera an authenticated side-car + one FFmpeg."""

from controller.receivers.manager import ReceiverError, ReceiverManager
from controller.receivers.sidecar import STREAM_TABLE_COLUMNS, CameraReceiver, read_stream_table, stream_files

__all__ = [
    "STREAM_TABLE_COLUMNS",
    "CameraReceiver",
    "ReceiverError",
    "ReceiverManager",
    "read_stream_table",
    "stream_files",
]
