"""`syncrig demo` (simulated rig + controller UI) and `syncrig controller --config FILE` (real rig)."""

from __future__ import annotations

import argparse
import logging
import secrets
import signal
import sys
import threading
from pathlib import Path

from werkzeug.serving import make_server

from controller.cli.record import add_ttl_out_arguments
from controller.jobs import JobContext
from controller.rig.config import ConfigError, RigConfig, default_home, load_config, save_config
from controller.runtime import ControllerRuntime
from controller.web import create_app
from controller.web.security import LOCAL_HOSTS, is_loopback

log = logging.getLogger(__name__)

DEFAULT_PORT = 5000


def add_serve_commands(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="simulated rig (cam0 + clients as local agents) + the controller UI")
    demo.add_argument("--cameras", type=int, default=3, help="number of simulated cameras (default 3)")
    demo.add_argument(
        "--workdir", type=Path, default=Path("syncrig-demo"), help="rig files, sessions, config"
    )
    demo.add_argument("--fps", type=float, default=30.0)
    demo.add_argument("--width", type=int, default=640)
    demo.add_argument("--height", type=int, default=360)
    demo.add_argument("--sim-offsets-us", default="", help="per-camera clock offsets (µs), comma-separated")
    demo.add_argument(
        "--scene",
        choices=["default", "charuco"],
        default="default",
        help="what the cameras film: the test picture, or a moving ChArUco board (ground truth: "
        "WORKDIR/ground_truth.json)",
    )
    demo.add_argument(
        "--sensor",
        choices=["scheduled", "freerun"],
        default="scheduled",
        help="simulated sensors: exposed at each grid instant (scheduled), or free-running like a Pi's "
        "and phase-locked to the grid by the agent's servo (freerun: the cards show the lock)",
    )
    add_ttl_out_arguments(demo)
    _add_http_args(demo)
    demo.set_defaults(handler=cmd_demo)

    ctl = sub.add_parser("controller", help="the controller UI for a real rig")
    ctl.add_argument(
        "--config", type=Path, default=None, help="rig config (default ~/.config/syncrig/rig.json)"
    )
    ctl.add_argument("--sessions-root", type=Path, default=None, help="override the config's sessions root")
    _add_http_args(ctl)
    ctl.set_defaults(handler=cmd_controller)


def _add_http_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"HTTP port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; anything else needs the access token)",
    )
    parser.add_argument("--token", default=None, help="access token for non-local browsers (default: random)")


def serve(runtime: ControllerRuntime, host: str, port: int, token: str | None) -> int:
    """Serve until SIGINT/SIGTERM; the rig keeps recording if this process goes away."""
    local = is_loopback(host)
    access_token = None if local else (token or secrets.token_urlsafe(24))
    # Bound to loopback, only loopback Host names are served (a DNS-rebinding page cannot reach
    # us); bound to a network address, any Host but only with the access token.
    app = create_app(runtime, access_token=access_token, allowed_hosts=set(LOCAL_HOSTS) if local else None)
    try:
        server = make_server(host, port, app, threaded=True)
    except OSError as exc:
        print(f"syncrig: cannot listen on {host}:{port}: {exc} (try --port)", file=sys.stderr)
        return 1
    shown = "localhost" if local else host
    url = f"http://{shown}:{server.server_port}/"
    if access_token:
        url += f"?token={access_token}"
    print(f"SyncRig controller: {url}", flush=True)

    def stop(_signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def cmd_controller(args: argparse.Namespace) -> int:
    path = args.config or default_home() / "rig.json"
    try:
        runtime = ControllerRuntime(path, sessions_root=args.sessions_root).start()
    except (ConfigError, OSError, ValueError) as exc:
        print(f"syncrig controller: {exc}", file=sys.stderr)
        return 2
    try:
        return serve(runtime, args.host, args.port, args.token)
    finally:
        runtime.close()


def cmd_demo(args: argparse.Namespace) -> int:
    from controller.rig.simulated import RigStartError, SimCamera, SimulatedRig, sim_cameras, with_ttl_out

    if not 1 <= args.cameras <= 16:
        print("syncrig demo: --cameras must be 1..16", file=sys.stderr)
        return 2
    workdir = args.workdir.resolve()
    config_path = workdir / "rig.json"
    try:
        offsets = [float(x) for x in args.sim_offsets_us.split(",") if x.strip()]
    except ValueError:
        print(f"syncrig demo: --sim-offsets-us: not numbers: {args.sim_offsets_us!r}", file=sys.stderr)
        return 2
    names = [c.name for c in sim_cameras(args.cameras)]
    capture = {"width": args.width, "height": args.height, "bitrate": 4_000_000, "keyframe_interval_s": 1.0}
    fps = args.fps
    if config_path.exists():
        # Capture settings saved from the page in an earlier demo run are kept.
        try:
            old = load_config(config_path)
            capture = {k: getattr(old, k) for k in capture}
            fps = old.fps
        except ConfigError as exc:
            print(f"syncrig demo: ignoring {config_path}: {exc}", file=sys.stderr)
    holder: dict[str, SimulatedRig] = {}

    def start_rig(cams: list[str], settings: dict, ports: tuple[int, int] | None) -> SimulatedRig:
        sims = [
            SimCamera(name=n, clock_offset_us=offsets[i] if i < len(offsets) else 0.0, trigger=args.sensor)
            for i, n in enumerate(cams)
        ]
        sims = with_ttl_out(sims, args.ttl_out, args.ttl_camera, args.ttl_strobe_width_us)
        rig = SimulatedRig(
            workdir,
            sims,
            width=settings["width"],
            height=settings["height"],
            bitrate=settings["bitrate"],
            extra_args=["--keyframe-interval-s", str(settings["keyframe_interval_s"])],
            scene=args.scene,
        )
        holder["rig"] = rig
        if ports is not None:
            rig.control_port, rig.fanout_port = ports
        return rig.start()

    print(f"starting a simulated rig of {len(names)} cameras in {workdir} ...", flush=True)
    try:
        start_rig(names, capture, None).write_rig_config(config_path, fps=fps)
    except (RigStartError, ValueError, OSError, ConfigError) as exc:
        print(f"syncrig demo: the simulated rig did not start: {exc}", file=sys.stderr)
        if "rig" in holder:
            holder["rig"].stop()
        return 1

    def apply_settings(config: RigConfig, ctx: JobContext) -> RigConfig:
        """Restart the simulated agents with the saved capture settings, on the same control ports;
        the saved config keeps the user's values and gets the agents' new preview ports."""
        old = holder["rig"]
        ctx.progress(0.1, "stopping the simulated cameras")
        old.stop()
        ctx.progress(0.4, "starting them with the new settings")
        server_first = sorted(config.cameras, key=lambda c: c.role != "server")
        settings = {k: getattr(config, k) for k in capture}
        rig = start_rig([c.name for c in server_first], settings, (old.control_port, old.fanout_port))
        generated = rig.write_rig_config(workdir / "run" / "rig-generated.json", fps=config.fps)
        ports = {c.name: c for c in generated.cameras}
        for cam in config.cameras:
            cam.preview_port = ports[cam.name].preview_port
            cam.local_data_dir = ports[cam.name].local_data_dir
        save_config(config_path, config)
        ctx.progress(1.0, "simulated rig restarted")
        return config

    try:
        runtime = ControllerRuntime(
            config_path,
            apply_settings=apply_settings,
            restart_agent=lambda camera: holder["rig"].restart_agent(camera),
        ).start()
    except (ConfigError, OSError, ValueError) as exc:
        print(f"syncrig demo: {exc}", file=sys.stderr)
        holder["rig"].stop()
        return 1
    print(f"sessions are written to {runtime.sessions_root}", flush=True)
    try:
        return serve(runtime, args.host, args.port, args.token)
    finally:
        runtime.close()
        holder["rig"].stop()
