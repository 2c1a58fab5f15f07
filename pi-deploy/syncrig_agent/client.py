"""A client camera: connects to cam0 (and reconnects, with backoff, whenever the link drops),
obeys START/STOP, and stops on its own — files closed cleanly — when it has heard nothing from
the server for the heartbeat timeout."""

from __future__ import annotations

import logging
import threading
import time

from syncrig_agent.camera_agent import CameraAgent
from syncrig_agent.contract.protocol import (
    HELLO,
    LOGS,
    START,
    STATUS,
    STOP,
    AuthenticationFailed,
    Connection,
    ProtocolError,
    RemoteError,
    RequestError,
    validate_request,
)
from syncrig_agent.contract.protocol.links import connect_peer, write_ready_file
from syncrig_agent.contract.protocol.replies import ArmReply
from syncrig_agent.contract.validation import parse_address
from syncrig_agent.diagnostics import log_ring
from syncrig_agent.settings import DEFAULT_FANOUT_PORT, AgentSettings

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0


class ClientAgent:
    def __init__(self, settings: AgentSettings, secret: bytes, camera: CameraAgent | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self.secret = secret
        self.camera = camera or CameraAgent(settings)
        self.server_address = parse_address(settings.server, DEFAULT_FANOUT_PORT, "server")
        self.conn: Connection | None = None
        self.connections = 0  # successful connections so far (reconnects are visible)
        self.last_heard = time.monotonic()
        self._stopping = threading.Event()
        self._closed = threading.Event()
        log_ring.install()  # no-op when main.py installed it (an agent run in-process keeps one too)
        self.preview_port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def serve(self) -> None:
        self.preview_port = self.camera.start_preview(self.secret)
        threading.Thread(target=self._connect_loop, name="server-link", daemon=True).start()
        threading.Thread(target=self._watchdog, name="watchdog", daemon=True).start()

    def wait(self) -> None:
        self._stopping.wait()

    def shutdown(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._closed.set()
        self.camera.close()
        if self.conn is not None:
            self.conn.close("client shutting down")

    def _connect_loop(self) -> None:
        backoff = BACKOFF_START_S
        while not self._stopping.is_set():
            try:
                sock, _welcome = connect_peer(
                    self.server_address,
                    self.secret,
                    {"name": self.name, "role": "client", "state": self.camera.status()},
                )
            except AuthenticationFailed as exc:
                log.error(
                    "server %s:%d refused our secret (or is an impostor): %s", *self.server_address, exc
                )
            except RemoteError as exc:
                log.warning("server refused us: %s", exc)
            except (OSError, ProtocolError) as exc:
                log.info("cannot reach server %s:%d: %s", *self.server_address, exc)
            else:
                backoff = BACKOFF_START_S
                self._closed.clear()
                self.conn = Connection(
                    sock,
                    peer_name=f"server@{self.server_address[0]}",
                    on_request=self._on_request,
                    on_close=lambda _c: self._closed.set(),
                    heartbeat_interval=self.settings.heartbeat_interval_s,
                    heartbeat_timeout=self.settings.heartbeat_timeout_s,
                    clock=self.camera.clock.now_ns,  # offsets measured on the clock frames use
                )
                self.connections += 1
                self.conn.start()
                self.last_heard = time.monotonic()
                if self.connections == 1:
                    write_ready_file(
                        self.settings.ready_file,
                        {"name": self.name, "role": "client", "preview_port": self.preview_port},
                    )
                log.info("connected to server %s:%d", *self.server_address)
                self._closed.wait()
                self.last_heard = max(self.last_heard, self.conn.last_heard)
                log.warning("link to server lost: %s", self.conn.close_reason)
            # Exponential backoff: a dead server costs a connection attempt every few seconds,
            # never a busy loop.
            self._stopping.wait(backoff)
            backoff = min(backoff * 2, BACKOFF_MAX_S)

    def _watchdog(self) -> None:
        timeout = self.settings.heartbeat_timeout_s
        tick = min(0.2, self.settings.heartbeat_interval_s)
        while not self._stopping.wait(tick):
            conn = self.conn
            if conn is not None and not conn.closed:
                self.last_heard = max(self.last_heard, conn.last_heard)
            if self.camera.recording and time.monotonic() - self.last_heard > timeout:
                self.camera.abort(f"heard nothing from the server for {timeout:g} s")

    # -- requests ----------------------------------------------------------------------------
    def _on_request(self, conn: Connection, msg: dict) -> dict | None:
        self.last_heard = time.monotonic()
        validate_request(msg, from_server=True)
        kind = msg["type"]
        if kind == HELLO:
            raise RequestError("unexpected", "hello is only accepted as the first message of a connection")
        if kind == STATUS:
            return {"status": self.camera.status()}
        if kind == LOGS:
            lines = log_ring.recent_lines(msg.get("lines", log_ring.DEFAULT_LOG_LINES))
            return {"camera": self.name, "lines": lines}
        if kind == START:
            files = msg["files"]
            if self.name not in files:
                raise RequestError("bad_field", f"files: no file name for camera {self.name!r}")
            threading.Thread(target=self._start, args=(conn, msg), daemon=True).start()
            return None
        if kind == STOP:
            threading.Thread(target=self._stop, args=(conn, msg), daemon=True).start()
            return None
        raise RequestError("unknown_command", f"unknown command {kind!r}")

    def _start(self, conn: Connection, msg: dict) -> None:
        try:
            fps = msg.get("fps") or 1e9 / msg["period_ns"]
            armed = self.camera.start(
                msg["session_id"],
                msg["t0_ns"],
                msg["period_ns"],
                fps,
                msg["files"][self.name],
                stream_to=(msg.get("streams") or {}).get(self.name),
                stream_secret=self.secret,
            )
            if msg.get("stop_ns") is not None and self.camera.session is not None:
                self.camera.session.stop_at(int(msg["stop_ns"]))
            self.last_heard = time.monotonic()
            conn.reply(msg, **ArmReply(armed=armed).to_dict())  # only now: an ACK means armed
        except RequestError as exc:
            conn.reply_error(msg, exc.code, exc.message)
        except Exception as exc:
            log.exception("start failed")
            conn.reply_error(msg, "internal", f"{type(exc).__name__}: {exc}")

    def _stop(self, conn: Connection, msg: dict) -> None:
        try:
            conn.reply(msg, **self.camera.stop(msg.get("at_ns")).to_dict())
        except Exception as exc:
            log.exception("stop failed")
            conn.reply_error(msg, "internal", f"{type(exc).__name__}: {exc}")
