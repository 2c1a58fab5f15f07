"""cam0: the server role. Takes commands from controllers, chooses T0, fans START/STOP out to the
client agents, and records with its own camera like any other."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from syncrig_agent.camera_agent import CameraAgent
from syncrig_agent.contract.protocol import (
    CLOCK_CHECK,
    HELLO,
    LOGS,
    START,
    STATUS,
    STOP,
    Connection,
    ConnectionClosed,
    RemoteError,
    RequestError,
    RequestTimeout,
    measure_clock_offset,
    validate_request,
)
from syncrig_agent.contract.protocol.links import accept_peer, listen, serve_forever, write_ready_file
from syncrig_agent.contract.protocol.replies import (
    ArmReply,
    CameraArmed,
    CameraStatus,
    CameraStopResult,
    ClientLink,
    InvalidReply,
    RecordingSession,
    RigStatus,
    StartReply,
    StopReply,
)
from syncrig_agent.diagnostics import log_ring
from syncrig_agent.settings import DEFAULT_CONTROL_PORT, DEFAULT_FANOUT_PORT, AgentSettings

log = logging.getLogger(__name__)

STATUS_POLL_S = 1.0
DEFAULT_ARM_ESTIMATE_NS = 150_000_000  # until a client has reported how long arming takes


class ClientRecord:
    def __init__(self, name: str, conn: Connection, hello: dict) -> None:
        self.name = name
        self.conn = conn
        self.hello = hello
        self._status: CameraStatus | None = None
        self.status = hello.get("state")
        self.status_at: float | None = None
        self.connected_at = time.time()

    @property
    def status(self) -> CameraStatus | None:
        """The client's last status: its hello state, then each STATUS poll's."""
        return self._status

    @status.setter
    def status(self, wire: dict | None) -> None:
        # Assigned the JSON as it arrives and read through its type here, once; a status that does
        # not parse is logged and the last good one kept.
        if wire is None:
            self._status = None
            return
        try:
            self._status = CameraStatus.from_dict(wire, f"status of {self.name}")
        except InvalidReply as exc:
            log.warning("ignoring a malformed status: %s", exc)


class ServerAgent:
    def __init__(self, settings: AgentSettings, secret: bytes, camera: CameraAgent | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self.secret = secret
        self.camera = camera or CameraAgent(settings)
        self.clients: dict[str, ClientRecord] = {}
        self.controllers: set[Connection] = set()
        self.current: RecordingSession | None = None  # the session being recorded, as started
        self.arm_durations_ns: list[int] = []
        self._clients_lock = threading.Lock()
        self._command_lock = threading.Lock()  # one START/STOP at a time
        self._stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="fanout")
        self._listeners: list[socket.socket] = []
        log_ring.install()  # no-op when main.py installed it (an agent run in-process keeps one too)

    # -- lifecycle ---------------------------------------------------------------------------
    def serve(self) -> None:
        control = listen(self.settings.listen, DEFAULT_CONTROL_PORT, "listen")
        fanout = listen(self.settings.fanout_listen, DEFAULT_FANOUT_PORT, "fanout_listen")
        self._listeners = [control, fanout]
        preview_port = self.camera.start_preview(self.secret)  # before any STATUS can be asked
        serve_forever(control, self._accept_controller, self._stopping, "control")
        serve_forever(fanout, self._accept_client, self._stopping, "fanout")
        threading.Thread(target=self._poll_clients, name="status-poll", daemon=True).start()
        write_ready_file(
            self.settings.ready_file,
            {
                "name": self.name,
                "role": "server",
                "control_port": control.getsockname()[1],
                "fanout_port": fanout.getsockname()[1],
                "preview_port": preview_port,
            },
        )
        log.info(
            "%s serving controllers on %s, clients on %s",
            self.name,
            control.getsockname(),
            fanout.getsockname(),
        )

    def wait(self) -> None:
        self._stopping.wait()

    def shutdown(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        for sock in self._listeners:
            with contextlib.suppress(OSError):
                sock.close()
        self.camera.close()
        with self._clients_lock:
            conns = [c.conn for c in self.clients.values()] + list(self.controllers)
        for conn in conns:
            conn.close("server shutting down")
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- peers -------------------------------------------------------------------------------
    def _connection(self, sock: socket.socket, name: str) -> Connection:
        return Connection(
            sock,
            peer_name=name,
            on_request=self._on_request,
            on_close=self._on_close,
            heartbeat_interval=self.settings.heartbeat_interval_s,
            heartbeat_timeout=self.settings.heartbeat_timeout_s,
            clock=self.camera.clock.now_ns,  # offsets measured on the clock frames use
        )

    def _accept_controller(self, sock: socket.socket, addr: tuple) -> None:
        hello, welcome = accept_peer(sock, self.secret, {"controller"}, lambda h: {"server": self.name})
        conn = self._connection(sock, f"controller:{hello['name']}@{addr[0]}")
        with self._clients_lock:
            self.controllers.add(conn)
        welcome({"session": self.current.to_dict() if self.current else None})
        conn.start()
        log.info("controller %s connected from %s", hello["name"], addr)

    def _admit_client(self, hello: dict) -> dict:
        name = hello["name"]
        with self._clients_lock:
            existing = self.clients.get(name)
            if name == self.name or (existing is not None and not existing.conn.closed):
                # Cameras are matched by name: two live peers with one name would be ambiguous.
                raise RequestError("duplicate_name", f"a camera named {name!r} is already connected")
        return {"server": self.name}

    def _accept_client(self, sock: socket.socket, addr: tuple) -> None:
        hello, welcome = accept_peer(sock, self.secret, {"client"}, self._admit_client)
        name = hello["name"]
        conn = self._connection(sock, name)
        record = ClientRecord(name, conn, hello)
        with self._clients_lock:
            existing = self.clients.get(name)
            if existing is not None and not existing.conn.closed:
                raise RequestError("duplicate_name", f"a camera named {name!r} is already connected")
            self.clients[name] = record
        welcome({"session": self.current.to_dict() if self.current else None})
        conn.start()
        log.info("client %s connected from %s", name, addr)

    def _on_close(self, conn: Connection) -> None:
        with self._clients_lock:
            was_controller = conn in self.controllers
            self.controllers.discard(conn)
        record = self.clients.get(conn.peer_name or "") if not was_controller else None
        record = record if record is not None and record.conn is conn else None
        status = record.status if record is not None else None
        was_recording = status is not None and status.state == "recording"
        if self.current is not None and (was_recording or (record is not None and self.camera.recording)):
            # A camera lost mid-recording costs its frames from here on: the operator must see it.
            log.warning(
                "lost camera %s during recording %s: %s",
                conn.peer_name,
                self.current.session_id,
                conn.close_reason,
            )
            return
        log.info("connection to %s closed: %s", conn.peer_name, conn.close_reason)

    def connected_clients(self) -> dict[str, ClientRecord]:
        with self._clients_lock:
            return {n: c for n, c in self.clients.items() if not c.conn.closed}

    def _poll_clients(self) -> None:
        # STATUS is answered from what this loop last saw, so a controller's request never waits
        # on a slow camera.
        while not self._stopping.wait(STATUS_POLL_S):
            for record in list(self.connected_clients().values()):
                self._pool.submit(self._poll_one, record)

    def _poll_one(self, record: ClientRecord) -> None:
        try:
            reply = record.conn.request({"type": STATUS}, timeout=2.0)
            record.status = reply.get("status")
            record.status_at = time.time()
        except (RequestTimeout, ConnectionClosed, RemoteError) as exc:
            log.debug("status poll of %s failed: %s", record.name, exc)

    # -- requests ----------------------------------------------------------------------------
    def _on_request(self, conn: Connection, msg: dict) -> dict | None:
        validate_request(msg)
        kind = msg["type"]
        if kind == STATUS:
            return {"status": self.status()}
        if kind == HELLO:
            raise RequestError("unexpected", "hello is only accepted as the first message of a connection")
        if conn not in self.controllers:
            raise RequestError("not_allowed", f"{kind} is only accepted from a controller")
        if kind in (START, STOP, LOGS, CLOCK_CHECK):
            handler = {
                START: self._start,
                STOP: self._stop,
                LOGS: self._logs,
                CLOCK_CHECK: self._clock_check,
            }[kind]
            self._pool.submit(self._reply_later, conn, msg, handler)
            return None
        raise RequestError("unknown_command", f"unknown command {kind!r}")

    def _reply_later(self, conn: Connection, msg: dict, handler) -> None:
        try:
            conn.reply(msg, **handler(msg))
        except RequestError as exc:
            conn.reply_error(msg, exc.code, exc.message)
        except Exception as exc:
            log.exception("%s failed", msg.get("type"))
            conn.reply_error(msg, "internal", f"{type(exc).__name__}: {exc}")

    def choose_lead_ns(self, clients: list[ClientRecord]) -> int:
        """T0 lead: long enough for START to reach every client and for it to arm, no longer."""
        rtts = [c.conn.rtt_ns_max() or 0 for c in clients]
        max_rtt = max(rtts, default=0)
        arm = max(self.arm_durations_ns[-8:], default=DEFAULT_ARM_ESTIMATE_NS)
        lead = int(1.5 * arm) + 2 * max_rtt + 20_000_000
        low = int(self.settings.min_lead_ms * 1e6)
        high = int(self.settings.max_lead_ms * 1e6)
        return min(max(lead, low), high)

    def lock_lead_ns(self, clients: list[ClientRecord], with_self: bool) -> int:
        """Free-running cameras lock their sensor phase during the lead: the longest lead any of
        them asks for (STATUS `phase_lock.lock_lead_ns`; triggered cameras ask for none)."""
        locks = [c.status.phase_lock if c.status else None for c in clients]
        if with_self:
            locks.append(self.camera.phase_lock_status())
        wanted = [int((lock or {}).get("lock_lead_ns") or 0) for lock in locks]
        return max(wanted, default=0)

    def _start(self, msg: dict) -> dict:
        with self._command_lock:
            if self.current is not None and self._any_recording():
                raise RequestError("busy", f"already recording session {self.current.session_id}")
            files: dict[str, str] = msg["files"]
            if not files:
                raise RequestError("bad_field", "start: field 'files' must name at least one camera")
            connected = self.connected_clients()
            missing = [n for n in files if n != self.name and n not in connected]
            if missing:
                known = ", ".join([self.name, *sorted(connected)])
                raise RequestError(
                    "cameras_missing",
                    f"not connected to {self.name}: {', '.join(missing)} (connected: {known})",
                )
            targets = [connected[n] for n in files if n != self.name]
            lead = max(self.choose_lead_ns(targets), self.lock_lead_ns(targets, self.name in files))
            t0 = self.camera.clock.now_ns() + lead
            period = msg["period_ns"]
            fps = msg.get("fps") or 1e9 / period
            if abs(fps * period / 1e9 - 1.0) > 0.01:
                # The grid runs on period_ns; fps only tells the encoder the rate, so they must agree.
                raise RequestError("bad_field", f"start: fps {fps!r} does not match period_ns {period}")
            start = {
                "type": START,
                "session_id": msg["session_id"],
                "t0_ns": t0,
                "period_ns": period,
                "fps": fps,
                "files": files,
            }
            streams: dict[str, str] = msg.get("streams") or {}
            unknown_streams = sorted(set(streams) - set(files))
            if unknown_streams:
                raise RequestError(
                    "bad_field", f"start: streams name cameras not recording: {', '.join(unknown_streams)}"
                )
            if streams:
                start["streams"] = streams
            stop_ns = msg.get("stop_ns")
            if msg.get("frames") is not None:
                stop_ns = t0 + int(msg["frames"]) * period
            if stop_ns is not None:
                if stop_ns <= t0:
                    raise RequestError("bad_field", f"start: stop_ns {stop_ns} is not after T0 {t0}")
                start["stop_ns"] = stop_ns
            ack_timeout = lead / 1e9 + 10.0
            futures = {c.name: self._pool.submit(c.conn.request, start, ack_timeout) for c in targets}
            results: dict[str, CameraArmed] = {}
            errors: dict[str, str] = {}
            if self.name in files:
                try:
                    results[self.name] = self.camera.start(
                        msg["session_id"],
                        t0,
                        period,
                        fps,
                        files[self.name],
                        stream_to=streams.get(self.name),
                        stream_secret=self.secret,
                    )
                    if stop_ns is not None:
                        self.camera.session.stop_at(stop_ns)  # type: ignore[union-attr]
                except RequestError as exc:
                    errors[self.name] = str(exc)
                except Exception as exc:  # e.g. the encoder would not open: clients must not keep going
                    log.exception("arming %s failed", self.name)
                    errors[self.name] = f"{type(exc).__name__}: {exc}"
            for name, future in futures.items():
                try:
                    results[name] = ArmReply.from_dict(future.result(), f"start reply of {name}").armed
                except (RemoteError, RequestTimeout, ConnectionClosed, InvalidReply) as exc:
                    errors[name] = f"{type(exc).__name__}: {exc}"
            for info in results.values():
                if info.arm_duration_ns:
                    self.arm_durations_ns.append(info.arm_duration_ns)
            if errors:
                self._stop_all(list(results), self.camera.clock.now_ns())
                detail = "; ".join(f"{n}: {e}" for n, e in errors.items())
                raise RequestError("start_failed", f"start failed, recording stopped everywhere: {detail}")
            self.current = RecordingSession(
                session_id=msg["session_id"],
                t0_ns=t0,
                period_ns=period,
                fps=fps,
                cameras=list(files),
                lead_ns=lead,
                stop_ns=stop_ns,
                started_at_ns=time.time_ns(),
            )
            late = [n for n, info in results.items() if info.late]
            return StartReply(
                t0_ns=t0, period_ns=period, lead_ns=lead, stop_ns=stop_ns, cameras=results, late=late
            ).to_dict()

    def _any_recording(self) -> bool:
        if self.camera.recording:
            return True
        clients = self.connected_clients().values()
        return any(c.status is not None and c.status.state == "recording" for c in clients)

    def _stop_all(self, names: list[str], stop_ns: int) -> dict[str, CameraStopResult]:
        connected = self.connected_clients()
        stop = {"type": STOP, "at_ns": stop_ns}
        wait_s = max(0.0, (stop_ns - self.camera.clock.now_ns()) / 1e9) + 30.0
        results: dict[str, CameraStopResult] = {}
        futures = {
            n: self._pool.submit(connected[n].conn.request, stop, wait_s)
            for n in names
            if n in connected and n != self.name
        }
        if self.name in names or self.camera.recording:
            results[self.name] = self.camera.stop(stop_ns)
        # A camera silent for several heartbeats is frozen or cut off: waiting for its answer would
        # hold every other camera's stop until its link times out (heartbeat_timeout_s).
        silent_after = 3 * self.settings.heartbeat_interval_s
        while futures:
            for name, future in list(futures.items()):
                silent_s = time.monotonic() - connected[name].conn.last_heard
                if future.done():
                    del futures[name]
                    try:
                        results[name] = CameraStopResult.from_dict(future.result(), f"stop reply of {name}")
                    except (RemoteError, RequestTimeout, ConnectionClosed, InvalidReply) as exc:
                        results[name] = CameraStopResult(camera=name, error=f"{type(exc).__name__}: {exc}")
                elif silent_s > silent_after:
                    del futures[name]
                    log.warning("lost camera %s: silent for %.1f s at STOP", name, silent_s)
                    results[name] = CameraStopResult(
                        camera=name,
                        error=f"silent for {silent_s:.1f} s (frozen or cut off): it stops on its own "
                        "after the heartbeat timeout and keeps its files",
                    )
            time.sleep(0.02 if futures else 0)
        for name in names:
            if name not in results:
                results[name] = CameraStopResult(
                    camera=name,
                    error="not connected: it stops on its own after "
                    "the heartbeat timeout and keeps its files",
                )
        return results

    def _stop(self, msg: dict) -> dict:
        with self._command_lock:
            now = self.camera.clock.now_ns()
            if msg.get("at_ns") is not None:
                stop_ns = max(int(msg["at_ns"]), now)
            else:
                rtt = max((c.conn.rtt_ns_max() or 0 for c in self.connected_clients().values()), default=0)
                stop_ns = now + max(int(self.settings.min_lead_ms * 1e6), 2 * rtt + 20_000_000)
            planned = self.current.stop_ns if self.current else None
            if planned is not None:
                # A STOP never extends a recording whose end was fixed at START.
                stop_ns = min(stop_ns, planned)
            names = list(self.current.cameras) if self.current else []
            # Also stop any camera that reports recording (e.g. a session started before a restart).
            names += [
                n
                for n, c in self.connected_clients().items()
                if c.status is not None and c.status.state == "recording" and n not in names
            ]
            results = self._stop_all(names, stop_ns)
            session = self.current
            self.current = None
            return StopReply(stop_ns=stop_ns, session=session, cameras=results).to_dict()

    def _logs(self, msg: dict) -> dict:
        """Recent log lines of cam0 or, forwarded over its link, of a connected client."""
        lines = msg.get("lines", log_ring.DEFAULT_LOG_LINES)
        camera = msg.get("camera", self.name)
        if camera == self.name:
            return {"camera": self.name, "lines": log_ring.recent_lines(lines)}
        record = self.connected_clients().get(camera)
        if record is None:
            known = ", ".join([self.name, *sorted(self.connected_clients())])
            why = "its link is down" if camera in self.clients else "it has never connected"
            raise RequestError(
                "unknown_camera",
                f"logs: camera {camera!r} is not connected to {self.name}: {why} (connected: {known})",
            )
        try:
            reply = record.conn.request({"type": LOGS, "lines": lines}, timeout=5.0)
        except (RemoteError, RequestTimeout, ConnectionClosed) as exc:
            raise RequestError("camera_unreachable", f"logs: {camera} did not answer: {exc}") from None
        return {"camera": camera, "lines": reply.get("lines", [])}

    def _clock_check(self, msg: dict) -> dict:
        """Every connected client's clock minus cam0's, NTP-style: a burst of pings per link (four
        timestamps each, the lowest-RTT sample wins), all links measured in parallel."""
        samples = int(msg.get("samples", 8))
        clients = self.connected_clients()
        cameras: dict[str, dict] = {self.name: {"offset_ns": 0, "rtt_ns": 0, "samples": 0, "reference": True}}
        # Its own short-lived pool: this runs on the fan-out pool, which must not wait on itself.
        with ThreadPoolExecutor(max_workers=max(1, len(clients)), thread_name_prefix="clock") as pool:
            futures = {
                name: pool.submit(measure_clock_offset, rec.conn, samples) for name, rec in clients.items()
            }
            for name, future in futures.items():
                try:
                    cameras[name] = future.result()
                except Exception as exc:  # a camera that cannot be measured is reported, not fatal
                    cameras[name] = {"error": f"{type(exc).__name__}: {exc}"}
        return {"reference": self.name, "cameras": cameras}

    def status(self) -> dict:
        """cam0's STATUS as it goes on the wire (a `RigStatus`)."""
        clients = {}
        with self._clients_lock:
            records = list(self.clients.values())
        for c in records:
            clients[c.name] = ClientLink(
                connected=not c.conn.closed,
                status=c.status,
                status_age_s=None if c.status_at is None else round(time.time() - c.status_at, 3),
                rtt_ns=c.conn.rtt_ns_median(),
                clock_offset_ns=c.conn.clock_offset_ns(),
                close_reason=c.conn.close_reason if c.conn.closed else None,
            )
        return RigStatus(server=self.camera.camera_status(), clients=clients, session=self.current).to_dict()
