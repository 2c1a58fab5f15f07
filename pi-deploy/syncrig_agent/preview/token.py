"""Preview URL tokens: every preview port authenticates with the rig's shared secret, like the
control ports, but over plain HTTP so that a browser's <img> can show the stream.

The desktop builds URLs with `make_preview_token` (or `preview_query`); the agent checks them with
`check_preview_token`. A token names one camera and an expiry, so a leaked URL opens one camera
for a bounded time and nothing else."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from urllib.parse import urlencode

MAX_TOKEN_LIFETIME_S = 24 * 3600  # a token may not expire further ahead than this
DEFAULT_TOKEN_LIFETIME_S = 3600
PREVIEW_STREAM_PATH = "/stream.mjpg"
PREVIEW_SNAPSHOT_PATH = "/snapshot.jpg"
_EXPIRES_RE = re.compile(r"[0-9]{1,12}")
_TOKEN_RE = re.compile(r"[0-9a-fA-F]{64}")


class PreviewTokenError(ValueError):
    """Why a preview request was refused (sent back with the 403)."""


def make_preview_token(secret: bytes, camera: str, expires: int) -> str:
    """HMAC-SHA256(secret, "preview:<camera>:<expires>") as hex; `expires` in Unix seconds."""
    message = f"preview:{camera}:{int(expires)}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def preview_query(
    secret: bytes, camera: str, lifetime_s: int = DEFAULT_TOKEN_LIFETIME_S, now: float | None = None
) -> str:
    """The query string of a preview URL valid for `lifetime_s`: "expires=...&token=..."."""
    if not 0 < lifetime_s <= MAX_TOKEN_LIFETIME_S:
        raise ValueError(f"lifetime_s: must be in 1..{MAX_TOKEN_LIFETIME_S}, got {lifetime_s}")
    expires = int(time.time() if now is None else now) + int(lifetime_s)
    return urlencode({"expires": expires, "token": make_preview_token(secret, camera, expires)})


def check_preview_token(
    secret: bytes, camera: str, expires: str | None, token: str | None, now: float | None = None
) -> int:
    """Check the `expires` and `token` query values (as received); returns the expiry (Unix s).

    Raises PreviewTokenError when either is missing or malformed, the token is expired or expires
    more than 24 h ahead, or the HMAC does not match (compared in constant time)."""
    if not expires or not token:
        raise PreviewTokenError("missing 'expires' or 'token' in the query")
    if not _EXPIRES_RE.fullmatch(expires):
        raise PreviewTokenError("'expires' must be Unix seconds")
    if not _TOKEN_RE.fullmatch(token):
        raise PreviewTokenError("'token' must be 64 hex digits")
    expiry = int(expires)
    now = time.time() if now is None else now
    if expiry <= now:
        raise PreviewTokenError("token expired")
    if expiry > now + MAX_TOKEN_LIFETIME_S:
        raise PreviewTokenError("token expires more than 24 h ahead")
    if not hmac.compare_digest(make_preview_token(secret, camera, expiry), token.lower()):
        raise PreviewTokenError("bad token")
    return expiry
