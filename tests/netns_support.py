"""A real network between the cameras: Linux network namespaces joined by veth pairs.

    root namespace (the controller, this test process)
        │ veth  10.N.M.1
    ┌───┴────────────── router namespace: bridge br0 (10.N.M.254), link emulator ──────────────┐
    │ veth               │ veth                │ veth                                         │
  cam0 ns 10.N.M.10    cam1 ns 10.N.M.11     cam2 ns 10.N.M.12    (each a real agent process)

Every agent runs as `ip netns exec <ns> python -m syncrig_agent --config FILE` -- the command a
Pi's systemd unit runs, with a config file -- on the default ports of its own namespace.

Links are impaired in one of two honest ways:
- "netem": `tc netem` delay/jitter/loss on both ends of every camera's veth (when the kernel has
  the netem qdisc), cameras connect to each other directly;
- "relay": the userspace link emulator (tests/link_emulator.py) in the router namespace adds
  delay/jitter and loss-as-retransmission-stall to every byte; clients reach cam0's fan-out port
  (and the controller cam0's control port) through it; `tbf` limits every camera link to the
  Pi's 100 Mbit/s.
A partition is `ip link set <veth> down` on the router side of a camera's link in both modes.

Everything created here carries PREFIX and the creating pid in its name; `cleanup_leftovers`
removes what a killed test run left behind (and only that)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from controller.rig.cameras import CameraInfo
from controller.rig.simulated import SimCamera, SimulatedRig
from syncrig_agent.settings import DEFAULT_CONTROL_PORT, DEFAULT_FANOUT_PORT, DEFAULT_PREVIEW_PORT

PREFIX = "srg6"
EMULATOR = Path(__file__).with_name("link_emulator.py")
RELAY_CONTROL_PORT = 7006  # on the router address: relayed controller → cam0 control port
RELAY_FANOUT_BASE = 7100  # + client index: relayed client → cam0 fan-out port


class NetnsError(RuntimeError):
    pass


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def _in_ns(ns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return _ip("netns", "exec", ns, *cmd, check=check)


def netns_unavailable_reason() -> str | None:
    """Why namespaces cannot be used here (None: they can): not root, no `ip`, or no netns support."""
    if os.geteuid() != 0:
        return f"not running as root (uid {os.geteuid()}); ip netns and veth pairs need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"{PREFIX}-{os.getpid()}-probe"
    try:
        _ip("netns", "add", probe)
        _ip("-n", probe, "link", "add", "pa", "type", "veth", "peer", "name", "pb")
    except (NetnsError, OSError, subprocess.SubprocessError) as exc:
        return f"ip netns / veth unavailable: {exc}"
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def netem_available() -> tuple[bool, str]:
    """Whether this kernel has the netem qdisc (probed on a veth in a scratch namespace)."""
    probe = f"{PREFIX}-{os.getpid()}-netem"
    try:
        _ip("netns", "add", probe)
        _ip("-n", probe, "link", "add", "pa", "type", "veth", "peer", "name", "pb")
        _in_ns(probe, "ip", "link", "set", "pa", "up")
        result = _in_ns(
            probe, "tc", "qdisc", "add", "dev", "pa", "root", "netem", "delay", "1ms", check=False
        )
        return result.returncode == 0, (result.stderr.strip() or "netem works")
    except (NetnsError, OSError, subprocess.SubprocessError) as exc:
        return False, str(exc)
    finally:
        _ip("netns", "del", probe, check=False)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_hex(text: str) -> bool:
    return len(text) == 6 and all(c in "0123456789abcdef" for c in text)


def cleanup_leftovers() -> list[str]:
    """Delete namespaces (and root-namespace veths) of this module whose creating process is gone."""
    removed = []
    listing = _ip("netns", "list", check=False).stdout.split()
    for ns in listing:
        parts = ns.split("-")
        if len(parts) >= 3 and parts[0] == PREFIX and parts[1].isdigit() and not _pid_alive(int(parts[1])):
            _ip("netns", "del", ns, check=False)
            removed.append(ns)
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        tag = name[len(PREFIX) : len(PREFIX) + 6]
        if name.startswith(PREFIX) and _is_hex(tag) and not _pid_alive(int(tag, 16)):
            _ip("link", "del", name, check=False)
            removed.append(name)
    return removed


def _free_subnet() -> str:
    """A 10.x.y.0/24 no route of this machine uses ("10.x.y"); derived from the pid, then probed."""
    used = (
        _ip("-4", "route", "show", "table", "all", check=False).stdout + _ip("-4", "addr", check=False).stdout
    )
    base = os.getpid() % 200
    for i in range(200):
        prefix = f"10.{201 + (base + i) % 50}.{(base * 7 + i) % 250}"
        if f"{prefix}." not in used:
            return prefix
    raise NetnsError("no free 10.x.y.0/24 subnet for the test network")


@dataclass
class Impairment:
    """One-way delay/jitter (ms) and loss (probability per packet or relayed chunk) of a link."""

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0


class Topology:
    """The router namespace with its bridge, one namespace per host, and the root-side veth."""

    def __init__(self, hosts: list[str]) -> None:
        self.pid = os.getpid()
        self.subnet = _free_subnet()
        self.router_ns = f"{PREFIX}-{self.pid}-router"
        self.router_address = f"{self.subnet}.254"
        self.root_address = f"{self.subnet}.1"
        self.root_dev = f"{PREFIX}{self.pid:06x}h"  # ≤ 15 characters
        self.hosts = list(hosts)
        self.namespaces = {h: f"{PREFIX}-{self.pid}-{h}" for h in hosts}
        self.addresses = {h: f"{self.subnet}.{10 + i}" for i, h in enumerate(hosts)}
        self.router_devs = {h: f"p{i}" for i, h in enumerate(hosts)}  # router side of each host's veth
        self._created: list[str] = []

    def up(self) -> Topology:
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def _build(self) -> None:
        r = self.router_ns
        _ip("netns", "add", r)
        self._created.append(r)
        _ip("-n", r, "link", "set", "lo", "up")
        _ip("-n", r, "link", "add", "br0", "type", "bridge")
        _ip("-n", r, "addr", "add", f"{self.router_address}/24", "dev", "br0")
        _ip("-n", r, "link", "set", "br0", "up")
        for host in self.hosts:
            ns, dev = self.namespaces[host], self.router_devs[host]
            _ip("netns", "add", ns)
            self._created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # Created inside the host namespace, its peer moved into the router's.
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", dev, "netns", r)
            _ip("-n", ns, "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", r, "link", "set", dev, "master", "br0")
            _ip("-n", r, "link", "set", dev, "up")
        _ip("link", "add", self.root_dev, "type", "veth", "peer", "name", "hroot", "netns", r)
        _ip("addr", "add", f"{self.root_address}/24", "dev", self.root_dev)
        _ip("link", "set", self.root_dev, "up")
        _ip("-n", r, "link", "set", "hroot", "master", "br0")
        _ip("-n", r, "link", "set", "hroot", "up")
        self.wait_reachable()

    def wait_reachable(self, timeout: float = 10.0) -> None:
        """Until every host reaches the router (with ping when installed; a bridge without STP
        forwards at once, so without ping there is nothing to wait for)."""
        if shutil.which("ping") is None:
            return
        deadline = time.monotonic() + timeout
        pending = set(self.hosts)
        while pending and time.monotonic() < deadline:
            for host in sorted(pending):
                ping = _in_ns(
                    self.namespaces[host], "ping", "-c", "1", "-W", "1", self.router_address, check=False
                )
                if ping.returncode == 0:
                    pending.discard(host)
        if pending:
            raise NetnsError(f"no route to the router from {sorted(pending)}")

    def set_link(self, host: str, up: bool) -> None:
        """Partition (up=False) or heal a host's link: its router-side veth goes down or up."""
        _ip("-n", self.router_ns, "link", "set", self.router_devs[host], "up" if up else "down")

    def netem(self, host: str, imp: Impairment) -> None:
        """netem on both directions of a host's link (egress of each veth end)."""
        args = ["delay", f"{imp.delay_ms}ms", f"{imp.jitter_ms}ms", "distribution", "normal"]
        if imp.loss:
            args += ["loss", f"{imp.loss * 100:g}%"]
        for ns, dev in ((self.namespaces[host], "eth0"), (self.router_ns, self.router_devs[host])):
            _in_ns(ns, "tc", "qdisc", "replace", "dev", dev, "root", "netem", *args)

    def rate_limit(self, host: str, rate: str = "100mbit") -> None:
        """tbf on both directions of a host's link: a Pi's Ethernet, not a 10 Gbit/s veth."""
        for ns, dev in ((self.namespaces[host], "eth0"), (self.router_ns, self.router_devs[host])):
            _in_ns(
                ns,
                "tc",
                "qdisc",
                "replace",
                "dev",
                dev,
                "root",
                "tbf",
                "rate",
                rate,
                "burst",
                "64kb",
                "latency",
                "100ms",
            )

    def close(self) -> None:
        for ns in reversed(self._created):  # deleting a namespace deletes its veth ends (and peers)
            _ip("netns", "del", ns, check=False)
        self._created.clear()
        _ip("link", "del", self.root_dev, check=False)


class LinkEmulator:
    """tests/link_emulator.py running inside the router namespace."""

    def __init__(self, topology: Topology, workdir: Path, routes: list[dict], seed: int = 6) -> None:
        self.topology = topology
        self.workdir = workdir
        self.routes = routes
        self.seed = seed
        self.proc: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.stats: dict = {}

    def start(self, timeout: float = 15.0) -> LinkEmulator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "routes.json"
        ready = self.workdir / "emulator.ready.json"
        config.write_text(json.dumps({"seed": self.seed, "routes": self.routes}))
        log = open(self.workdir / "emulator.log", "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.topology.router_ns, sys.executable, str(EMULATOR),
             "--config", str(config), "--ready-file", str(ready),
             "--stats-file", str(self.workdir / "emulator.stats.json")],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise NetnsError(
                    f"link emulator did not start: {(self.workdir / 'emulator.log').read_text()}"
                )
            time.sleep(0.05)
        self.ports = json.loads(ready.read_text())["ports"]
        return self

    def stop(self) -> dict:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(OSError, ValueError):
            self.stats = json.loads((self.workdir / "emulator.stats.json").read_text())
        return self.stats


class NetnsRig(SimulatedRig):
    """The simulated rig's agents, each in its own namespace, started from a config file.

    `relay_ports`: when the link emulator is in the path, where on the router address clients
    (by name) and the controller ("control") reach cam0; otherwise they reach cam0 directly."""

    def __init__(
        self,
        workdir: Path,
        cameras: list[SimCamera],
        topology: Topology,
        relay_ports: dict[str, int] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(workdir, cameras, **kwargs)  # type: ignore[arg-type]
        self.topology = topology
        self.relay_ports = relay_ports or {}
        self.control_port = DEFAULT_CONTROL_PORT
        self.fanout_port = DEFAULT_FANOUT_PORT

    def address(self, camera: str) -> str:
        return self.topology.addresses[camera]

    def _agent_config(self, cam: SimCamera, role: str) -> dict:
        addr = self.address(cam.name)
        server = self.address(self.server_name)
        if cam.name in self.relay_ports:
            upstream = f"{self.topology.router_address}:{self.relay_ports[cam.name]}"
        else:
            upstream = f"{server}:{DEFAULT_FANOUT_PORT}"
        config = {
            "name": cam.name,
            "role": role,
            "data_dir": str(self.data_dir(cam.name)),
            "secret_file": str(self.secret_file),
            "backend": "synthetic",
            "width": self.width,
            "height": self.height,
            "bitrate": self.bitrate,
            "host_label": addr,
            "heartbeat_interval_s": self.heartbeat_interval_s,
            "heartbeat_timeout_s": self.heartbeat_timeout_s,
            "spin_us": self.spin_us,
            "realtime": self.realtime,
            "ready_file": str(self.workdir / "run" / f"{cam.name}.ready.json"),
            "preview_listen": f"{addr}:{DEFAULT_PREVIEW_PORT}",
            "simulation": {
                "clock_offset_us": cam.clock_offset_us,
                "drift_ppm": cam.drift_ppm,
                "drop_probability": cam.drop_probability,
                "trigger": cam.trigger,
                "jitter_us": cam.jitter_us,
            },
        }
        if role == "server":
            config["listen"] = f"{addr}:{DEFAULT_CONTROL_PORT}"
            config["fanout_listen"] = f"{addr}:{DEFAULT_FANOUT_PORT}"
        else:
            config["server"] = upstream
        return config

    def _agent_command(self, cam: SimCamera, role: str) -> list[str]:
        path = self.workdir / "config" / f"{cam.name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self._agent_config(cam, role), indent=1))
        ns = self.topology.namespaces[cam.name]
        return ["ip", "netns", "exec", ns, sys.executable, "-m", "syncrig_agent", "--config", str(path)]

    def spawn_server(self, control_port=None, fanout_port=None, timeout: float = 30.0) -> None:  # noqa: ANN001
        super().spawn_server(timeout=timeout)
        self.control_port = DEFAULT_CONTROL_PORT
        self.fanout_port = DEFAULT_FANOUT_PORT

    @property
    def control_address(self) -> tuple[str, int]:
        if "control" in self.relay_ports:
            return (self.topology.router_address, self.relay_ports["control"])
        return (self.address(self.server_name), DEFAULT_CONTROL_PORT)

    def camera_infos(self) -> list[CameraInfo]:
        return [
            CameraInfo(
                c.name,
                self.address(c.name),
                "server" if i == 0 else "client",
                self.width,
                self.height,
                self.data_dir(c.name),
            )
            for i, c in enumerate(self.cameras)
        ]


__all__ = [
    "Impairment",
    "LinkEmulator",
    "NetnsError",
    "NetnsRig",
    "PREFIX",
    "RELAY_CONTROL_PORT",
    "RELAY_FANOUT_BASE",
    "Topology",
    "cleanup_leftovers",
    "netem_available",
    "netns_unavailable_reason",
]
