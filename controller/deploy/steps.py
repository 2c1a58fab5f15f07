"""One camera's deploy, step by step. Each step reports progress and, when it fails, names
itself in the camera's result. Order matters for safety: everything is staged in the install
directory and the sudoers drop-in is checked with `visudo -c -f` on the Pi before anything is
installed as root; the agent is restarted last."""

from __future__ import annotations

import json
import posixpath
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from controller.deploy.errors import DeployError, RemoteCommandError
from controller.deploy.plan import AGENT_UNIT, GPIO_GROUP, GPIO_UDEV_PATH, CameraPlan, DeployOptions
from controller.deploy.session import SshSession
from controller.progress import Progress

# (step, share of one camera's progress). Verification happens rig-wide afterwards (runner.py).
STEPS = (
    ("connect", 0.03),
    ("upload", 0.12),
    ("venv", 0.15),
    ("pip", 0.35),
    ("sudoers", 0.07),
    ("install", 0.08),
    ("services", 0.10),
    ("verify", 0.10),
)
_START = {}
_acc = 0.0
for _name, _share in STEPS:
    _START[_name] = _acc
    _acc += _share


class StepFailed(DeployError):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass
class Artifacts:
    """Built once per deploy, shared by every camera."""

    agent_wheel: Path
    wheelhouse: list[Path]
    secret: bytes


def _root(options: DeployOptions, camera: str, path: str) -> str:
    """The destination of a system file as deploy writes it (under destdir)."""
    destdir = options.destdir_for(camera)
    return path if destdir in ("", "/") else posixpath.join(destdir, path.lstrip("/"))


class CameraDeploy:
    def __init__(
        self,
        plan_for: Callable[[str], CameraPlan],
        options: DeployOptions,
        artifacts: Artifacts,
        progress: Progress,
    ) -> None:
        self.plan_for = plan_for  # home directory on the Pi → the camera's plan
        self.plan: CameraPlan | None = None
        self.options = options
        self.artifacts = artifacts
        self.progress = progress
        self.session: SshSession | None = None
        self.step = "connect"
        self.timings: dict[str, float] = {}  # step → seconds, for the result table and tuning
        self._step_started = time.monotonic()

    def _enter(self, step: str, detail: str = "") -> None:
        self._finish_step()
        self.step = step
        self.progress(_START[step], detail or step)

    def _finish_step(self) -> None:
        now = time.monotonic()
        self.timings[self.step] = round(self.timings.get(self.step, 0.0) + now - self._step_started, 2)
        self._step_started = now

    def _sudo(self, *argv: str) -> str:
        assert self.session is not None
        try:
            return self.session.run(["sudo", "-n", *argv])
        except RemoteCommandError as exc:
            if "password is required" in str(exc):
                raise RemoteCommandError(
                    f"{exc} — the SSH user needs passwordless sudo for install, visudo and systemctl "
                    "(Raspberry Pi OS's first user has it)"
                ) from None
            raise

    def run(self, connect: Callable[[], SshSession]) -> None:
        from paramiko import SSHException

        try:
            self._enter("connect", "connecting")
            self.session = connect()
            self._finish_step()
            self.step = "plan"  # rendering can fail (a missing template): named as such
            self.plan = self.plan_for(self.session.home())
            self._upload()
            if self.options.install_packages:
                self._venv()
                self._pip()
            if self.options.start_services:
                self._check_sudoers()
                self._install()
                self._services()
        except StepFailed:
            raise
        except DeployError as exc:
            raise StepFailed(self.step, str(exc)) from None
        except (OSError, SSHException, EOFError) as exc:  # SFTP errors, dropped connections
            raise StepFailed(self.step, f"{type(exc).__name__}: {exc}") from None
        finally:
            self._finish_step()
            if self.session is not None:
                self.session.close()

    # -- steps ---------------------------------------------------------------------------------
    def _upload(self) -> None:
        self._enter("upload", "copying the agent")
        s, p = self.session, self.plan
        assert s is not None and p is not None
        s.mkdirs(p.install_dir, 0o755)
        s.mkdirs(p.data_dir, 0o755)
        s.mkdirs(p.staging_dir, 0o700)
        # The package-copy layout of earlier deploys would shadow the installed wheel
        # (WorkingDirectory is on sys.path for `python -m`).
        old_copy = posixpath.join(p.install_dir, "syncrig_agent")
        if s.exists(old_copy):
            s.run(["rm", "-rf", "--", old_copy])
        wheels = posixpath.join(p.install_dir, "wheels")
        s.mkdirs(wheels, 0o755)
        for wheel in [self.artifacts.agent_wheel, *self.artifacts.wheelhouse]:
            s.put_file(wheel, posixpath.join(wheels, wheel.name))
        s.put_bytes(self.artifacts.secret + b"\n", p.secret_path, 0o600)
        s.put_bytes(
            (json.dumps(p.agent_settings, indent=2) + "\n").encode(),
            posixpath.join(p.install_dir, "agent.json"),
        )
        for f in [*p.files, p.sudoers]:
            s.put_bytes(f.content.encode(), p.staged(f), f.mode)

    def _venv(self) -> None:
        self._enter("venv", "creating the venv")
        venv = posixpath.join(self.plan.install_dir, "venv")
        python = posixpath.join(venv, "bin", "python")
        assert self.session is not None
        if not self.session.exists(python):
            # --system-site-packages: picamera2/libcamera (and numpy, av) come from the OS.
            # --without-pip: the OS's pip (python3-pip) is visible through the system site
            # packages and installs into the venv; ensurepip only when there is none.
            self.session.run(["python3", "-m", "venv", "--system-site-packages", "--without-pip", venv])
        try:
            self.session.run([python, "-m", "pip", "--version"])
        except RemoteCommandError:
            self.session.run([python, "-m", "ensurepip", "--default-pip"])

    def _pip(self) -> None:
        self._enter("pip", "pip install")
        p = self.plan
        python = posixpath.join(p.install_dir, "venv", "bin", "python")
        wheels = posixpath.join(p.install_dir, "wheels")
        argv = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade"]
        argv += ["--upgrade-strategy", "only-if-needed", "--find-links", wheels]
        if self.artifacts.wheelhouse:
            argv.append("--no-index")
        argv.append(posixpath.join(wheels, self.artifacts.agent_wheel.name))
        assert self.session is not None
        self.session.run(argv)

    def _check_sudoers(self) -> None:
        self._enter("sudoers", "visudo -c")
        staged = self.plan.staged(self.plan.sudoers)
        try:
            self._sudo("visudo", "-c", "-f", staged)
        except RemoteCommandError as exc:
            raise StepFailed(
                "sudoers", f"the sudoers drop-in fails visudo -c, nothing installed: {exc}"
            ) from None

    def _install(self) -> None:
        self._enter("install", "installing system files")
        p, o, cam = self.plan, self.options, self.plan.camera.name
        # One `install` per destination directory and mode (staged names are the final names).
        groups: dict[tuple[str, int], list[str]] = {}
        for f in p.files:
            groups.setdefault((posixpath.dirname(f.dest), f.mode), []).append(p.staged(f))
        for (directory, mode), sources in groups.items():
            target = _root(o, cam, directory)
            self._sudo(
                "install", "-D", "-o", "root", "-g", "root", "-m", f"{mode:04o}", "-t", target, *sources
            )
        if any(f.dest == GPIO_UDEV_PATH for f in p.files) and o.destdir_for(cam) == "/":
            # TTL lines: the gpio group now (sysusers.d makes it at boot), the rule applied to the
            # chips present. Only on a real root: these act on the running system, not on destdir.
            self._sudo("groupadd", "-f", "--system", GPIO_GROUP)
            self._sudo("udevadm", "control", "--reload-rules")
            self._sudo("udevadm", "trigger", "--subsystem-match=gpio", "--action=change")
        # sudoers last and atomically: install under a name sudo ignores (it contains a dot),
        # check the installed copy again, then rename it into place.
        final = _root(o, cam, p.sudoers.dest)
        tmp = final + ".new"
        self._sudo("install", "-D", "-o", "root", "-g", "root", "-m", "0440", p.staged(p.sudoers), tmp)
        try:
            self._sudo("visudo", "-c", "-f", tmp)
        except RemoteCommandError as exc:
            self._sudo("rm", "-f", "--", tmp)
            raise StepFailed(
                "install", f"the installed sudoers copy fails visudo -c, removed: {exc}"
            ) from None
        self._sudo("mv", "-f", "--", tmp, final)

    def _services(self) -> None:
        self._enter("services", "restarting services")
        p, o, cam = self.plan, self.options, self.plan.camera.name
        assert self.session is not None
        for unit in p.stale_units:
            if self.session.exists(_root(o, cam, f"/etc/systemd/system/{unit}")):
                self._sudo("systemctl", "disable", "--now", unit)
        restart_chrony = False
        for path in p.stale_files:
            if self.session.exists(_root(o, cam, path)):
                self._sudo("rm", "-f", "--", _root(o, cam, path))
                restart_chrony = True
        installed = [
            unit
            for unit in p.competing_units
            if any(
                self.session.exists(_root(o, cam, f"{base}/{unit}"))
                for base in ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system")
            )
        ]
        if installed:
            self._sudo("systemctl", "disable", "--now", *installed)
        self._sudo("systemctl", "daemon-reload")
        self._sudo("systemctl", "enable", *p.units)
        # One transaction: systemd orders the restarts by the units' own After= lines.
        restart = [*p.restart_only, *(["chrony.service"] if restart_chrony else []), *p.units]
        self._sudo("systemctl", "restart", *restart)
        self._enter("verify", "waiting for the agent")
        try:
            self.session.run(["systemctl", "is-active", AGENT_UNIT])
        except RemoteCommandError as exc:
            raise StepFailed("verify", f"{AGENT_UNIT} is not active after restart: {exc}") from None
