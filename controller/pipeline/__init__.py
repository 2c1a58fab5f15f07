"""The desktop pipeline: match → report + plots → synced outputs → trim → verify.

One library used by the controller's job runner, `syncrig sync|trim|verify` and
`tools/sync_videos.py`; `sync.py` is the one sync use case (import → match → report → outputs) they
all run. Session-level functions take the session directory and an optional
`progress(fraction 0..1, label)` callback (controller.progress.Progress) and return
JSON-serialisable dicts.
"""

from controller.pipeline.analyze import analyze_session, current_match, match_session
from controller.pipeline.matching import (
    EMPTY,
    MatchTable,
    match_by_grid,
    match_by_time,
    read_match_csv,
    write_match_csv,
)
from controller.pipeline.preview import describe_row, preview_frame, preview_jpeg
from controller.pipeline.sources import SessionError, load_session
from controller.pipeline.squeakshot import find_recordings, import_squeakshot, is_squeakshot_folder
from controller.pipeline.sync import SqueakShotImport, SyncRequest, SyncResult, sync_session
from controller.pipeline.synced import write_synced_outputs
from controller.pipeline.trim import TrimError, delete_trim, nearest_complete_rows, trim_session
from controller.pipeline.verify import verify_session

__all__ = [
    "EMPTY",
    "MatchTable",
    "SessionError",
    "SqueakShotImport",
    "SyncRequest",
    "SyncResult",
    "TrimError",
    "analyze_session",
    "current_match",
    "delete_trim",
    "describe_row",
    "find_recordings",
    "import_squeakshot",
    "is_squeakshot_folder",
    "load_session",
    "match_by_grid",
    "match_by_time",
    "match_session",
    "nearest_complete_rows",
    "preview_frame",
    "preview_jpeg",
    "read_match_csv",
    "sync_session",
    "trim_session",
    "verify_session",
    "write_match_csv",
    "write_synced_outputs",
]
