"""A request/reply connection over an authenticated socket, with heartbeats and clock sampling.

Design: one reader thread per connection owns all receiving (and closes the file descriptor
when it exits); sends from any thread are serialized by a lock; a heartbeat thread pings the
peer and closes the connection when the peer has been silent too long. Blocking sockets and
threads keep this usable from the camera agents' realtime code without an event loop.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from syncrig_agent.contract.protocol.errors import RemoteError, RequestError, RequestTimeout
from syncrig_agent.contract.protocol.framing import (
    ConnectionClosed,
    MalformedMessage,
    MessageTooLarge,
    ProtocolError,
    encode_message,
    read_message,
)
from syncrig_agent.contract.protocol.link_timing import LinkTiming
from syncrig_agent.contract.protocol.messages import ERROR, PING, REPLY
from syncrig_agent.contract.protocol.pending import PendingRequest, PendingRequests

__all__ = ["Connection"]

log = logging.getLogger(__name__)


RequestHandler = Callable[["Connection", dict[str, Any]], "dict[str, Any] | None"]
CloseHandler = Callable[["Connection"], None]


def _is_int(value: Any) -> bool:
    # bool is an int subclass; True must not pass as request id 1.
    return isinstance(value, int) and not isinstance(value, bool)


class Connection:
    """Request/reply messaging over an already authenticated socket.

    Incoming messages are dispatched on the reader thread: replies complete pending
    ``request()`` calls (a reply matching no pending id is logged and dropped, so a late reply
    can never answer a different request), pings are answered with NTP-style timestamps, and
    anything else is a request passed to ``on_request(conn, msg)``. A dict result is sent as
    the reply (``ok`` true unless the dict sets ``ok``); ``RequestError`` becomes an error
    reply with its code; any other exception becomes an "internal" error reply. The
    connection survives handler failures.

    Handlers run on the reader thread, so while one runs nothing else is read from this peer
    (including its pings). A handler that blocks -- e.g. waits for other peers -- must hand the
    work to another thread, return None, and answer later with ``conn.reply(msg, ...)`` or
    ``conn.reply_error(msg, code, error)``.

    ``on_close(conn)`` is called exactly once, from whichever thread closes the connection.
    """

    def __init__(
        self,
        sock: socket.socket,
        peer_name: str = "?",
        on_request: RequestHandler | None = None,
        on_close: CloseHandler | None = None,
        heartbeat_interval: float = 1.0,
        heartbeat_timeout: float = 5.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if heartbeat_interval <= 0 or heartbeat_timeout <= 0:
            raise ValueError("heartbeat interval and timeout must be positive")
        self._sock = sock
        # The four NTP-style ping timestamps are read from this clock: an agent passes its camera
        # clock (the one its frames are scheduled on), so measured offsets are the ones that matter.
        self._clock = clock
        self.peer_name = peer_name
        self._on_request = on_request
        self._on_close = on_close
        self._heartbeat_interval = heartbeat_interval
        self._heartbeat_timeout = heartbeat_timeout

        self._lock = threading.Lock()  # guards the close state
        self._send_lock = threading.Lock()  # serializes whole frames on the socket
        self._requests = PendingRequests()
        self._closed = threading.Event()  # set first thing in close(): refuse new work
        self._close_done = threading.Event()  # set last: pending failed, on_close has run
        self._closing_thread: int | None = None
        self._close_reason = ""
        self._started = False
        self._reader: threading.Thread | None = None
        self._heartbeat: threading.Thread | None = None
        # monotonic time when the sendall in progress began; lets the heartbeat thread notice
        # a peer that stopped reading (our send would otherwise block forever).
        self._send_started: float | None = None

        self.last_heard = time.monotonic()
        self.timing = LinkTiming()

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the reader and heartbeat threads (both daemons)."""
        with self._lock:
            if self._started:
                raise RuntimeError("connection already started")
            if self._closed.is_set():
                raise ConnectionClosed(f"connection to {self.peer_name} is closed: {self._close_reason}")
            self._started = True
        # The reader relies on blocking recv (close() wakes it with shutdown); a timeout left
        # over from the handshake would desynchronize framing mid-message.
        self._sock.settimeout(None)
        self.last_heard = time.monotonic()
        self._reader = threading.Thread(
            target=self._reader_loop, name=f"syncrig-conn-read-{self.peer_name}", daemon=True
        )
        self._heartbeat = threading.Thread(
            target=self._heartbeat_loop, name=f"syncrig-conn-hb-{self.peer_name}", daemon=True
        )
        self._reader.start()
        self._heartbeat.start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    @property
    def close_reason(self) -> str:
        return self._close_reason

    def wait_closed(self, timeout: float | None = None) -> bool:
        """Block until close() has finished (on_close included); returns False on timeout."""
        if self._closing_thread == threading.get_ident():
            return True  # called from on_close: waiting for ourselves would deadlock
        return self._close_done.wait(timeout)

    def close(self, reason: str = "") -> None:
        """Close the connection (idempotent): fail pending requests, then call on_close once."""
        with self._lock:
            if self._closed.is_set():
                return
            self._close_reason = reason
            self._closing_thread = threading.get_ident()
            self._closed.set()
            reader_owns_fd = self._reader is not None and self._reader.is_alive()
        # After _closed is set: a request opened before this is failed below, any later is refused.
        pending = self._requests.close()
        log.info("connection to %s closed: %s", self.peer_name, reason or "closed locally")
        # shutdown wakes a reader blocked in recv and a sender blocked in sendall.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        if not reader_owns_fd:
            # Otherwise the reader closes the descriptor once it has stopped using it, so the
            # fd number cannot be reused under a thread still inside recv.
            self._close_socket()
        for p in pending:
            p.error = ConnectionClosed(f"connection to {self.peer_name} closed: {reason}")
            p.done.set()
        if self._on_close is not None:
            try:
                self._on_close(self)
            except Exception:
                log.exception("on_close handler for %s failed", self.peer_name)
        self._close_done.set()

    def _close_socket(self) -> None:
        with self._send_lock, contextlib.suppress(OSError):
            self._sock.close()

    # ----------------------------------------------------------------- sending

    def send(self, msg: dict[str, Any]) -> None:
        """Send one message (thread-safe).

        Raises ConnectionClosed if the connection is (or, because the send failed, becomes)
        closed; TypeError/ValueError/MessageTooLarge for an unencodable message, which does not
        affect the connection.
        """
        self._transmit(msg)

    def _transmit(
        self,
        msg: dict[str, Any],
        *,
        lock_timeout: float | None = None,
        before_send: Callable[[dict[str, Any]], None] | None = None,
    ) -> bool:
        """Send ``msg``; returns False only if the send lock was not acquired in ``lock_timeout``.

        ``before_send`` runs under the send lock right before encoding, to stamp timestamps as
        close to the wire as possible.
        """
        data = encode_message(msg) if before_send is None else b""
        if not self._send_lock.acquire(timeout=-1 if lock_timeout is None else lock_timeout):
            return False
        failure: OSError | None = None
        try:
            if self._closed.is_set():
                raise ConnectionClosed(f"connection to {self.peer_name} is closed: {self._close_reason}")
            if before_send is not None:
                before_send(msg)
                data = encode_message(msg)
            self._send_started = time.monotonic()
            try:
                self._sock.sendall(data)
            except OSError as exc:
                failure = exc
            finally:
                self._send_started = None
        finally:
            self._send_lock.release()
        if failure is not None:
            self.close(f"send failed: {failure}")
            raise ConnectionClosed(f"send to {self.peer_name} failed: {failure}") from failure
        return True

    def _try_send(self, msg: dict[str, Any]) -> None:
        """Send from the reader thread where a failure needs no handling beyond closing."""
        with contextlib.suppress(ConnectionClosed):
            self._transmit(msg)

    def reply(self, msg: dict[str, Any], **fields: Any) -> None:
        """Answer request ``msg``: ``{"type": REPLY, "re": id, "ok": true, **fields}``."""
        self._send_reply(msg, fields)

    def reply_error(self, msg: dict[str, Any], code: str, error: str) -> None:
        """Answer request ``msg`` with ``{"ok": false, "code": code, "error": error}``."""
        self._send_reply(msg, {"ok": False, "code": code, "error": error})

    def _send_reply(self, msg: dict[str, Any], fields: dict[str, Any]) -> None:
        rid = msg.get("id")
        if not _is_int(rid):
            raise ValueError("cannot reply to a message without an integer id")
        out: dict[str, Any] = {"type": REPLY, "re": rid}
        if "ok" not in fields:
            out["ok"] = True
        out.update(fields)
        # type/re are the envelope; a handler result must not be able to misroute the reply.
        out["type"] = REPLY
        out["re"] = rid
        self._transmit(out)

    # ----------------------------------------------------------------- requests

    def _new_pending(self, is_ping: bool, heartbeat: bool = False) -> tuple[int, PendingRequest]:
        opened = self._requests.open(is_ping, heartbeat)
        if opened is None:
            raise ConnectionClosed(f"connection to {self.peer_name} is closed: {self._close_reason}")
        return opened

    def _stamp_t1(self, pending: PendingRequest) -> Callable[[dict[str, Any]], None]:
        def stamp(_msg: dict[str, Any]) -> None:
            pending.t1 = self._clock()

        return stamp

    def _roundtrip(self, msg: dict[str, Any], timeout: float, is_ping: bool) -> PendingRequest:
        out = dict(msg)
        rid, pending = self._new_pending(is_ping)
        out["id"] = rid
        try:
            self._transmit(out, before_send=self._stamp_t1(pending))
        except BaseException:
            self._requests.forget(rid)
            raise
        # If the reader answered it between the wait timing out and the forget, the reply is
        # used; otherwise the id is forgotten, so the late reply is dropped rather than matched
        # to anything else.
        if not pending.done.wait(timeout) and self._requests.forget(rid):
            raise RequestTimeout(
                f"no reply from {self.peer_name} to {msg.get('type')!r} (id {rid}) within {timeout:g} s"
            )
        if pending.error is not None:
            raise pending.error
        assert pending.reply is not None
        reply = pending.reply
        if reply.get("ok") is not True:
            raise RemoteError(str(reply.get("code", "error")), str(reply.get("error", "")), reply)
        return pending

    def request(self, msg: dict[str, Any], timeout: float) -> dict[str, Any]:
        """Send ``msg`` with a fresh id and wait for its reply.

        Raises RequestTimeout, ConnectionClosed (closed before or while waiting) or RemoteError
        (the reply has ``ok`` false).
        """
        pending = self._roundtrip(msg, timeout, is_ping=False)
        assert pending.reply is not None
        return pending.reply

    def ping(self, timeout: float = 1.0) -> tuple[int, int, int, int]:
        """One synchronous ping; returns the NTP timestamps (t1, t2, t3, t4) and records them."""
        pending = self._roundtrip({"type": PING}, timeout, is_ping=True)
        reply = pending.reply
        assert reply is not None and pending.t1 is not None and pending.t4 is not None
        t2, t3 = reply.get("t_recv_ns"), reply.get("t_send_ns")
        if not (_is_int(t2) and _is_int(t3)):
            raise MalformedMessage("ping reply lacks integer t_recv_ns/t_send_ns", code="bad_field")
        return (pending.t1, t2, t3, pending.t4)

    # ----------------------------------------------------------------- clock statistics

    def _record_sample(self, pending: PendingRequest) -> None:
        """Keep an answered ping's timestamps for the link's timing statistics."""
        reply = pending.reply
        if not pending.is_ping or reply is None:
            return
        t2, t3 = reply.get("t_recv_ns"), reply.get("t_send_ns")
        if pending.t1 is None or pending.t4 is None or not (_is_int(t2) and _is_int(t3)):
            return
        if reply.get("ok") is True:
            self.timing.record((pending.t1, t2, t3, pending.t4))

    # Shortcuts to the link's timing statistics (see link_timing.LinkTiming).
    def rtt_ns_max(self) -> int | None:
        return self.timing.rtt_ns_max()

    def rtt_ns_median(self) -> int | None:
        return self.timing.rtt_ns_median()

    def clock_samples(self) -> list[tuple[int, int, int, int]]:
        return self.timing.samples()

    def clock_offset_ns(self) -> int | None:
        return self.timing.clock_offset_ns()

    @property
    def rtt_samples(self):  # noqa: ANN201 - the deque itself, for inspection
        return self.timing.rtt_samples

    # ----------------------------------------------------------------- reader

    def _reader_loop(self) -> None:
        try:
            while not self._closed.is_set():
                try:
                    msg = read_message(self._sock)
                except MalformedMessage as exc:
                    # The frame was complete, so the stream is still in sync: report and go on.
                    self.last_heard = time.monotonic()
                    log.warning("malformed message from %s: %s", self.peer_name, exc)
                    self._try_send({"type": ERROR, "code": exc.code, "error": str(exc)})
                    continue
                except ConnectionClosed:
                    self.close("peer closed the connection")
                    return
                except MessageTooLarge as exc:
                    self._try_send({"type": ERROR, "code": exc.code, "error": str(exc)})
                    self.close(f"protocol error: {exc}")
                    return
                except ProtocolError as exc:  # TruncatedMessage: framing is lost
                    self.close(f"protocol error: {exc}")
                    return
                except OSError as exc:  # no-op if close() caused it
                    self.close(f"receive failed: {exc}")
                    return
                t_recv = self._clock()
                self.last_heard = time.monotonic()
                self._dispatch(msg, t_recv)
        except Exception:
            # Dispatch already contains handler failures; reaching this is a bug in this module.
            log.exception("reader thread for %s crashed", self.peer_name)
            self.close("internal error in reader thread")
        finally:
            self._close_socket_if_closed()

    def _close_socket_if_closed(self) -> None:
        # The reader is exiting; it owned the descriptor while running. If the connection is
        # (now) closed, release the fd here; close() skipped it because we were alive.
        if self._closed.is_set():
            self._close_socket()

    def _dispatch(self, msg: dict[str, Any], t_recv: int) -> None:
        mtype = msg["type"]
        if mtype == REPLY:
            self._handle_reply(msg, t_recv)
        elif mtype == ERROR:
            # An error notice has no id and needs no answer; answering it could start an
            # endless error ping-pong between two peers.
            log.warning(
                "%s reported error %s: %s",
                self.peer_name,
                str(msg.get("code"))[:60],
                str(msg.get("error"))[:300],
            )
        elif mtype == PING:
            rid = msg.get("id")
            if not _is_int(rid):
                self._try_send({"type": ERROR, "code": "missing_id", "error": "ping without an integer id"})
                return

            def stamp(out: dict[str, Any]) -> None:
                out["t_send_ns"] = self._clock()

            reply = {"type": REPLY, "re": rid, "ok": True, "t_recv_ns": t_recv}
            with contextlib.suppress(ConnectionClosed):
                self._transmit(reply, before_send=stamp)
        else:
            self._handle_request(msg)

    def _handle_reply(self, msg: dict[str, Any], t_recv: int) -> None:
        rid = msg.get("re")
        pending = self._requests.answer(rid, msg, t_recv, self._record_sample) if _is_int(rid) else None
        if pending is None:
            log.warning(
                "dropping reply re=%s from %s: no pending request (late after a timeout, or unknown)",
                str(rid)[:40],
                self.peer_name,
            )
            return
        pending.done.set()

    def _handle_request(self, msg: dict[str, Any]) -> None:
        mtype = msg["type"]
        if not _is_int(msg.get("id")):
            self._try_send(
                {"type": ERROR, "code": "missing_id", "error": f"request {mtype[:40]!r} has no integer id"}
            )
            return
        try:
            if self._on_request is None:
                raise RequestError("unsupported", "this endpoint accepts no requests")
            result = self._on_request(self, msg)
            if result is not None and not isinstance(result, dict):
                raise TypeError(f"request handler returned {type(result).__name__}, expected dict or None")
        except RequestError as exc:
            self._reply_quietly(msg, exc.code, exc.message)
            return
        except Exception as exc:
            log.exception("handler for %r from %s failed", mtype[:40], self.peer_name)
            self._reply_quietly(msg, "internal", (str(exc) or type(exc).__name__)[:2000])
            return
        if result is None:
            return  # the handler replies later via reply()/reply_error()
        try:
            self._send_reply(msg, result)
        except ConnectionClosed:
            pass
        except (TypeError, ValueError, MessageTooLarge) as exc:
            # The result could not be encoded; the peer still deserves an answer.
            log.error("reply to %r for %s could not be encoded: %s", mtype[:40], self.peer_name, exc)
            self._reply_quietly(msg, "internal", f"reply could not be encoded: {exc}")

    def _reply_quietly(self, msg: dict[str, Any], code: str, error: str) -> None:
        try:
            self.reply_error(msg, code, error)
        except ConnectionClosed:
            pass
        except (TypeError, ValueError, MessageTooLarge):
            # e.g. a RequestError whose code/message is not JSON-serializable
            self._try_send({"type": REPLY, "re": msg["id"], "ok": False, "code": "internal", "error": "?"})

    # ----------------------------------------------------------------- heartbeat

    def _heartbeat_loop(self) -> None:
        # Event.wait gives both the ping period and an immediate exit on close.
        while not self._closed.wait(self._heartbeat_interval):
            now = time.monotonic()
            if now - self.last_heard > self._heartbeat_timeout:
                self.close("heartbeat timeout")
                return
            send_started = self._send_started
            if send_started is not None and now - send_started > self._heartbeat_timeout:
                self.close("send stalled: peer is not reading")
                return
            self._requests.expire_heartbeats(now, self._heartbeat_timeout)
            self._send_heartbeat_ping()

    def _send_heartbeat_ping(self) -> None:
        try:
            rid, pending = self._new_pending(is_ping=True, heartbeat=True)
        except ConnectionClosed:
            return
        # Do not queue behind a send in progress: skipping one ping is harmless, and the
        # heartbeat thread must stay free to detect a stall.
        try:
            sent = self._transmit(
                {"type": PING, "id": rid},
                lock_timeout=self._heartbeat_interval,
                before_send=self._stamp_t1(pending),
            )
        except ConnectionClosed:
            return
        if not sent:
            self._requests.forget(rid)
