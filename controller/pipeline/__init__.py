"""The desktop pipeline: match → report + plots → synced outputs → trim → verify.

One library used by the controller's job runner, `syncrig sync|trim|verify` and
`tools/sync_videos.py`. Session-level functions take the session directory and an optional
`progress(fraction 0..1, label)` callback and return JSON-serialisable dicts.
"""

from .analyze import analyze_session, current_match, match_session
from .matching import EMPTY, MatchTable, match_by_grid, match_by_time, read_match_csv, write_match_csv
from .preview import describe_row, preview_frame, preview_jpeg
from .sources import SessionError, load_session
from .squeakshot import find_recordings, import_squeakshot, is_squeakshot_folder
from .synced import write_synced_outputs
from .trim import TrimError, nearest_complete_rows, trim_session
from .verify import verify_session

__all__ = [
    "EMPTY",
    "MatchTable",
    "SessionError",
    "TrimError",
    "analyze_session",
    "current_match",
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
    "trim_session",
    "verify_session",
    "write_match_csv",
    "write_synced_outputs",
]
