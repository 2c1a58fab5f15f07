"""`syncrig agent` / `python -m syncrig_agent`: the Pi-side capture agent (what systemd starts)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading

from syncrig_agent.contract.protocol import load_secret
from syncrig_agent.diagnostics import log_ring
from syncrig_agent.settings import BACKEND_KINDS, AgentSettings, SettingsError

log = logging.getLogger("syncrig_agent")

# Command-line flag → settings field, for the flags that override a config file.
_FLAG_FIELDS = (
    "name",
    "role",
    "data_dir",
    "secret_file",
    "listen",
    "fanout_listen",
    "server",
    "preview_listen",
    "preview_fps",
    "host_label",
    "backend",
    "width",
    "height",
    "bitrate",
    "keyframe_interval_s",
    "codec",
    "preset",
    "encoder_threads",
    "queue_frames",
    "spin_us",
    "fifo_priority",
    "base_priority",
    "heartbeat_interval_s",
    "heartbeat_timeout_s",
    "min_lead_ms",
    "max_lead_ms",
    "min_free_mb",
    "ready_file",
    "lock_timeout_s",
    "lock_lead_ms",
    "lock_threshold_us",
    "clock_source",
    "clock_refresh_s",
)


def add_agent_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--config", help="JSON agent settings file (flags below override it)")
    a("--role", choices=["server", "client"])
    a("--name", help="camera name, e.g. cam0")
    a("--data-dir", help="where sessions are recorded on this machine")
    a("--secret-file", help="shared secret (mode 0600) that authenticates every link")
    a("--listen", help="server: HOST:PORT for controllers (default 127.0.0.1:5006)")
    a("--fanout-listen", help="server: HOST:PORT for client cameras (default 0.0.0.0:5005)")
    a("--server", help="client: cam0's HOST:PORT (default port 5005)")
    a("--preview-listen", help="HOST:PORT of the MJPEG preview server (default 0.0.0.0:5008; port 0: any)")
    a("--preview-fps", type=float, help="at most this many preview frames per second (default 10)")
    a("--no-preview", action="store_true", help="do not serve the live preview")
    a("--host-label", help="how the desktop reaches this camera (recorded in the manifest)")
    a("--backend", choices=BACKEND_KINDS)
    a("--width", type=int)
    a("--height", type=int)
    a("--bitrate", type=int)
    a("--keyframe-interval-s", type=float)
    a("--codec", help="auto, libx264 or h264_v4l2m2m")
    a("--preset")
    a("--encoder-threads", type=int)
    a("--queue-frames", type=int)
    a("--spin-us", type=float, help="spin this long before each target (µs)")
    a("--no-realtime", action="store_true", help="do not ask for SCHED_FIFO")
    a("--fifo-priority", type=int, help="SCHED_FIFO priority of the capture thread while it waits")
    a("--base-priority", type=int, help="SCHED_FIFO priority of the agent's other threads")
    a("--heartbeat-interval-s", type=float)
    a("--heartbeat-timeout-s", type=float)
    a("--min-lead-ms", type=float)
    a("--max-lead-ms", type=float)
    a("--min-free-mb", type=int)
    a("--ready-file", help="write actual ports/pid here once up (used by local rigs and tests)")
    a("--sim-clock-offset-us", type=float, help="synthetic: camera clock offset from the host clock")
    a("--sim-drift-ppm", type=float, help="synthetic: camera clock drift")
    a("--sim-drop-prob", type=float, help="synthetic: probability that the sensor drops a frame")
    a(
        "--sim-trigger",
        choices=["scheduled", "wake", "freerun"],
        help="synthetic: exposure at Tn, when software wakes, or free-running (phase-locked by the servo)",
    )
    a("--sim-jitter-us", type=float, help="synthetic: trigger jitter (Gaussian sigma, µs)")
    a("--sim-crystal-ppm", type=float, help="synthetic freerun: crystal error (default: random in ±50 ppm)")
    a(
        "--sim-sensor-delay-frames",
        type=int,
        help="synthetic freerun: frames before a duration request applies",
    )
    a("--no-wait-for-lock", action="store_true", help="free-running sensors: write frames before phase lock")
    a("--lock-timeout-s", type=float, help="free-running: record unlocked (flagged) this long after T0")
    a("--lock-lead-ms", type=float, help="free-running: START lead to ask cam0 for, to lock before T0")
    a("--lock-threshold-us", type=float, help="free-running: |phase error| that counts as locked")
    a("--clock-source", choices=["auto", "ptp", "chrony", "kernel"], help="what disciplines the clock")
    a("--clock-refresh-s", type=float, help="seconds between clock state readings (default 3)")
    a(
        "--sim-clock-sync",
        help="synthetic: reported clock state (synchronized, unsynchronized, LISTENING, ...)",
    )
    a("--sim-scene", choices=["default", "charuco"], help="synthetic: test picture or a moving ChArUco board")
    a("--sim-scene-file", help="synthetic: JSON charuco scene settings (board, trajectory, camera model)")
    a(
        "--ttl-json",
        help='TTL lines as a JSON object (the agent settings\' "ttl" section), e.g. '
        '\'{"backend": "simulated", "outputs": {"strobe": 17}}\'',
    )
    a("--log-level", default="INFO")
    a(
        "--earlier-log",
        help="file this agent's output is appended to: its earlier runs' lines are kept in the log the "
        "controller shows (under systemd the unit's journal is read instead)",
    )


def settings_from_args(args: argparse.Namespace) -> AgentSettings:
    data: dict = {}
    if args.config:
        import json
        from pathlib import Path

        data = json.loads(Path(args.config).read_text(encoding="utf-8"))
    for field in _FLAG_FIELDS:
        value = getattr(args, field, None)
        if value is not None:
            data[field] = value
    if args.no_realtime:
        data["realtime"] = False
    if getattr(args, "no_preview", False):
        data["preview"] = False
    if getattr(args, "no_wait_for_lock", False):
        data["wait_for_lock"] = False
    sim = dict(data.get("simulation") or {})
    for flag, field in (
        ("sim_clock_offset_us", "clock_offset_us"),
        ("sim_drift_ppm", "drift_ppm"),
        ("sim_drop_prob", "drop_probability"),
        ("sim_trigger", "trigger"),
        ("sim_jitter_us", "jitter_us"),
        ("sim_crystal_ppm", "crystal_ppm"),
        ("sim_sensor_delay_frames", "sensor_delay_frames"),
        ("sim_clock_sync", "clock_sync"),
        ("sim_scene", "scene"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            sim[field] = value
    if getattr(args, "sim_scene_file", None):
        import json
        from pathlib import Path

        try:
            sim["charuco"] = json.loads(Path(args.sim_scene_file).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SettingsError(f"--sim-scene-file: {exc}") from None
    data["simulation"] = sim
    if getattr(args, "ttl_json", None):
        import json

        try:
            ttl = json.loads(args.ttl_json)
        except ValueError as exc:
            raise SettingsError(f"--ttl-json: not JSON: {exc}") from None
        if not isinstance(ttl, dict):
            raise SettingsError("--ttl-json: must be a JSON object (the ttl settings section)")
        data["ttl"] = {**(data.get("ttl") or {}), **ttl}
    for required in ("name", "role", "data_dir", "secret_file"):
        if not data.get(required):
            raise SettingsError(f"{required}: required (flag --{required.replace('_', '-')} or config)")
    return AgentSettings.from_dict(data)


def run_agent(args: argparse.Namespace) -> int:
    log_format = "%(asctime)s %(name)s[%(threadName)s] %(levelname)s: %(message)s"
    # Read before this run logs anything, so only earlier runs' lines are in it.
    earlier = log_ring.earlier_run_lines(getattr(args, "earlier_log", None))
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO), format=log_format)
    # What the controller's `logs` request reads, earlier runs first.
    log_ring.install(logging.Formatter(log_format), earlier=earlier)
    try:
        settings = settings_from_args(args)
        secret = load_secret(settings.secret_file)
    except (SettingsError, ValueError, OSError) as exc:
        print(f"syncrig agent: {exc}", file=sys.stderr)
        return 2
    # The capture thread wakes from a timer and needs the GIL at once; a short switch interval
    # bounds how long another Python thread can hold it (the default is 5 ms).
    sys.setswitchinterval(0.0002)
    if settings.realtime:
        from syncrig_agent.timing.realtime import enable_process_realtime

        setup = enable_process_realtime(settings.base_priority)
        if setup.sched_fifo:
            log.info(
                "agent threads run SCHED_FIFO %d; capture waits at %d",
                settings.base_priority,
                settings.fifo_priority,
            )
    if settings.role == "server":
        from syncrig_agent.server import ServerAgent

        agent = ServerAgent(settings, secret)
    else:
        from syncrig_agent.client import ClientAgent

        agent = ClientAgent(settings, secret)
    done = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping (recordings are closed cleanly)", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.serve()
    except OSError as exc:
        print(f"syncrig agent: cannot listen: {exc}", file=sys.stderr)
        return 1
    while not done.wait(0.5):
        pass
    agent.shutdown()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="syncrig agent", description=__doc__)
    add_agent_arguments(parser)
    return run_agent(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
