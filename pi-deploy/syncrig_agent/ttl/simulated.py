"""Virtual pins for simulated Pis, and wires between them.

A wire joins an output line of one agent to an input line of any agent (each simulated Pi is its
own process). It is a UDP datagram on loopback per edge, carrying the true instant the edge
arrives at the far end: host CLOCK_REALTIME (the simulation's true time, the time the test
picture shows) at the write, plus the wire's latency and a Gaussian jitter. The receiver stamps
the edge with its own camera clock at that instant, as a Pi's kernel stamps an edge with its
clock, and hands it over once that instant has come. So TTL-in minus TTL-out is the latency and
jitter plus the two simulated clocks' disagreement: what real wires between real Pis show.

Like every listener of the rig, the wire's socket authenticates: each datagram carries an
HMAC-SHA256 of its payload under the rig's shared secret, and anything else is dropped with a
warning. Wires run between processes on one machine, so both ends must be loopback addresses; an
edge that claims to arrive more than MAX_LEAD_NS ahead is dropped, so no datagram can stall the
receiving thread.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import queue
import random
import socket
import threading
import time

from syncrig_agent.contract.validation import parse_address
from syncrig_agent.timing.camera_clock import CameraClock
from syncrig_agent.ttl.base import InputEdge, InputLine, TtlLineError, TtlLines

log = logging.getLogger(__name__)

MAX_LEAD_NS = 1_000_000_000  # no simulated wire is longer than a second
DIGEST_BYTES = hashlib.sha256().digest_size


def _loopback(host: str, field: str) -> None:
    try:
        ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise TtlLineError(
            f"{field}: {host!r} is not a loopback address (simulated wires join local processes)"
        )


def sign(secret: bytes, payload: bytes) -> bytes:
    """A wire datagram: the HMAC-SHA256 of the payload under the shared secret, then the payload."""
    return hmac.new(secret, payload, hashlib.sha256).digest() + payload


def verified_payload(secret: bytes, datagram: bytes) -> bytes | None:
    """The payload of a datagram signed with `secret`, else None."""
    digest, payload = datagram[:DIGEST_BYTES], datagram[DIGEST_BYTES:]
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    return payload if len(digest) == DIGEST_BYTES and hmac.compare_digest(digest, expected) else None


class SimulatedLines(TtlLines):
    kind = "simulated"

    def __init__(
        self,
        clock: CameraClock,
        secret: bytes = b"",
        listen: str = "",
        wires: list[dict] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(clock)
        self._secret = secret  # signs and checks wire edges; needed only where there are wires
        self.listen = listen
        self.wires: dict[int, list[dict]] = {}
        for wire in wires or []:
            self.wires.setdefault(int(wire["line"]), []).append(wire)
        self._rng = random.Random(seed)
        self._edges: queue.Queue[InputEdge] = queue.Queue()
        self._send = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._recv: socket.socket | None = None
        self._closed = threading.Event()
        self.port: int | None = None

    def open(self, outputs: list[int], inputs: list[InputLine]) -> None:
        super().open(outputs, inputs)
        if (self.listen or self.wires) and not self._secret:
            raise TtlLineError("simulated TTL wires need the rig's shared secret to sign their edges")
        for wires in self.wires.values():
            for wire in wires:
                _loopback(parse_address(str(wire["to"]), 0, "ttl.wires.to")[0], "ttl.wires.to")
        if self.listen:
            host, port = parse_address(self.listen, 0, "ttl.sim_listen")
            _loopback(host, "ttl.sim_listen")
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((host, port))
            except OSError as exc:
                sock.close()
                raise TtlLineError(f"ttl.sim_listen {self.listen}: cannot listen: {exc}") from None
            sock.settimeout(0.2)
            self._recv = sock
            self.port = sock.getsockname()[1]
            threading.Thread(target=self._receive, name="ttl-sim-wire", daemon=True).start()

    def _drive(self, line: int, level: int) -> int:
        real = time.time_ns()  # the edge's true instant
        wall = self.clock.from_realtime(real)
        for wire in self.wires.get(line, ()):
            latency = float(wire.get("latency_us", 0.0)) * 1000
            jitter = self._rng.gauss(0.0, float(wire.get("jitter_us", 0.0)) * 1000)
            arrival = real + round(max(0.0, latency + jitter))
            message = {"line": int(wire["to_line"]), "level": level, "realtime_ns": arrival}
            host, port = parse_address(str(wire["to"]), 0, "ttl.wires.to")
            try:
                self._send.sendto(sign(self._secret, json.dumps(message).encode()), (host, port))
            except OSError as exc:  # a far end that is down is an unplugged wire, not our failure
                log.debug("wire to %s: %s", wire["to"], exc)
        return wall

    def _receive(self) -> None:
        assert self._recv is not None
        wanted = {i.line: i for i in self.inputs}
        while not self._closed.is_set():
            try:
                data = self._recv.recv(512)
            except TimeoutError:
                continue
            except OSError:
                return
            payload = verified_payload(self._secret, data)
            if payload is None:
                log.warning(
                    "ignoring a wire datagram not signed with the shared secret (%d bytes)", len(data)
                )
                continue
            try:
                message = json.loads(payload)
                line, level = int(message["line"]), int(message["level"])
                arrival = int(message["realtime_ns"])
            except (ValueError, KeyError, TypeError):
                log.warning("ignoring a malformed wire message: %r", data[:80])
                continue
            spec = wanted.get(line)
            if spec is None or (spec.edges == "rising" and not level) or (spec.edges == "falling" and level):
                continue
            delay = arrival - time.time_ns()
            if delay > MAX_LEAD_NS:
                log.warning("ignoring a wire edge %.1f s in the future", delay / 1e9)
                continue
            if delay > 0:  # the edge has not reached this pin yet
                time.sleep(delay / 1e9)
            self._edges.put(InputEdge(line, level, self.clock.from_realtime(arrival)))

    def read_edges(self, timeout_s: float) -> list[InputEdge]:
        try:
            edges = [self._edges.get(timeout=timeout_s)]
        except queue.Empty:
            return []
        while True:
            try:
                edges.append(self._edges.get_nowait())
            except queue.Empty:
                return edges

    def close(self) -> None:
        self._closed.set()
        if self._recv is not None:
            self._recv.close()
        self._send.close()

    def describe(self) -> dict:
        return {**super().describe(), "sim_port": self.port}
