"""A userspace link emulator for kernels without `tc netem`: a TCP relay that adds one-way delay,
jitter and loss to every byte it forwards.

Each route listens on HOST:PORT and forwards every accepted connection to TARGET. Each direction of
a connection is a FIFO of chunks with a release time: `now + delay + jitter` (Gaussian, clipped at
zero), plus `stall_ms` with probability `loss` -- how a lost segment looks from above TCP: the
bytes arrive, one retransmission timeout late, and everything behind them waits too (release
times never decrease, because TCP never reorders what it delivers). It is a relay, not a router:
peers connect to the relay's address, and cam0 sees the relay's address as its peer.

Run inside the "router" network namespace of the test topology:

    python tests/link_emulator.py --config routes.json --ready-file ready.json

routes.json: {"seed": 1, "routes": [{"name": "cam1", "listen": "10.0.0.254:0",
"target": "10.0.0.10:5005", "delay_ms": 20, "jitter_ms": 5, "loss": 0.01, "stall_ms": 200}]}
The ready file gets {"pid": ..., "ports": {name: actual port}}; SIGTERM ends it and writes the
per-route counters to `--stats-file` (chunks, bytes, stalls, applied delay p50/max)."""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Route:
    name: str
    listen: tuple[str, int]
    target: tuple[str, int]
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0  # probability that a chunk is "lost" once (arrives stall_ms late)
    stall_ms: float = 200.0  # Linux's minimum TCP retransmission timeout
    chunks: int = 0
    bytes: int = 0
    stalls: int = 0
    delays_ms: list[float] = field(default_factory=list)


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


class _Direction:
    """One direction of one relayed connection: a reader stamps release times, a writer keeps them."""

    def __init__(self, route: Route, src: socket.socket, dst: socket.socket, rng: random.Random) -> None:
        self.route = route
        self.src = src
        self.dst = dst
        self.rng = rng
        self.queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.cond = threading.Condition()
        self.eof = False
        self.last_release = 0.0

    def read_loop(self) -> None:
        try:
            while True:
                data = self.src.recv(65536)
                if not data:
                    break
                r = self.route
                extra = max(0.0, self.rng.gauss(r.delay_ms, r.jitter_ms) if r.jitter_ms else r.delay_ms)
                if r.loss and self.rng.random() < r.loss:
                    extra += r.stall_ms
                    r.stalls += 1
                now = time.monotonic()
                release = max(now + extra / 1000.0, self.last_release)  # TCP delivers in order
                self.last_release = release
                r.chunks += 1
                r.bytes += len(data)
                r.delays_ms.append((release - now) * 1000.0)
                with self.cond:
                    self.queue.append((release, data))
                    self.cond.notify()
        except OSError:
            pass
        with self.cond:
            self.eof = True
            self.cond.notify()

    def write_loop(self) -> None:
        try:
            while True:
                with self.cond:
                    while not self.queue and not self.eof:
                        self.cond.wait()
                    if not self.queue:
                        break
                    release, data = self.queue.popleft()
                wait = release - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                self.dst.sendall(data)
            with contextlib.suppress(OSError):
                self.dst.shutdown(socket.SHUT_WR)  # pass the FIN on, after the data it follows
        except OSError:
            # The far side is gone: tear both sockets down so the other direction ends too.
            for sock in (self.src, self.dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


def _relay(route: Route, downstream: socket.socket, rng: random.Random) -> None:
    try:
        upstream = socket.create_connection(route.target, timeout=5.0)
    except OSError:
        downstream.close()
        return
    upstream.settimeout(None)
    for sock in (downstream, upstream):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threads = []
    for src, dst in ((downstream, upstream), (upstream, downstream)):
        d = _Direction(route, src, dst, random.Random(rng.random()))
        threads += [
            threading.Thread(target=d.read_loop, daemon=True),
            threading.Thread(target=d.write_loop, daemon=True),
        ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for sock in (downstream, upstream):
        sock.close()


def _serve(route: Route, listener: socket.socket, rng: random.Random) -> None:
    while True:
        try:
            conn, _addr = listener.accept()
        except OSError:
            return
        threading.Thread(target=_relay, args=(route, conn, random.Random(rng.random())), daemon=True).start()


def _stats(routes: list[Route]) -> dict:
    out = {}
    for r in routes:
        delays = sorted(r.delays_ms)
        out[r.name] = {
            "chunks": r.chunks,
            "bytes": r.bytes,
            "stalls": r.stalls,
            "delay_ms_p50": delays[len(delays) // 2] if delays else None,
            "delay_ms_max": delays[-1] if delays else None,
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--stats-file", default="")
    args = parser.parse_args(argv)
    config = json.loads(Path(args.config).read_text())
    rng = random.Random(config.get("seed", 1))
    routes: list[Route] = []
    ports: dict[str, int] = {}
    for spec in config["routes"]:
        route = Route(
            name=spec["name"],
            listen=_address(spec["listen"]),
            target=_address(spec["target"]),
            delay_ms=float(spec.get("delay_ms", 0.0)),
            jitter_ms=float(spec.get("jitter_ms", 0.0)),
            loss=float(spec.get("loss", 0.0)),
            stall_ms=float(spec.get("stall_ms", 200.0)),
        )
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(route.listen)
        listener.listen(16)
        ports[route.name] = listener.getsockname()[1]
        routes.append(route)
        threading.Thread(
            target=_serve, args=(route, listener, random.Random(rng.random())), daemon=True
        ).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    ready = Path(args.ready_file)
    tmp = ready.with_name(ready.name + ".tmp")
    tmp.write_text(json.dumps({"pid": os.getpid(), "ports": ports}))
    os.replace(tmp, ready)
    while not done.wait(0.2):
        pass
    if args.stats_file:
        Path(args.stats_file).write_text(json.dumps(_stats(routes), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
