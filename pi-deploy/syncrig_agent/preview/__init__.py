"""Live MJPEG preview served by every agent (see server.py for the URLs, token.py for auth)."""

from syncrig_agent.preview.hub import LatestFrame, PreviewHub
from syncrig_agent.preview.service import PreviewService, disabled_status
from syncrig_agent.preview.token import (
    MAX_TOKEN_LIFETIME_S,
    PREVIEW_SNAPSHOT_PATH,
    PREVIEW_STREAM_PATH,
    PreviewTokenError,
    check_preview_token,
    make_preview_token,
    preview_query,
)

__all__ = [
    "MAX_TOKEN_LIFETIME_S",
    "PREVIEW_SNAPSHOT_PATH",
    "PREVIEW_STREAM_PATH",
    "LatestFrame",
    "PreviewHub",
    "PreviewService",
    "PreviewTokenError",
    "check_preview_token",
    "disabled_status",
    "make_preview_token",
    "preview_query",
]
