"""`syncrig receive | pull | transcode | footage-check`: the footage commands (issue 4), each a thin
shell around the functions the web app's background jobs call too."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from controller.progress import ProgressBar


def add_footage_commands(sub: argparse._SubParsersAction) -> None:
    rcv = sub.add_parser("receive", help="run one camera's live-stream receiver (side-car + FFmpeg)")
    rcv.add_argument("--camera", required=True)
    rcv.add_argument(
        "--config", type=Path, help="receivers.json of a dedicated receiving machine (service mode)"
    )
    rcv.add_argument("--listen", help="HOST:PORT (session mode; port 0 = any free port)")
    rcv.add_argument(
        "--session-dir", type=Path, help="session mode: write this session's stream/ and exit at END"
    )
    rcv.add_argument("--secret-file", type=Path)
    rcv.add_argument("--segment-seconds", type=float, default=None)
    rcv.add_argument("--ffmpeg", help="FFmpeg binary (default: controller.media.ffmpeg_exe())")
    rcv.add_argument("--ready-file", type=Path, help="write the bound port and pid here once listening")
    rcv.add_argument(
        "--write-unit",
        type=Path,
        metavar="DIR",
        help="with --config: write the systemd template unit syncrig-receiver@.service into DIR and exit",
    )
    rcv.add_argument("--user", default=None, help="with --write-unit: the user the service runs as")
    rcv.set_defaults(handler=cmd_receive)

    pull = sub.add_parser(
        "pull", help="pull a session's raw files from the Pis (resumable, SHA-256 verified)"
    )
    pull.add_argument("session_dir", type=Path)
    where = pull.add_mutually_exclusive_group(required=True)
    where.add_argument("--rig-dir", type=Path, help="simulated rig directory (its pi/<cam> data dirs)")
    where.add_argument("--config", type=Path, help="rig config: pull over SFTP from each camera's host")
    pull.add_argument("--camera", action="append", default=[], help="only this camera (repeatable)")
    pull.add_argument("--ssh-port", type=int, default=22)
    pull.add_argument("--identity", help="SSH private key file")
    pull.add_argument("--known-hosts", help="known_hosts file (default ~/.ssh/known_hosts)")
    pull.add_argument("--workers", type=int, default=2, help="cameras pulled in parallel")
    pull.add_argument(
        "--no-stream", action="store_true", help="ignore the live stream copy (download everything)"
    )
    pull.add_argument(
        "--delete-from-pi",
        action="store_true",
        help="after verification, delete the pulled recordings from the Pis (asks for confirmation)",
    )
    pull.add_argument("--yes", action="store_true", help="confirm --delete-from-pi without asking")
    pull.add_argument("--quiet", action="store_true")
    pull.set_defaults(handler=cmd_pull)

    tc = sub.add_parser("transcode", help="H.265 archive of each camera with its exact frame timestamps")
    tc.add_argument("session_dir", type=Path)
    tc.add_argument("--encoder", default="auto", help="auto (NVENC, VAAPI, else libx265) or an encoder name")
    tc.add_argument("--crf", type=int, default=23, help="quality (libx265 CRF / NVENC CQ / VAAPI QP)")
    tc.add_argument("--preset", default=None, help="encoder preset (default: fast for libx265)")
    tc.add_argument("--camera", action="append", default=[], help="only this camera (repeatable)")
    tc.add_argument("--quiet", action="store_true")
    tc.set_defaults(handler=cmd_transcode)

    chk = sub.add_parser("footage-check", help="is every camera's raw footage verified on this desktop?")
    chk.add_argument("session_dir", type=Path)
    chk.add_argument("--fast", action="store_true", help="sizes only, do not re-hash the files")
    chk.set_defaults(handler=cmd_footage_check)


def cmd_receive(args: argparse.Namespace) -> int:
    from controller.media import ffmpeg_exe
    from controller.receivers.service import ReceiverConfigError, load_receiver_config, render_receiver_unit
    from controller.receivers.sidecar import CameraReceiver, run_receiver
    from syncrig_agent.contract.protocol import load_secret
    from syncrig_agent.contract.validation import SettingsError, parse_address

    logging.getLogger().setLevel(logging.INFO)
    try:
        if args.write_unit is not None:
            if args.config is None:
                raise ReceiverConfigError("--write-unit needs --config")
            import getpass

            load_receiver_config(args.config)
            args.write_unit.mkdir(parents=True, exist_ok=True)
            unit = args.write_unit / "syncrig-receiver@.service"
            unit.write_text(render_receiver_unit(args.config, args.user or getpass.getuser()))
            print(f"wrote {unit}; install it to /etc/systemd/system and enable syncrig-receiver@<camera>")
            return 0
        if args.config is not None:
            config = load_receiver_config(args.config)
            listen = config.listen_address(args.camera)
            secret_file = args.secret_file or Path(config.secret_file)
            segment = args.segment_seconds or config.segment_seconds
            session_dir, sessions_root = None, Path(config.sessions_root)
        else:
            if args.session_dir is None or args.listen is None or args.secret_file is None:
                raise ReceiverConfigError("give --config, or --listen, --session-dir and --secret-file")
            listen = parse_address(args.listen, 0, "listen")
            secret_file = args.secret_file
            segment = args.segment_seconds or 2.0
            session_dir, sessions_root = args.session_dir, None
        receiver = CameraReceiver(
            args.camera,
            listen,
            load_secret(secret_file),
            args.ffmpeg or ffmpeg_exe(),
            session_dir=session_dir,
            sessions_root=sessions_root,
            segment_seconds=segment,
            ready_file=args.ready_file,
        )
        receiver.bind()
    except (ReceiverConfigError, SettingsError, ValueError, OSError) as exc:
        print(f"syncrig receive: {exc}", file=sys.stderr)
        return 2
    return run_receiver(receiver)


def _session_cameras(session_dir: Path) -> list[str]:
    from syncrig_agent.contract.formats import read_manifest_data
    from syncrig_agent.contract.layout import SessionLayout

    layout = SessionLayout(session_dir)
    if layout.manifest.exists():
        return [c["name"] for c in read_manifest_data(session_dir).get("cameras", [])]
    return layout.stream.cameras()


def _sources(args: argparse.Namespace, cameras: list[str]) -> dict:
    from controller.transfer import LocalTransport, sftp_sources

    if args.rig_dir is not None:
        return {c: (lambda c=c: LocalTransport(args.rig_dir / "pi" / c)) for c in cameras}
    from controller.rig.config import load_config

    return sftp_sources(
        load_config(args.config),
        cameras,
        port=args.ssh_port,
        key_filename=args.identity,
        known_hosts=args.known_hosts,
    )


def cmd_pull(args: argparse.Namespace) -> int:
    from controller.rig.config import ConfigError
    from controller.transfer import PullError, TransportError, delete_pi_copy, pull_session

    session_dir = args.session_dir.resolve()
    try:
        cameras = _session_cameras(session_dir)
        if args.camera:
            unknown = [c for c in args.camera if c not in cameras]
            if unknown:
                raise ValueError(
                    f"--camera: not in this session: {', '.join(unknown)} (has {', '.join(cameras)})"
                )
            cameras = args.camera
        if not cameras:
            raise ValueError(f"{session_dir}: no cameras found (no session.json)")
        sources = _sources(args, cameras)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"syncrig pull: {exc}", file=sys.stderr)
        return 2
    bar = None if args.quiet else ProgressBar("pulling", total=1.0)
    result = pull_session(
        session_dir,
        sources,
        progress=(lambda f, _m: bar.update(f)) if bar else None,
        workers=args.workers,
        use_stream=not args.no_stream,
    )
    if bar:
        bar.close()
    for name, r in result["cameras"].items():
        if r["ok"]:
            h264 = r["files"][f"{name}.h264"]
            print(f"{name}: verified ({h264['source']}, {h264['size']} bytes, sha256 {h264['sha256'][:12]}…)")
        else:
            print(f"{name}: FAILED: {r['error']}", file=sys.stderr)
    if args.delete_from_pi:
        verified = [n for n, r in result["cameras"].items() if r["ok"]]
        if not args.yes:
            answer = input(
                f"delete {', '.join(verified)} of {session_dir.name} from the Pis? type 'delete': "
            )
            if answer.strip() != "delete":
                print("nothing deleted")
                return 0 if result["ok"] else 1
        for name in verified:
            try:
                with sources[name]() as transport:
                    done = delete_pi_copy(session_dir, name, transport, confirm=True)
                print(f"{name}: deleted {len(done['deleted'])} file(s) from the Pi")
            except (PullError, TransportError, OSError) as exc:
                print(f"{name}: not deleted: {exc}", file=sys.stderr)
                result["ok"] = False
    return 0 if result["ok"] else 1


def cmd_transcode(args: argparse.Namespace) -> int:
    from controller.pipeline.transcode import TranscodeError, transcode_session

    bar = None if args.quiet else ProgressBar("transcoding", total=1.0)
    try:
        result = transcode_session(
            args.session_dir,
            cameras=args.camera or None,
            encoder=args.encoder,
            quality=args.crf,
            preset=args.preset,
            progress=(lambda f, _m: bar.update(f)) if bar else None,
        )
    except (TranscodeError, ValueError, OSError) as exc:
        print(f"syncrig transcode: {exc}", file=sys.stderr)
        return 1
    if bar:
        bar.close()
    for name, r in result["cameras"].items():
        print(f"{name}: {r['output']} ({r['encoder']}, {r['frames']} frames, {r['bytes']} bytes)")
    return 0


def cmd_footage_check(args: argparse.Namespace) -> int:
    from controller.transfer import footage_safe

    result = footage_safe(args.session_dir, rehash=not args.fast)
    print(json.dumps(result, indent=2))
    return 0 if result["safe"] else 1
