"""Deploying a rig: every camera in parallel (a thread per camera; SSH waits on the network, not
the CPU), then one verification through cam0, then a result per camera. The CLI and the web UI
call exactly this."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from controller.deploy.errors import DeployError
from controller.deploy.plan import DeployOptions, plan_camera
from controller.deploy.session import SshSession
from controller.deploy.steps import _START, Artifacts, CameraDeploy, StepFailed
from controller.deploy.verify import recording_in_progress, verify_agents
from controller.deploy.wheel import build_agent_wheel
from controller.rig.config import CameraEntry, ConfigError, RigConfig

# camera, fraction of that camera's deploy, what it is doing
CameraProgress = Callable[[str, float, str], None]


@dataclass
class CameraResult:
    camera: str
    target: str  # user@host
    ok: bool = False
    step: str = ""  # the step that failed; "done" when ok
    message: str = ""
    seconds: float = 0.0
    install_dir: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # step → seconds

    def to_dict(self) -> dict:
        return {
            "camera": self.camera,
            "target": self.target,
            "ok": self.ok,
            "step": self.step,
            "message": self.message,
            "seconds": round(self.seconds, 2),
            "install_dir": self.install_dir,
            "timings": self.timings,
        }


def select_cameras(config: RigConfig, names: list[str] | None) -> list[CameraEntry]:
    known = [c.name for c in config.cameras]
    unknown = [n for n in names or [] if n not in known]
    if unknown:
        raise ConfigError(f"camera: unknown camera(s) {', '.join(unknown)} (configured: {', '.join(known)})")
    return [c for c in config.cameras if not names or c.name in names]


def deploy_rig(
    config: RigConfig,
    secret: bytes,
    options: DeployOptions,
    cameras: list[str] | None = None,
    progress: CameraProgress | None = None,
) -> list[CameraResult]:
    """Deploy to `cameras` (default all); never raises for one camera's failure — see the results.
    Raises DeployError before touching any Pi when cam0 is recording."""
    config.validate()
    options.validate()
    targets = select_cameras(config, cameras)
    busy = recording_in_progress(config, secret)
    if busy:
        raise DeployError(
            f"cam0 is recording ({busy}): stop the recording before deploying (it restarts the agents)"
        )
    report = progress or (lambda _c, _f, _s: None)
    lock = threading.Lock()

    def tell(cam: str, fraction: float, what: str) -> None:
        with lock:
            report(cam, fraction, what)

    with tempfile.TemporaryDirectory(prefix="syncrig-deploy-") as tmp:
        wheelhouse = sorted(Path(options.wheelhouse).glob("*.whl")) if options.wheelhouse else []
        if options.wheelhouse and not wheelhouse:
            raise DeployError(f"wheelhouse {options.wheelhouse}: no .whl files in it")
        artifacts = Artifacts(build_agent_wheel(Path(tmp)), wheelhouse, secret)

        def one(cam: CameraEntry) -> CameraResult:
            result = CameraResult(cam.name, f"{cam.ssh_user}@{cam.host}")
            started = time.monotonic()
            job = CameraDeploy(
                lambda home: plan_camera(config, cam, home, options),
                options,
                artifacts,
                lambda f, what: tell(cam.name, f, what),
            )
            try:
                job.run(
                    lambda: SshSession.open(
                        cam.name,
                        cam.host,
                        cam.ssh_user,
                        options.ssh_port,
                        options.known_hosts_path,
                        options.key_filename,
                        options.connect_timeout_s,
                    )
                )
                result.ok, result.step = True, "done"
            except StepFailed as exc:
                result.step, result.message = exc.step, str(exc)
            except (ConfigError, ValueError) as exc:  # a template that cannot be rendered
                result.step, result.message = job.step, str(exc)
            result.timings = dict(job.timings)
            if job.plan is not None:
                result.install_dir = job.plan.install_dir
            result.seconds = time.monotonic() - started
            tell(cam.name, _START["verify"] if result.ok else 1.0, "installed" if result.ok else "failed")
            return result

        with ThreadPoolExecutor(max_workers=max(1, min(options.workers, len(targets)))) as pool:
            results = list(pool.map(one, targets))

    if options.start_services:
        waiting = [r for r in results if r.ok]
        if waiting:
            started = time.monotonic()
            share = 1.0 - _START["verify"]

            def tick(f: float) -> None:
                for r in waiting:
                    tell(r.camera, _START["verify"] + share * f, "waiting for the agent")

            problems = verify_agents(
                config, secret, [r.camera for r in waiting], options.verify_timeout_s, tick
            )
            for r in waiting:
                if problems.get(r.camera):
                    r.ok, r.step, r.message = False, "verify", str(problems[r.camera])
                r.seconds += time.monotonic() - started
                r.timings["verify"] = round(r.timings.get("verify", 0.0) + time.monotonic() - started, 2)
    for r in results:
        tell(r.camera, 1.0, "ok" if r.ok else f"failed at {r.step}")
    return results
