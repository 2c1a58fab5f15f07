"""The simulated rig: cam0 and its clients as separate local agent processes on loopback.

They are the very agents a Pi runs (`python -m syncrig_agent`), with the synthetic camera backend
and simulated clock errors, so everything downstream sees what a real rig produces."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from controller.rig.cameras import CameraInfo
from controller.rig.cluster_link import ClusterLink
from controller.rig.config import CameraEntry, RigConfig, save_config
from syncrig_agent.contract.protocol import load_secret, write_secret
from syncrig_agent.settings import DEFAULT_PREVIEW_PORT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimCamera:
    name: str
    clock_offset_us: float = 0.0
    drift_ppm: float = 0.0
    drop_probability: float = 0.0
    trigger: str = "scheduled"  # "scheduled", "wake" or "freerun" (a free-running, phase-locked sensor)
    jitter_us: float = 0.0
    crystal_ppm: float | None = None  # freerun: the sensor's crystal error (None: random in ±50 ppm)
    clock_sync: str = "synchronized"  # the clock state the agent reports (see simulation.clock_sync)
    # charuco scene: this camera's model (JSON dict: matrix, distortions, rotation, translation);
    # None = its place on the simulated camera arc (syncrig_agent.sim.charuco_sim).
    scene_camera: dict | None = None
    # TTL lines of this simulated Pi (the agent settings' "ttl" section; virtual pins and wires).
    ttl: dict | None = None


class RigStartError(RuntimeError):
    pass


class SimulatedRig:
    def __init__(
        self,
        workdir: Path | str,
        cameras: list[SimCamera],
        width: int = 640,
        height: int = 360,
        heartbeat_interval_s: float = 1.0,
        heartbeat_timeout_s: float = 10.0,
        spin_us: float = 0.0,
        realtime: bool = True,
        bitrate: int = 8_000_000,
        extra_args: list[str] | None = None,
        scene: str = "default",
        board: dict | None = None,
    ) -> None:
        if not cameras:
            raise ValueError("a rig needs at least one camera")
        names = [c.name for c in cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must be unique: {names}")
        self.workdir = Path(workdir)
        self.cameras = cameras
        self.width = width
        self.height = height
        self.heartbeat_interval_s = heartbeat_interval_s
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.spin_us = spin_us
        self.realtime = realtime
        self.bitrate = bitrate
        self.extra_args = extra_args or []
        self.scene = scene  # what the synthetic cameras film: "default" or "charuco"
        self.board = board  # charuco scene: board spec fields (None: charuco_sim.DEFAULT_BOARD)
        self.processes: dict[str, subprocess.Popen] = {}
        self.control_port: int | None = None
        self.fanout_port: int | None = None
        self.preview_ports: dict[str, int] = {}  # camera → its agent's MJPEG preview port
        self.secret_file = self.workdir / "secret"
        self.secret: bytes = b""

    @property
    def server_name(self) -> str:
        return self.cameras[0].name

    @property
    def camera_names(self) -> list[str]:
        return [c.name for c in self.cameras]

    def data_dir(self, camera: str) -> Path:
        """Where that camera's agent records: its 'SD card'."""
        return self.workdir / "pi" / camera

    def camera_infos(self) -> list[CameraInfo]:
        """The rig's cameras as the recorder sees them (files gathered from each agent's dir)."""
        return [
            CameraInfo(
                c.name,
                "localhost",
                "server" if i == 0 else "client",
                self.width,
                self.height,
                self.data_dir(c.name),
            )
            for i, c in enumerate(self.cameras)
        ]

    @property
    def ground_truth_file(self) -> Path:
        """charuco scene: every camera's model, the board and its trajectory (written by start)."""
        return self.workdir / "ground_truth.json"

    def _write_scene(self) -> None:
        """The charuco scene's ground truth, and each agent's share of it (its --sim-scene-file)."""
        from syncrig_agent.sim.charuco_sim import camera_config, scene_description

        description = scene_description(self.camera_names, self.width, self.height, self.board)
        for cam in self.cameras:
            if cam.scene_camera is not None:
                description["cameras"][cam.name] = {"size": [self.width, self.height], **cam.scene_camera}
        self.ground_truth_file.write_text(json.dumps(description, indent=2) + "\n")
        for cam in self.cameras:
            path = self.workdir / "run" / f"{cam.name}.scene.json"
            path.write_text(json.dumps(camera_config(description, cam.name), indent=2) + "\n")

    def log_file(self, camera: str) -> Path:
        return self.workdir / "logs" / f"{camera}.log"

    def _agent_command(self, cam: SimCamera, role: str) -> list[str]:
        ready = self.workdir / "run" / f"{cam.name}.ready.json"
        cmd = [
            sys.executable,
            "-m",
            "syncrig_agent",
            "--role",
            role,
            "--name",
            cam.name,
            "--data-dir",
            str(self.data_dir(cam.name)),
            "--secret-file",
            str(self.secret_file),
            "--backend",
            "synthetic",
            "--width",
            str(self.width),
            "--height",
            str(self.height),
            "--bitrate",
            str(self.bitrate),
            "--host-label",
            "localhost",
            "--heartbeat-interval-s",
            str(self.heartbeat_interval_s),
            "--heartbeat-timeout-s",
            str(self.heartbeat_timeout_s),
            "--spin-us",
            str(self.spin_us),
            "--sim-clock-offset-us",
            str(cam.clock_offset_us),
            "--sim-drift-ppm",
            str(cam.drift_ppm),
            "--sim-drop-prob",
            str(cam.drop_probability),
            "--sim-trigger",
            cam.trigger,
            "--sim-jitter-us",
            str(cam.jitter_us),
            "--sim-clock-sync",
            cam.clock_sync,
            "--ready-file",
            str(ready),
            "--preview-listen",
            f"127.0.0.1:{self.preview_ports.get(cam.name, 0)}",  # a restarted agent keeps its port
            "--earlier-log",  # the file spawn() appends its output to: earlier runs stay in its log
            str(self.log_file(cam.name)),
        ]
        if cam.crystal_ppm is not None:
            cmd += ["--sim-crystal-ppm", str(cam.crystal_ppm)]
        if cam.ttl:
            cmd += ["--ttl-json", json.dumps(cam.ttl)]
        if not self.realtime:
            cmd.append("--no-realtime")
        if self.scene != "default":
            cmd += [
                "--sim-scene",
                self.scene,
                "--sim-scene-file",
                str(self.workdir / "run" / f"{cam.name}.scene.json"),
            ]
        if role == "server":
            cmd += [
                "--listen",
                f"127.0.0.1:{self.control_port or 0}",
                "--fanout-listen",
                f"127.0.0.1:{self.fanout_port or 0}",
            ]
        else:
            cmd += ["--server", f"127.0.0.1:{self.fanout_port}"]
        return cmd + self.extra_args

    def spawn(self, cam: SimCamera, role: str) -> subprocess.Popen:
        ready = self.workdir / "run" / f"{cam.name}.ready.json"
        ready.unlink(missing_ok=True)
        self.log_file(cam.name).parent.mkdir(parents=True, exist_ok=True)
        logfh = open(self.log_file(cam.name), "ab")
        proc = subprocess.Popen(
            self._agent_command(cam, role), stdout=logfh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        logfh.close()
        self.processes[cam.name] = proc
        return proc

    def wait_ready(self, camera: str, timeout: float = 20.0) -> dict:
        ready = self.workdir / "run" / f"{camera}.ready.json"
        deadline = time.monotonic() + timeout
        proc = self.processes[camera]
        while time.monotonic() < deadline:
            if ready.exists():
                return json.loads(ready.read_text())
            if proc.poll() is not None:
                raise RigStartError(
                    f"agent {camera} exited with {proc.returncode}; see {self.log_file(camera)}:\n"
                    + self.log_tail(camera)
                )
            time.sleep(0.05)
        raise RigStartError(f"agent {camera} not ready after {timeout:g} s; see {self.log_file(camera)}")

    def log_tail(self, camera: str, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file(camera).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def start(self, timeout: float = 30.0) -> SimulatedRig:
        (self.workdir / "run").mkdir(parents=True, exist_ok=True)
        if not self.secret_file.exists():
            write_secret(self.secret_file)
        self.secret = load_secret(self.secret_file)
        if self.scene == "charuco":
            self._write_scene()
        self.spawn_server(timeout=timeout)
        for cam in self.cameras[1:]:
            self.spawn(cam, "client")
        self.wait_connected(timeout)
        for cam in self.cameras[1:]:
            self._note_ready(self.wait_ready(cam.name, timeout))
        return self

    def _note_ready(self, info: dict) -> None:
        if info.get("preview_port"):
            self.preview_ports[info["name"]] = int(info["preview_port"])

    def spawn_server(
        self, control_port: int | None = None, fanout_port: int | None = None, timeout: float = 30.0
    ) -> None:
        """(Re)start cam0; by default on the ports it had before, so clients find it again."""
        if control_port is not None:
            self.control_port = control_port
        if fanout_port is not None:
            self.fanout_port = fanout_port
        server = self.cameras[0]
        self.spawn(server, "server")
        info = self.wait_ready(server.name, timeout)
        self.control_port = info["control_port"]
        self.fanout_port = info["fanout_port"]
        self._note_ready(info)

    def wait_connected(self, timeout: float = 30.0, names: list[str] | None = None) -> dict:
        """Until cam0 reports every client connected (returns cam0's status)."""
        wanted = set(names if names is not None else self.camera_names[1:])
        deadline = time.monotonic() + timeout
        with self.link() as link:
            while True:
                status = link.status()
                up = {n for n, c in status["clients"].items() if c["connected"]}
                if wanted <= up:
                    return status
                for name in wanted - up:
                    proc = self.processes.get(name)
                    if proc is not None and proc.poll() is not None:
                        raise RigStartError(
                            f"agent {name} exited with {proc.returncode}:\n{self.log_tail(name)}"
                        )
                if time.monotonic() > deadline:
                    raise RigStartError(f"clients not connected after {timeout:g} s: {sorted(wanted - up)}")
                time.sleep(0.1)

    @property
    def control_address(self) -> tuple[str, int]:
        if self.control_port is None:
            raise RigStartError("rig not started")
        return ("127.0.0.1", self.control_port)

    def link(self, **kwargs: object) -> ClusterLink:
        return ClusterLink(self.control_address, self.secret, **kwargs)  # type: ignore[arg-type]

    def write_rig_config(self, path: Path | str, fps: float = 30.0) -> RigConfig:
        """A rig config with which a controller drives this simulated rig (saved to `path`)."""
        if self.control_port is None or self.fanout_port is None:
            raise RigStartError("rig not started")
        config = RigConfig(
            cameras=[
                CameraEntry(
                    name=cam.name,
                    host="127.0.0.1",
                    role="server" if i == 0 else "client",
                    preview_port=self.preview_ports.get(cam.name, DEFAULT_PREVIEW_PORT),  # --no-preview
                    local_data_dir=str(self.data_dir(cam.name).resolve()),
                )
                for i, cam in enumerate(self.cameras)
            ],
            fps=fps,
            width=self.width,
            height=self.height,
            bitrate=self.bitrate,
            sessions_root=str((self.workdir / "sessions").resolve()),
            control_port=self.control_port,
            fanout_port=self.fanout_port,
            heartbeat_interval_s=self.heartbeat_interval_s,
            heartbeat_timeout_s=self.heartbeat_timeout_s,
            secret_file=str(self.secret_file.resolve()),
        )
        save_config(path, config)
        return config

    def terminate(self, camera: str, timeout: float = 15.0) -> int | None:
        """SIGTERM one agent (it closes its files cleanly) and wait for it."""
        proc = self.processes.get(camera)
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("agent %s ignored SIGTERM; killing it", camera)
            proc.kill()
            return proc.wait()

    def restart_agent(self, camera: str, timeout: float = 30.0) -> None:
        """Restart one agent process, as systemd restarts a Pi's: SIGTERM (SIGKILL after 5 s, a
        frozen agent ignores it; SIGCONT lets a stopped one die), then the same command again."""
        index = self.camera_names.index(camera)
        proc = self.processes.get(camera)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.send_signal(signal.SIGCONT)
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if index == 0:
            self.spawn_server(timeout=timeout)
            return
        self.spawn(self.cameras[index], "client")
        self._note_ready(self.wait_ready(camera, timeout))
        self.wait_connected(timeout, names=[camera])

    def stop(self) -> None:
        # Clients first, so none of them sees its server vanish while it still records.
        for name in reversed(self.camera_names):
            self.terminate(name)

    def __enter__(self) -> SimulatedRig:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# The simulated Pis' virtual TTL output lines (BCM numbers a Pi would use; any free lines do).
SIM_TTL_LINES = {"start": 5, "strobe": 6, "barcode": 13}


def with_ttl_out(
    cameras: list[SimCamera], roles: list[str], camera: str | None = None, strobe_width_us: float = 5000.0
) -> list[SimCamera]:
    """`cameras` with TTL out of `roles` on `camera` (default the first, cam0) on virtual pins."""
    if not roles:
        return cameras
    name = camera or cameras[0].name
    if name not in [c.name for c in cameras]:
        names = ", ".join(c.name for c in cameras)
        raise ValueError(f"--ttl-camera: no camera {name!r} in this rig ({names})")
    ttl = {
        "backend": "simulated",
        "outputs": {role: SIM_TTL_LINES[role] for role in roles},
        "strobe_width_us": strobe_width_us,
    }
    return [replace(c, ttl={**(c.ttl or {}), **ttl}) if c.name == name else c for c in cameras]


def sim_cameras(
    count: int,
    offsets_us: list[float] | None = None,
    drift_ppm: list[float] | None = None,
    drop_probability: float = 0.0,
    trigger: str = "scheduled",
    jitter_us: float = 0.0,
    crystal_ppm: list[float] | None = None,
) -> list[SimCamera]:
    if count < 1:
        raise ValueError("--sim needs at least one camera")
    offsets = offsets_us or []
    drifts = drift_ppm or []
    crystals = crystal_ppm or []
    return [
        SimCamera(
            name=f"cam{i}",
            clock_offset_us=offsets[i] if i < len(offsets) else 0.0,
            drift_ppm=drifts[i] if i < len(drifts) else 0.0,
            drop_probability=drop_probability,
            trigger=trigger,
            jitter_us=jitter_us,
            crystal_ppm=crystals[i] if i < len(crystals) else None,
        )
        for i in range(count)
    ]


__all__ = ["SIM_TTL_LINES", "RigStartError", "SimCamera", "SimulatedRig", "sim_cameras", "with_ttl_out"]
