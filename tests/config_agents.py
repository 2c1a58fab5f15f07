"""A rig of agents started the way a Pi starts them: deploy's agent.json for each camera (rendered by
`controller/deploy/render.py` from the rig config), then `python -m syncrig_agent --config
agent.json` and nothing else on the command line, as the systemd unit does. Only what a desktop
cannot have is changed: the synthetic camera instead of picamera2, loopback addresses, and a ready
file so the test knows when each agent listens. The rig config keeps each camera's data directory
(`local_data_dir`) so the pull copies from it instead of SFTP (the SFTP pull has its own tests)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from controller.deploy.render import agent_settings_for
from controller.rig.config import CameraEntry, RigConfig, save_config
from syncrig_agent.contract.protocol import write_secret

from loopback_sshd import free_port

REPO = Path(__file__).resolve().parent.parent


class ConfigFileRig:
    def __init__(self, workdir: Path, cameras: int = 2, width: int = 320, height: int = 240) -> None:
        self.workdir = Path(workdir)
        self.names = [f"cam{i}" for i in range(cameras)]
        self.width, self.height = width, height
        self.processes: dict[str, subprocess.Popen] = {}
        self.config_path = self.workdir / "rig.json"

    def pi_dir(self, camera: str) -> Path:
        """That camera's install directory (agent.json, secret) and, under it, its recordings."""
        return self.workdir / "pi" / camera

    def start(self, fps: float = 20.0) -> RigConfig:
        self.workdir.mkdir(parents=True, exist_ok=True)
        secret = self.workdir / "secret"
        write_secret(secret)
        config = RigConfig(
            cameras=[
                CameraEntry(
                    name=name,
                    host="127.0.0.1",
                    role="server" if i == 0 else "client",
                    preview_port=free_port(),
                    local_data_dir=str(self.pi_dir(name) / "recordings"),
                )
                for i, name in enumerate(self.names)
            ],
            fps=fps,
            width=self.width,
            height=self.height,
            bitrate=1_000_000,
            sessions_root=str(self.workdir / "sessions"),
            control_port=free_port(),
            fanout_port=free_port(),
            secret_file=str(secret),
        ).validate()
        save_config(self.config_path, config)
        for cam in config.cameras:  # cam0 first: the clients connect to it
            install = self.pi_dir(cam.name)
            install.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(secret, install / "secret")
            os.chmod(install / "secret", 0o600)
            settings = agent_settings_for(config, cam, str(install), cam.local_data_dir)
            for key in ("listen", "fanout_listen", "preview_listen"):
                settings[key] = settings[key].replace("0.0.0.0", "127.0.0.1")
            settings.update(backend="synthetic", ready_file=str(install / "ready.json"))
            (install / "agent.json").write_text(json.dumps(settings, indent=2) + "\n")
            self._spawn(cam.name)
            self._wait_ready(cam.name)
        return config

    def _spawn(self, camera: str) -> None:
        install = self.pi_dir(camera)
        (install / "ready.json").unlink(missing_ok=True)
        log = open(install / "agent.log", "ab")
        self.processes[camera] = subprocess.Popen(
            [sys.executable, "-m", "syncrig_agent", "--config", str(install / "agent.json")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=install,
            env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'pi-deploy'}"},
        )
        log.close()

    def _wait_ready(self, camera: str, timeout: float = 30.0) -> None:
        ready = self.pi_dir(camera) / "ready.json"
        deadline = time.monotonic() + timeout
        while not ready.exists():
            proc = self.processes[camera]
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (self.pi_dir(camera) / "agent.log").read_text(errors="replace")
                raise AssertionError(f"agent {camera} did not come up (exit {proc.poll()}):\n{log[-3000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        for name in reversed(self.names):
            proc = self.processes.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
