"""How a request can fail: refused by the handler, refused by the peer, or never answered.

Their own module because the connection, the message validation and the link's clock check all
raise or catch them, and none of those should import another just for an exception.
"""

from __future__ import annotations

from typing import Any

__all__ = ["RemoteError", "RequestError", "RequestTimeout"]


class RequestError(Exception):
    """Raised by a request handler to send ``{"ok": false, "code": code, "error": message}``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RemoteError(Exception):
    """The peer answered a request with ``ok`` false; ``reply`` is the full reply message."""

    def __init__(self, code: str, message: str, reply: dict[str, Any]) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reply = reply


class RequestTimeout(TimeoutError):
    """No reply arrived in time. The request id is forgotten, so a late reply is dropped."""
