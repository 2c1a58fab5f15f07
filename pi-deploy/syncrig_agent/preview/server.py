"""The agent's preview port: a threaded HTTP server with two token-authenticated resources.

  GET /stream.mjpg?expires=UNIX_S&token=HEX   multipart/x-mixed-replace JPEG stream (an <img> shows it)
  GET /snapshot.jpg?expires=UNIX_S&token=HEX  one JPEG

403 for a missing, bad or expired token; 409 while the camera cannot preview (recording on hardware
that cannot do both); 503 when too many viewers watch or no frame comes; 404 for any other path,
405 for any other method. A malformed request costs its own thread, never the server."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from syncrig_agent.contract.validation import parse_address
from syncrig_agent.preview.hub import PreviewHub
from syncrig_agent.preview.token import (
    PREVIEW_SNAPSHOT_PATH,
    PREVIEW_STREAM_PATH,
    PreviewTokenError,
    check_preview_token,
)
from syncrig_agent.settings import DEFAULT_PREVIEW_PORT

log = logging.getLogger(__name__)

BOUNDARY = "frame"
SNAPSHOT_WAIT_S = 5.0
STREAM_STALL_S = 30.0  # end a stream that has had no frame for this long (the camera is gone)
SOCKET_TIMEOUT_S = 10.0  # a viewer that stops reading (or never finishes its request) is dropped
# The request line and headers must arrive within this long in total: SOCKET_TIMEOUT_S bounds each
# read only, so a peer trickling one byte at a time would otherwise hold its thread for ever.
REQUEST_HEAD_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 32  # open connections of any kind (viewers are limited separately, by the hub)


class _PreviewHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    preview: PreviewServer

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: socket.socket, client_address: tuple) -> None:
        # A flood of connections costs at most MAX_CONNECTIONS threads; the rest are closed at once.
        if not self._slots.acquire(blocking=False):
            log.warning("preview: %d connections open; refusing %s", MAX_CONNECTIONS, client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: socket.socket, client_address: tuple) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class _PreviewHTTPServer6(_PreviewHTTPServer):
    address_family = socket.AF_INET6


class PreviewServer:
    def __init__(
        self,
        listen: str,
        camera: str,
        secret: bytes,
        hub: PreviewHub,
        refusal: Callable[[], str | None] = lambda: None,
    ) -> None:
        host, port = parse_address(listen, DEFAULT_PREVIEW_PORT, "preview_listen")
        server_cls = _PreviewHTTPServer6 if ":" in host else _PreviewHTTPServer
        self.camera = camera
        self.secret = secret
        self.hub = hub
        self.refusal = refusal
        self.httpd = server_cls((host, port), _PreviewHandler)
        self.httpd.preview = self
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.5}, name="preview-http", daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{host}:{port}"

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()


def _single(query: dict[str, list[str]], key: str) -> str | None:
    """A query value given exactly once (a repeated one is ambiguous, so refused)."""
    values = query.get(key, [])
    return values[0] if len(values) == 1 else None


class _PreviewHandler(BaseHTTPRequestHandler):
    server: _PreviewHTTPServer
    server_version = "SyncRigPreview/1"
    sys_version = ""  # do not advertise the Python version
    # http.server answers a malformed or one-word request line in HTTP/0.9: a bare body with no
    # status line. Every answer from this port carries its status (found by the preview fuzz).
    default_request_version = "HTTP/1.0"
    timeout = SOCKET_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        # Cancelled once the request head is parsed; if it fires first, the peer was too slow.
        self._head_timer = threading.Timer(REQUEST_HEAD_TIMEOUT_S, self._head_too_slow)
        self._head_timer.daemon = True
        self._head_timer.start()

    def _head_too_slow(self) -> None:
        log.debug("preview peer %s: request head not complete in %g s", self.client_address[0],
                  REQUEST_HEAD_TIMEOUT_S)  # fmt: skip
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        self._head_timer.cancel()
        super().finish()

    def parse_request(self) -> bool:
        ok = super().parse_request()  # reads the headers too
        self._head_timer.cancel()
        if ok and self.request_version == "HTTP/0.9":  # asked for explicitly: refuse, with a status
            self.send_error(HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, "HTTP/0.9 is not supported")
            return False
        return ok

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        if self.request_version == "HTTP/0.9":  # a malformed line that named HTTP/0.9
            self.request_version = "HTTP/1.0"
        super().send_error(code, message, explain)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's signature)
        log.debug("preview %s: " + format, self.client_address[0], *args)

    def do_GET(self) -> None:
        try:
            self._get()
        except (OSError, ValueError) as exc:  # the viewer went away or stopped reading
            log.debug("preview viewer %s: %s", self.client_address[0], exc)
            self.close_connection = True
        except Exception:
            log.exception("preview request %r failed", self.path[:200])
            self.close_connection = True

    def _not_allowed(self) -> None:
        self._send_text(HTTPStatus.METHOD_NOT_ALLOWED, "only GET is supported", {"Allow": "GET"})

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    # -- responses ---------------------------------------------------------------------------
    def _send_text(self, status: HTTPStatus, text: str, headers: dict[str, str] | None = None) -> None:
        body = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _get(self) -> None:
        preview = self.server.preview
        url = urlsplit(self.path)
        if url.path not in (PREVIEW_STREAM_PATH, PREVIEW_SNAPSHOT_PATH):
            self._send_text(HTTPStatus.NOT_FOUND, "not found")
            return
        try:
            query = parse_qs(url.query, keep_blank_values=True, max_num_fields=8)
        except ValueError:
            self._send_text(HTTPStatus.BAD_REQUEST, "malformed query")
            return
        try:
            expiry = check_preview_token(
                preview.secret, preview.camera, _single(query, "expires"), _single(query, "token")
            )
        except PreviewTokenError as exc:
            self._send_text(HTTPStatus.FORBIDDEN, f"forbidden: {exc}")
            return
        refusal = preview.refusal()
        if refusal:
            self._send_text(HTTPStatus.CONFLICT, refusal)
            return
        seq = preview.hub.attach()
        if seq is None:
            self._send_text(HTTPStatus.SERVICE_UNAVAILABLE, "too many preview viewers; try again later")
            return
        try:
            if url.path == PREVIEW_SNAPSHOT_PATH:
                self._snapshot(preview.hub, seq)
            else:
                self._stream(preview, seq, expiry)
        finally:
            preview.hub.detach()

    def _snapshot(self, hub: PreviewHub, seq: int) -> None:
        got = hub.next_jpeg(seq, SNAPSHOT_WAIT_S)
        if got is None:
            wait = f"{SNAPSHOT_WAIT_S:g} s"
            self._send_text(HTTPStatus.SERVICE_UNAVAILABLE, f"no frame from the camera within {wait}")
            return
        jpeg = got[1]
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(jpeg)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(jpeg)

    def _stream(self, preview: PreviewServer, seq: int, expiry: int) -> None:
        self.close_connection = True
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        last_frame = time.monotonic()
        # The stream ends when its token expires: a URL never outlives what it was signed for.
        while time.time() < expiry and not preview.hub.closed:
            got = preview.hub.next_jpeg(seq, 1.0)
            if got is None:
                if preview.refusal() or time.monotonic() - last_frame > STREAM_STALL_S:
                    return
                continue
            seq, jpeg = got
            last_frame = time.monotonic()
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            self.wfile.write(head.encode() + jpeg + b"\r\n")
            self.wfile.flush()
