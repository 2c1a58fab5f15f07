""" "Deploy settings" from the web UI: the same deploy_rig as install.sh, run as a background job
whose progress (overall and per camera) reaches the page as events.

Host keys: the job first asks every camera for its key. Unknown keys end the job with their
fingerprints (nothing deployed); the page shows them, the user confirms one fingerprint at a
time (`HostKeyConfirmations.accept`: the key remembered is the one that was shown, never a key
fetched again later), and deploys again. A changed key fails that camera, whatever the user
clicks."""

from __future__ import annotations

import threading
from pathlib import Path

from controller.deploy.errors import DeployError
from controller.deploy.hostkeys import HostKeyInfo, remember_host_key, scan_host_keys
from controller.deploy.plan import DeployOptions
from controller.deploy.runner import CameraResult, deploy_rig, select_cameras
from controller.jobs import JobContext
from controller.rig.config import RigConfig


class HostKeyConfirmations:
    """Keys shown to the user and waiting for a yes, per camera."""

    def __init__(self) -> None:
        self._pending: dict[str, HostKeyInfo] = {}
        self._lock = threading.Lock()

    def offer(self, info: HostKeyInfo) -> None:
        with self._lock:
            self._pending[info.camera] = info

    def pending(self) -> list[dict]:
        with self._lock:
            return [i.to_dict() for i in self._pending.values()]

    def accept(self, camera: str, fingerprint: str, known_hosts: Path) -> dict:
        with self._lock:
            info = self._pending.get(camera)
            if info is None:
                raise DeployError(f"no host key of {camera!r} is waiting for confirmation; deploy again")
            if fingerprint != info.fingerprint:
                raise DeployError(
                    f"{camera}: the fingerprint confirmed ({fingerprint}) is not the one shown "
                    f"({info.fingerprint}); deploy again and compare"
                )
            remember_host_key(known_hosts, info)
            del self._pending[camera]
        return info.to_dict() | {"status": "remembered"}


def run_deploy_job(
    ctx: JobContext,
    config: RigConfig,
    secret: bytes,
    options: DeployOptions,
    confirmations: HostKeyConfirmations,
    cameras: list[str] | None = None,
) -> dict:
    targets = select_cameras(config, cameras)
    ctx.progress(0.0, "checking host keys")
    known_hosts = options.known_hosts_path
    infos = scan_host_keys(targets, options.ssh_port, known_hosts, options.connect_timeout_s)
    unknown = [i for i in infos if i.status == "unknown"]
    refused = {i.camera: i.message for i in infos if i.status in ("changed", "unreachable")}
    for info in unknown:
        confirmations.offer(info)
        ctx.log(
            f"{info.camera}: unknown host key {info.key_type} {info.fingerprint}: waiting for confirmation"
        )
    for name, why in refused.items():
        ctx.log(f"{name}: refused: {why}")
    if unknown:
        return {
            "ok": False,
            "needs_confirmation": [i.to_dict() for i in unknown],
            "cameras": [CameraResult(n, "", False, "host key", why).to_dict() for n, why in refused.items()],
        }
    go = [c.name for c in targets if c.name not in refused]
    live = {n: {"camera": n, "fraction": 0.0, "step": "waiting"} for n in go}

    def progress(camera: str, fraction: float, what: str) -> None:
        entry = live[camera]
        if entry["step"] != what:
            ctx.log(f"{camera}: {what}")
        entry.update(fraction=round(fraction, 3), step=what)
        # Shown while running; replaced by the final result when the job ends.
        ctx.job.result = {"running": True, "cameras": list(live.values())}
        overall = sum(e["fraction"] for e in live.values()) / len(live)
        ctx.progress(overall, " · ".join(f"{e['camera']} {e['step']}" for e in live.values()))

    results = deploy_rig(config, secret, options, go, progress) if go else []
    by_name = {r.camera: r for r in results}
    for name, why in refused.items():
        cam = next(c for c in targets if c.name == name)
        by_name[name] = CameraResult(name, f"{cam.ssh_user}@{cam.host}", False, "host key", why)
    ordered = [by_name[c.name] for c in targets]
    failed = [r.camera for r in ordered if not r.ok]
    ctx.progress(1.0, f"failed: {', '.join(failed)}" if failed else "every camera deployed and answering")
    return {"ok": not failed, "cameras": [r.to_dict() for r in ordered], "needs_confirmation": []}
