"""The `syncrig` command (also `python -m controller`)."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from syncrig_agent.ids import InvalidName, validate_subject_id
from syncrig_agent.main import add_agent_arguments, run_agent

from .footage_cli import FOOTAGE_COMMANDS, add_footage_commands
from .pipeline_cli import add_pipeline_commands
from .progress import ProgressBar


def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _positive(kind: type):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value

    return parse


def _id_arg(kind: str):
    def parse(text: str) -> str:
        try:
            return validate_subject_id(text, kind)
        except InvalidName as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="syncrig", description="Frame-synchronized multi-camera recording.")
    sub = parser.add_subparsers(dest="command", required=True)

    agent = sub.add_parser("agent", help="run the Pi-side capture agent (what systemd starts)")
    add_agent_arguments(agent)

    rec = sub.add_parser("record", help="record one session headless on a simulated rig")
    rec.add_argument(
        "--sim",
        type=_positive(int),
        required=True,
        metavar="N",
        help="simulate N cameras (cam0 = server, the rest clients) as local processes",
    )
    rec.add_argument("--fps", type=_positive(float), default=30.0)
    rec.add_argument("--seconds", type=_positive(float), default=10.0)
    rec.add_argument("--out", type=Path, required=True, help="sessions root; one new directory per session")
    rec.add_argument("--subject", type=_id_arg("subject ID"), help="animal/subject ID")
    rec.add_argument("--project", type=_id_arg("project ID"), help="project ID")
    rec.add_argument("--width", type=int, default=640)
    rec.add_argument("--height", type=int, default=360)
    rec.add_argument("--bitrate", type=_positive(int), default=8_000_000)
    rec.add_argument(
        "--sim-offsets-us",
        type=_float_list,
        default=None,
        metavar="A,B,...",
        help="per-camera clock offsets (µs) of the simulated clocks",
    )
    rec.add_argument(
        "--sim-drift-ppm",
        type=_float_list,
        default=None,
        metavar="A,B,...",
        help="per-camera clock drift (ppm)",
    )
    rec.add_argument(
        "--sim-drop-prob", type=float, default=0.0, help="probability of a sensor drop per frame"
    )
    rec.add_argument(
        "--sim-trigger",
        choices=["scheduled", "wake"],
        default="scheduled",
        help="scheduled: exposure timed by the camera clock at Tn (like hardware); wake: when software wakes",
    )
    rec.add_argument("--sim-jitter-us", type=float, default=0.0, help="trigger jitter, Gaussian sigma (µs)")
    rec.add_argument("--spin-us", type=float, default=300.0, help="spin before each target (µs)")
    rec.add_argument(
        "--rig-dir", type=Path, help="keep the simulated Pis' own files here (default: temporary)"
    )
    rec.add_argument("--quiet", action="store_true")
    rec.add_argument(
        "--no-stream",
        action="store_true",
        help="no live stream receivers: footage comes only from the pull after the recording",
    )
    rec.add_argument("--segment-seconds", type=_positive(float), default=2.0, help="stream segment length")
    add_footage_commands(sub)
    setup = sub.add_parser("setup", help="write the rig configuration and the shared secret (setup.sh)")
    setup.add_argument(
        "--config", type=Path, default=None, help="config file (default ~/.config/syncrig/rig.json)"
    )
    setup.add_argument(
        "--camera",
        action="append",
        default=[],
        metavar="NAME=[USER@]HOST",
        help="a camera; the first one is the server (cam0). Repeat for each camera",
    )
    setup.add_argument("--fps", type=_positive(float), default=56.0)
    setup.add_argument("--width", type=int, default=1536)
    setup.add_argument("--height", type=int, default=864)
    setup.add_argument("--bitrate", type=_positive(int), default=25_000_000)
    setup.add_argument("--sessions-root", default="~/syncrig-sessions")
    setup.add_argument("--force", action="store_true", help="replace an existing config (the secret is kept)")
    dep = sub.add_parser("deploy", help="install the agent on every Pi over SSH (install.sh)")
    dep.add_argument(
        "--config", type=Path, default=None, help="config file (default ~/.config/syncrig/rig.json)"
    )
    dep.add_argument("--camera", action="append", default=[], help="deploy only this camera (repeatable)")
    dep.add_argument("--ssh-port", type=int, default=22)
    dep.add_argument(
        "--known-hosts", help="known_hosts file to check host keys against (default ~/.ssh/known_hosts)"
    )
    dep.add_argument("--identity", help="SSH private key file")
    dep.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust unknown host keys on first use (default: refuse hosts not in known_hosts)",
    )
    dep.add_argument(
        "--no-packages", action="store_true", help="skip creating the venv / pip install on the Pi"
    )
    dep.add_argument("--no-service", action="store_true", help="do not install/restart the systemd unit")
    dep.add_argument(
        "--dry-run", action="store_true", help="print what would be deployed, connect to nothing"
    )
    from .serve import add_serve_commands

    add_serve_commands(sub)  # demo, controller
    add_pipeline_commands(sub)  # sync, trim, verify
    from .calibrate_cli import add_calibrate_command

    add_calibrate_command(sub)
    return parser


def cmd_deploy(args: argparse.Namespace) -> int:
    import json

    from syncrig_agent.protocol import load_secret

    from .deploy import DeployError, deploy_camera, plan
    from .rig_config import ConfigError, default_home, load_config

    try:
        config = load_config(args.config or default_home() / "rig.json")
        names = {c.name for c in config.cameras}
        unknown = [n for n in args.camera if n not in names]
        if unknown:
            raise ConfigError(
                f"--camera: unknown camera(s) {', '.join(unknown)} (configured: {', '.join(sorted(names))})"
            )
        targets = [c for c in config.cameras if not args.camera or c.name in args.camera]
        if args.dry_run:
            for d in plan(config, {c.name: f"/home/{c.ssh_user}" for c in config.cameras}):
                if d.camera in targets:
                    print(f"{d.camera.name}: {d.camera.ssh_user}@{d.camera.host} -> {d.install_dir}")
                    print(json.dumps(d.agent_settings, indent=2))
            return 0
        secret = load_secret(config.secret_file)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"syncrig deploy: {exc}", file=sys.stderr)
        return 2
    failed = []
    for cam in targets:
        print(f"deploying {cam.name} to {cam.ssh_user}@{cam.host} ...", flush=True)
        try:
            d = deploy_camera(
                config,
                cam,
                secret,
                port=args.ssh_port,
                key_filename=args.identity,
                accept_new_host_keys=args.accept_new_host_keys,
                install_packages=not args.no_packages,
                known_hosts=args.known_hosts,
                start_service=not args.no_service,
            )
            print(f"  {cam.name}: installed in {d.install_dir}")
        except (DeployError, OSError) as exc:
            print(f"  {cam.name}: FAILED: {exc}", file=sys.stderr)
            failed.append(cam.name)
    if failed:
        print(f"syncrig deploy: failed on {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_setup(args: argparse.Namespace) -> int:
    from syncrig_agent.protocol import write_secret

    from .rig_config import ConfigError, RigConfig, default_home, parse_camera_spec, save_config

    path = args.config or default_home() / "rig.json"
    if path.exists() and not args.force:
        print(f"syncrig setup: {path} exists; pass --force to replace it", file=sys.stderr)
        return 1
    if not args.camera:
        print(
            "syncrig setup: give at least one --camera NAME=[USER@]HOST (the first is cam0, the server)",
            file=sys.stderr,
        )
        return 2
    secret = path.parent / "secret"
    try:
        cams = [parse_camera_spec(spec, i) for i, spec in enumerate(args.camera)]
        config = RigConfig(
            cameras=cams,
            fps=args.fps,
            width=args.width,
            height=args.height,
            bitrate=args.bitrate,
            sessions_root=args.sessions_root,
            secret_file=str(secret),
        )
        config.validate()
    except ConfigError as exc:
        print(f"syncrig setup: {exc}", file=sys.stderr)
        return 2
    path.parent.mkdir(parents=True, exist_ok=True)
    if not secret.exists():
        write_secret(secret)  # 0600, never overwritten
        print(f"wrote a new shared secret to {secret} (mode 0600)")
    save_config(path, config)
    print(f"wrote {path}: {len(cams)} camera(s), server {config.server.name} at {config.server.host}")
    return 0


def cmd_record(args: argparse.Namespace) -> int:
    from .recording import RecordingError, RecordingRequest, record
    from .simrig import RigStartError, SimulatedRig, sim_cameras
    from .transfer import Collection

    cams = sim_cameras(
        args.sim,
        args.sim_offsets_us,
        args.sim_drift_ppm,
        args.sim_drop_prob,
        args.sim_trigger,
        args.sim_jitter_us,
    )
    with tempfile.TemporaryDirectory(prefix="syncrig-rig-") as tmp:
        rig_dir = args.rig_dir or Path(tmp)
        rig = SimulatedRig(
            rig_dir, cams, width=args.width, height=args.height, bitrate=args.bitrate, spin_us=args.spin_us
        )
        try:
            rig.start()
        except (RigStartError, ValueError) as exc:
            print(f"syncrig record: the simulated rig did not start: {exc}", file=sys.stderr)
            rig.stop()
            return 1
        try:
            infos = rig.camera_infos()
            request = RecordingRequest(
                fps=args.fps, seconds=args.seconds, subject=args.subject, project=args.project
            )
            bar = None if args.quiet else ProgressBar("recording", total=1.0)
            pull_bar = None if args.quiet else ProgressBar("pulling", total=1.0)
            collection = Collection(
                stream=not args.no_stream,
                secret_file=rig.secret_file,
                segment_seconds=args.segment_seconds,
                progress=(lambda f, _m: pull_bar.update(f)) if pull_bar else None,
            )
            with rig.link() as link:
                session_dir = record(
                    link,
                    args.out,
                    infos,
                    request,
                    progress=(lambda f, _i: bar.update(f)) if bar else None,
                    collection=collection,
                )
            if bar:
                bar.close()
            if pull_bar:
                pull_bar.close()
        except (RecordingError, OSError, InvalidName) as exc:
            print(f"syncrig record: {exc}", file=sys.stderr)
            return 1
        finally:
            rig.stop()
    # A session with a camera error is still kept (and printed), but scripts must notice.
    return 0 if _print_session(session_dir) else 1


def _print_session(session_dir: Path) -> bool:
    """Print the session summary; False if any camera reported an error or its raw files are not
    verified on the desktop."""
    from syncrig_agent.formats import read_manifest

    m = read_manifest(session_dir)
    print(f"session {m.id} -> {session_dir}")
    print(f"  {m.fps:g} fps, T0 = {m.t0_ns} ns, {len(m.cameras)} cameras")
    for cam in m.cameras:
        wake = cam.get("wake_error") or {}
        extra = f", wake error p50 {wake['p50_us']:.0f} µs p99 {wake['p99_us']:.0f} µs" if wake else ""
        err = f"  ERROR: {cam['error']}" if cam.get("error") else ""
        print(
            f"  {cam['name']}: {cam['frames']}/{cam['expected_frames']} frames, {cam['dropped']} dropped"
            f"{extra}{err}"
        )
    transfer = session_dir / "transfer.json"
    all_verified = True
    if transfer.exists():
        import json

        for name, entry in json.loads(transfer.read_text()).get("cameras", {}).items():
            h264 = entry.get("files", {}).get(f"{name}.h264", {})
            fill = h264.get("gap_fill")
            how = h264.get("source", "not pulled: " + str(entry.get("error")))
            if fill:
                how += f" ({fill['frames_from_stream']} frames from the stream, "
                how += f"{fill['frames_from_pi']} from the Pi)"
            verified = "raw/ verified against the Pi, " if h264.get("verified") else ""
            all_verified = all_verified and bool(h264.get("verified"))
            print(f"  {name}: {verified}{how}")
    return all_verified and not any(cam.get("error") for cam in m.cameras)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "agent":
        return run_agent(args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handler = getattr(args, "handler", None)
    if handler is not None:
        return handler(args)
    if args.command == "record":
        return cmd_record(args)
    if args.command == "setup":
        return cmd_setup(args)
    if args.command == "deploy":
        return cmd_deploy(args)
    if args.command in FOOTAGE_COMMANDS:
        return FOOTAGE_COMMANDS[args.command](args)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
