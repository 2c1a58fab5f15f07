"""File formats of a session (docs/ARCHITECTURE.md, Files): one home, read and written by both sides."""

from syncrig_agent.contract.formats.frame_table import (
    FRAME_TABLE_COLUMNS,
    FrameRow,
    read_frame_table,
    write_frame_row,
)
from syncrig_agent.contract.formats.manifest import (
    ManifestError,
    SessionManifest,
    read_manifest,
    read_manifest_data,
    write_manifest,
)
from syncrig_agent.contract.formats.pts import PTS_HEADER, PtsTimes, format_pts_line, read_pts, write_pts

__all__ = [
    "FRAME_TABLE_COLUMNS",
    "PTS_HEADER",
    "FrameRow",
    "ManifestError",
    "PtsTimes",
    "SessionManifest",
    "format_pts_line",
    "read_frame_table",
    "read_manifest",
    "read_manifest_data",
    "read_pts",
    "write_frame_row",
    "write_manifest",
    "write_pts",
]
