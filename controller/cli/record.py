"""`syncrig record`: one headless session, then its summary; exit 1 if a camera failed or its
footage is not verified on this desktop. `--config rig.json` records on the rig that config names
(a real rig, through the controller's own recording service: the UI's Record, waited for);
`--sim N` starts a simulated rig (cam0 = server, the rest clients) for the one session."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from controller.cli.arg_types import float_list, positive, subject_id, ttl_roles
from controller.progress import ProgressBar
from controller.session.create import missing_id_warnings
from syncrig_agent.contract.ids import InvalidName


def add_record_command(sub: argparse._SubParsersAction) -> None:
    rec = sub.add_parser("record", help="record one session headless (a configured rig, or a simulated one)")
    rig = rec.add_mutually_exclusive_group(required=True)
    rig.add_argument(
        "--config",
        type=Path,
        metavar="RIG_JSON",
        help="record on the rig this config names (as `syncrig controller --config`): the same "
        "pre-flight, live streams, pull and verification as the UI's Record",
    )
    rig.add_argument(
        "--sim",
        type=positive(int),
        metavar="N",
        help="simulate N cameras (cam0 = server, the rest clients) as local processes",
    )
    rec.add_argument(
        "--fps", type=positive(float), default=30.0, help="--sim: frame rate (--config: the config's)"
    )
    rec.add_argument("--seconds", type=positive(float), default=10.0)
    rec.add_argument(
        "--out",
        type=Path,
        help="sessions root; one new directory per session (required with --sim; --config: default the "
        "config's sessions_root)",
    )
    rec.add_argument(
        "--override-preflight",
        action="store_true",
        help="--config: record even when the pre-flight checks fail (noted in the session)",
    )
    rec.add_argument("--subject", type=subject_id("subject ID"), help="animal/subject ID")
    rec.add_argument("--project", type=subject_id("project ID"), help="project ID")
    rec.add_argument("--width", type=int, default=640)
    rec.add_argument("--height", type=int, default=360)
    rec.add_argument("--bitrate", type=positive(int), default=8_000_000)
    rec.add_argument(
        "--sim-offsets-us",
        type=float_list,
        default=None,
        metavar="A,B,...",
        help="per-camera clock offsets (µs) of the simulated clocks",
    )
    rec.add_argument(
        "--sim-drift-ppm",
        type=float_list,
        default=None,
        metavar="A,B,...",
        help="per-camera clock drift (ppm)",
    )
    rec.add_argument(
        "--sim-drop-prob", type=float, default=0.0, help="probability of a sensor drop per frame"
    )
    rec.add_argument(
        "--sim-trigger",
        choices=["scheduled", "wake", "freerun"],
        default="scheduled",
        help="scheduled: exposure timed by the camera clock at Tn (like hardware); wake: when software "
        "wakes; freerun: a free-running sensor phase-locked to the grid by the agent's servo",
    )
    rec.add_argument(
        "--sim-crystal-ppm",
        type=float_list,
        default=None,
        metavar="A,B,...",
        help="freerun: per-camera sensor crystal errors (ppm; default random in ±50)",
    )
    rec.add_argument("--sim-jitter-us", type=float, default=0.0, help="trigger jitter, Gaussian sigma (µs)")
    rec.add_argument(
        "--sim-scene",
        choices=["default", "charuco"],
        default="default",
        help="what the cameras film: the test picture, or a ChArUco board moving through the volume "
        "(known cameras; the session gets ground_truth.json)",
    )
    rec.add_argument(
        "--sim-board", type=Path, help="charuco scene: board spec JSON (as `syncrig board` writes)"
    )
    rec.add_argument("--spin-us", type=float, default=300.0, help="spin before each target (µs)")
    rec.add_argument(
        "--rig-dir", type=Path, help="keep the simulated Pis' own files here (default: temporary)"
    )
    add_ttl_out_arguments(rec)
    rec.add_argument("--quiet", action="store_true")
    rec.add_argument(
        "--no-stream",
        action="store_true",
        help="no live stream receivers: footage comes only from the pull after the recording",
    )
    rec.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="CAMERA",
        help="leave this camera out of the recording (repeatable; recorded in the manifest)",
    )
    rec.add_argument("--segment-seconds", type=positive(float), default=2.0, help="stream segment length")
    rec.set_defaults(handler=cmd_record)


def add_ttl_out_arguments(parser: argparse.ArgumentParser) -> None:
    """`--ttl-out` and its companions (record and demo): TTL out on a simulated Pi's virtual pins."""
    parser.add_argument(
        "--ttl-out",
        type=ttl_roles,
        default=[],
        metavar="start,strobe,barcode",
        help="send TTL out on the shared clock (any combination): a start marker at T0, a strobe at every "
        "frame, barcodes every 3 s; logged in the session's ttl/<cam>.out.csv",
    )
    parser.add_argument("--ttl-camera", metavar="NAME", help="the camera that sends TTL out (default cam0)")
    parser.add_argument(
        "--ttl-strobe-width-us",
        type=positive(float),
        default=5000.0,
        help="strobe pulse width (µs; at most half a frame period; default 5000)",
    )


def cmd_record(args: argparse.Namespace) -> int:
    if args.config is not None:
        return _record_with_config(args)
    if args.out is None:
        print("syncrig record: --out DIR is required with --sim", file=sys.stderr)
        return 2
    from controller.rig.recording import RecordingError, RecordingRequest, record, recorded_cameras
    from controller.rig.simulated import RigStartError, SimulatedRig, sim_cameras, with_ttl_out
    from controller.transfer import Collection

    cams = sim_cameras(
        args.sim,
        args.sim_offsets_us,
        args.sim_drift_ppm,
        args.sim_drop_prob,
        args.sim_trigger,
        args.sim_jitter_us,
        args.sim_crystal_ppm,
    )
    try:
        cams = with_ttl_out(cams, args.ttl_out, args.ttl_camera, args.ttl_strobe_width_us)
        recorded_cameras(cams, dict.fromkeys(args.exclude, ""))  # refused before any agent starts
    except (ValueError, RecordingError) as exc:
        print(f"syncrig record: {exc}", file=sys.stderr)
        return 2
    board = None
    if args.sim_board is not None:
        from controller.dataset.board.spec import BoardSpec, BoardSpecError

        try:
            board = BoardSpec.load(args.sim_board).as_dict()
        except BoardSpecError as exc:
            print(f"syncrig record: {exc}", file=sys.stderr)
            return 2
    for warning in missing_id_warnings(args.subject, args.project):
        print(f"syncrig record: warning: {warning} (--subject, --project)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="syncrig-rig-") as tmp:
        rig_dir = args.rig_dir or Path(tmp)
        rig = SimulatedRig(
            rig_dir,
            cams,
            width=args.width,
            height=args.height,
            bitrate=args.bitrate,
            spin_us=args.spin_us,
            scene=args.sim_scene,
            board=board,
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
                fps=args.fps,
                seconds=args.seconds,
                subject=args.subject,
                project=args.project,
                exclude={name: "excluded by the user (--exclude)" for name in args.exclude},
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
            if rig.ground_truth_file.exists():
                import shutil

                from syncrig_agent.contract.layout import SessionLayout

                shutil.copyfile(rig.ground_truth_file, SessionLayout(session_dir).ground_truth_file)
        except (RecordingError, OSError, InvalidName) as exc:
            print(f"syncrig record: {exc}", file=sys.stderr)
            return 1
        finally:
            rig.stop()
    # A session with a camera error is still kept (and printed), but scripts must notice.
    return 0 if _print_session(session_dir) else 1


def _record_with_config(args: argparse.Namespace) -> int:
    from controller.rig.config import ConfigError
    from controller.rig.service import RigError
    from controller.runtime import ControllerRuntime
    from controller.session.store import session_path

    try:
        runtime = ControllerRuntime(args.config, sessions_root=args.out, run_schedules=False).start()
    except (ConfigError, OSError, ValueError) as exc:
        print(f"syncrig record: {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        job = runtime.record(
            args.seconds, args.subject, args.project, override=args.override_preflight, exclude=args.exclude
        )
    except RigError as exc:
        print(f"syncrig record: {exc}", file=sys.stderr)
        return 2 if exc.status == 400 else 1
    finally:
        runtime.close()
    if job.state != "done":
        print(f"syncrig record: {job.error or job.state}", file=sys.stderr)
        return 1
    for line in job.log:
        if "not verified" in line or "overridden" in line:
            print(f"  {line}")
    return 0 if _print_session(session_path(runtime.sessions_root, job.result["session_id"])) else 1


def _print_session(session_dir: Path) -> bool:
    """Print the session summary; False if any camera reported an error or its raw files are not
    verified on the desktop."""
    from syncrig_agent.contract.formats import read_manifest
    from syncrig_agent.contract.layout import SessionLayout

    m = read_manifest(session_dir)
    print(f"session {m.id} -> {session_dir}")
    print(f"  {m.fps:g} fps, T0 = {m.t0_ns} ns, {len(m.cameras)} cameras")
    for name, why in m.excluded.items():
        print(f"  {name}: not recorded: {why}")
    for note in m.notes:
        print(f"  NOTE: {note}")
    for cam in m.cameras:
        wake = cam.get("wake_error") or {}
        extra = f", wake error p50 {wake['p50_us']:.0f} µs p99 {wake['p99_us']:.0f} µs" if wake else ""
        err = f"  ERROR: {cam['error']}" if cam.get("error") else ""
        lock = cam.get("phase_lock") or {}
        if lock:
            since = lock.get("since_lock") or {}
            extra += f", phase lock: {lock.get('label')}"
            if since:
                extra += f" (p99 {since['p99_us']:.0f} µs since lock)"
            if lock.get("error"):
                err += f"  PHASE LOCK: {lock['error']}"
        print(
            f"  {cam['name']}: {cam['frames']}/{cam['expected_frames']} frames, {cam['dropped']} dropped"
            f"{extra}{err}"
        )
    transfer = SessionLayout(session_dir).transfer_ledger
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
            cut = entry.get("reconciled")
            if cut:
                how += (
                    f" (camera lost: {cut['frames']} whole frames kept, {cut['frames_from_pi']} from the Pi, "
                    f"{cut['frames_from_stream']} from the stream; cut {cut['rows_without_bytes']} rows "
                    f"without bytes and {cut['pi_bytes_cut']} bytes without a row)"
                )
            verified = "raw/ verified against the Pi, " if h264.get("verified") else ""
            all_verified = all_verified and bool(h264.get("verified"))
            print(f"  {name}: {verified}{how}")
    unlocked = any((cam.get("phase_lock") or {}).get("error") for cam in m.cameras)
    return all_verified and not unlocked and not any(cam.get("error") for cam in m.cameras)
