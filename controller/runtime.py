"""Everything one running controller holds: the rig configuration (and the file it came from), the
event bus, the job runner and the rig service. The web app is a view over this object; `syncrig
demo` adds a simulated rig underneath it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from controller.deploy import DeployOptions, select_cameras
from controller.deploy.job import HostKeyConfirmations, run_deploy_job
from controller.events import EventBus
from controller.jobs import Job, JobContext, JobRunner
from controller.rig.cameras import camera_infos
from controller.rig.config import ConfigError, RigConfig, check_desktop_dir, load_config, save_config
from controller.rig.preflight import PreflightLimits
from controller.rig.schedule import SCHEDULES_FILE, Scheduler
from controller.rig.service import STATE_DIR, RigError, RigService
from controller.rig.state import RecordingState
from syncrig_agent.contract.protocol import load_secret

log = logging.getLogger(__name__)

#: What the Settings page edits (api_settings), in its order. A camera entry's `ttl` (its TTL
#: lines) is edited with the cameras but reported as its own field "ttl" in `changed`.
EDITABLE_FIELDS = (
    "cameras",
    "fps",
    "width",
    "height",
    "bitrate",
    "keyframe_interval_s",
    "sessions_root",
    "pi_data_dir",
    "pi_install_dir",
)
#: The fields the simulated cameras run with: changing one restarts them. Everything else takes
#: effect at once (fps is sent with each START; the directories are this desktop's or deploy's).
SIMULATED_RIG_FIELDS = ("cameras", "width", "height", "bitrate", "keyframe_interval_s")
#: What a real rig's agents read from agent.json: saved here, in effect after Deploy.
CAPTURE_FIELDS = ("width", "height", "bitrate", "keyframe_interval_s", "ttl")
#: Saved but not what the simulated rig runs with: its TTL lines come from `syncrig demo
#: --ttl-out` (virtual pins), so the page's are kept for a real rig and change nothing here.
NOT_SIMULATED_FIELDS = ("ttl",)


def changed_fields(old: RigConfig, new: RigConfig) -> list[str]:
    """The editable fields that differ, "ttl" apart from "cameras" (a change to the cameras' TTL
    lines alone does not count as a change to the cameras)."""

    def without_ttl(config: RigConfig) -> list[dict]:
        return [{**entry, "ttl": None} for entry in config.to_dict()["cameras"]]

    others = [name for name in EDITABLE_FIELDS if name != "cameras"]
    changed = [name for name in others if getattr(old, name) != getattr(new, name)]
    if without_ttl(old) != without_ttl(new):
        changed.insert(0, "cameras")
    if {c.name: c.ttl or {} for c in old.cameras} != {c.name: c.ttl or {} for c in new.cameras}:
        changed.append("ttl")
    return changed


class ControllerRuntime:
    def __init__(
        self,
        config_path: Path,
        sessions_root: Path | None = None,
        poll_interval_s: float = 1.0,
        apply_settings: Callable[[RigConfig, JobContext], RigConfig | None] | None = None,
        run_schedules: bool = True,
        restart_agent: Callable[[str], None] | None = None,
    ) -> None:
        self.config_path = Path(config_path)
        self.config = load_config(self.config_path)
        self.secret = load_secret(Path(self.config.secret_file).expanduser())
        self.sessions_root = Path(sessions_root or self.config.sessions_root).expanduser()
        self.bus = EventBus()
        self.jobs = JobRunner(self.bus)
        self.poll_interval_s = poll_interval_s
        #: Makes saved settings take effect (the demo restarts its simulated agents); None on a
        #: real rig, where "deploy" pushes them to the Pis.
        self.apply_settings = apply_settings
        #: Restarts one camera's agent: the simulated rig's process; None on a real rig, where
        #: systemd does it through deploy's sudoers rule (rig/restart.py).
        self.restart_agent = restart_agent
        self._lock = threading.Lock()
        self.rig = self._make_rig()
        #: How "Deploy settings" reaches the Pis (known_hosts, key, port); host keys the user
        #: was shown and may confirm.
        self.deploy_options = DeployOptions()
        self.host_keys = HostKeyConfirmations()
        #: Recording schedules (rig/schedule.py); None where this runtime runs none (a headless
        #: `syncrig record --config` beside a running controller must not start its schedules).
        self.schedules: Scheduler | None = None
        if run_schedules:
            self.schedules = Scheduler(
                self.sessions_root / STATE_DIR / SCHEDULES_FILE,
                lambda: self.rig,
                self.jobs,
                self.bus,
                self.sessions_root,
            )

    def _make_rig(self) -> RigService:
        return RigService(
            self.config,
            self.secret,
            camera_infos(self.config),
            self.sessions_root,
            self.jobs,
            self.bus,
            limits=PreflightLimits(
                max_clock_offset_us=float(self.config.extra.get("max_clock_offset_us", 1000.0)),
                max_sync_offset_us=float(self.config.extra.get("max_sync_offset_us", 100.0)),
                max_temperature_c=float(self.config.extra.get("max_temperature_c", 80.0)),
            ),
            poll_interval_s=self.poll_interval_s,
        )

    def start(self) -> ControllerRuntime:
        self.rig.start()  # first: a run re-attached after a restart is seen by the schedules
        if self.schedules is not None:
            self.schedules.start()
        return self

    def close(self) -> None:
        if self.schedules is not None:
            self.schedules.close()
        self.rig.close()
        self.jobs.shutdown(wait=False)
        self.bus.close()

    # -- headless ----------------------------------------------------------------------------
    def record(
        self,
        seconds: float,
        subject: str | None = None,
        project: str | None = None,
        override: bool = False,
        timeout_s: float | None = None,
        exclude: list[str] | None = None,
    ) -> Job:
        """One recording exactly as the UI's Record runs it (pre-flight, START, live streams, STOP,
        pull + verify), waited for: `syncrig record --config` and scripts. Returns the finished job
        (its `result` names the session; `error` says why it failed)."""
        job_id = self.rig.start_recording(subject, project, seconds, override, exclude or [])
        return self.jobs.wait(job_id, timeout=timeout_s)

    # -- settings ----------------------------------------------------------------------------
    def save_settings(self, data: dict) -> dict:
        """Validate and atomically save a new configuration, then make it take effect: what only this
        desktop uses (fps, the directories) at once; the simulated cameras restart (a job) only when
        a field they run with changed (`SIMULATED_RIG_FIELDS`), a real rig's agents get capture
        fields and TTL lines with Deploy (`CAPTURE_FIELDS`). The answer names the fields: `changed`,
        `applied` (in effect now), `restart_for` (why the simulated rig restarts), `deploy_for`,
        `not_simulated` (saved for a real rig; the simulated rig's TTL comes from `--ttl-out`),
        `job_id`.

        Raises ConfigError naming the bad field; nothing is written then."""
        if self.rig.recording_state != RecordingState.IDLE:
            raise RigError("settings cannot change while a recording is in progress")
        merged = {**self.config.to_dict(), **data}
        # Fields the page does not edit keep their values; the secret never comes from a form.
        merged["secret_file"] = self.config.secret_file
        new = RigConfig.from_dict(merged)
        old = self.config
        changed = changed_fields(old, new)
        sessions_root = self.sessions_root
        if "sessions_root" in changed:
            sessions_root = check_desktop_dir("sessions_root", new.sessions_root)
        save_config(self.config_path, new)
        with self._lock:
            self.config = new
            self.sessions_root = sessions_root
            if (old.server.host, old.control_port) != (new.server.host, new.control_port):
                # cam0 moved: a new link (and a fresh status) to the new address.
                self.rig.close()
                self.rig = self._make_rig().start()
            else:
                self.rig.config = new
                self.rig.cameras = camera_infos(new)
                self.rig.sessions_root = sessions_root
        log.info("settings saved to %s (changed: %s)", self.config_path, ", ".join(changed) or "nothing")
        simulated = self.apply_settings is not None
        # A real rig's agents take capture settings from agent.json, which Deploy writes.
        waiting = SIMULATED_RIG_FIELDS if simulated else CAPTURE_FIELDS
        restart_for = [name for name in changed if name in waiting]
        not_used = [name for name in changed if simulated and name in NOT_SIMULATED_FIELDS]
        result: dict = {
            "saved": str(self.config_path),
            "changed": changed,
            "applied": [name for name in changed if name not in restart_for + not_used],
            "restart_for": restart_for if simulated else [],
            "deploy_for": [] if simulated else restart_for,
            "not_simulated": not_used,
            "job_id": None,
        }
        if simulated and restart_for:
            apply = self.apply_settings

            def run(ctx: JobContext) -> dict:
                applied = apply(new, ctx)
                if applied is not None:
                    with self._lock:
                        self.config = applied
                        self.rig.config = applied
                        self.rig.cameras = camera_infos(applied)
                return {"restarted_for": restart_for}

            title = f"Restart the simulated cameras ({', '.join(restart_for)} changed)"
            result["job_id"] = self.jobs.submit("settings", title, run).id
        elif restart_for:
            result["note"] = f"saved; run Deploy (install.sh) to push {', '.join(restart_for)} to the Pis"
        return result

    # -- one camera ---------------------------------------------------------------------------
    def restart_camera(self, camera: str) -> str:
        """Restart one camera's agent as a job (refused while recording: it would lose the camera)."""
        from controller.rig.restart import RestartError, restart_agent_over_ssh

        if camera not in {c.name for c in self.config.cameras}:
            raise RigError(f"unknown camera {camera!r}", 404, "camera")
        if self.rig.recording_state != RecordingState.IDLE:
            raise RigError(f"{camera}: restarting an agent would stop its recording; stop first", 409)
        config, options, simulated = self.config, self.deploy_options, self.restart_agent

        def run(ctx: JobContext) -> dict:
            ctx.progress(0.1, f"restarting {camera}'s agent")
            if simulated is not None:
                simulated(camera)
                ctx.log(f"{camera}: simulated agent process restarted")
                return {"camera": camera, "how": "process"}
            try:
                said = restart_agent_over_ssh(config, camera, options)
            except RestartError as exc:
                raise RuntimeError(str(exc)) from None
            ctx.log(f"{camera}: systemctl restart done {said.strip()}".strip())
            return {"camera": camera, "how": "systemd"}

        return self.jobs.submit("restart", f"Restart {camera}'s agent", run).id

    # -- deploy ------------------------------------------------------------------------------
    def start_deploy(self, cameras: list[str] | None = None) -> str:
        """Start "Deploy settings" (the same code as install.sh) as a job; returns its id."""
        if self.apply_settings is not None:
            raise RigError("the simulated rig runs local agents: there is nothing to deploy", 409)
        if self.rig.recording_state != RecordingState.IDLE:
            raise RigError("deploy restarts the agents: stop the recording first", 409)
        if self.jobs.active("deploy"):
            raise RigError("a deploy is already running", 409)
        config, secret, options = self.config, self.secret, self.deploy_options
        select_cameras(config, cameras)  # unknown names are refused now, not in the job

        def run(ctx: JobContext) -> dict:
            return run_deploy_job(ctx, config, secret, options, self.host_keys, cameras)

        return self.jobs.submit("deploy", "Deploy settings to the Pis", run).id


__all__ = ["ConfigError", "ControllerRuntime"]
