"""`syncrig calibrate SESSION`: ChArUco detection + calibration of every camera of a synced
session, with a progress bar; writes calibration/calibration.toml, Calib.toml, report.json, plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.cli.arg_types import non_negative_int
from controller.cli.board import add_board_arguments, board_from_args, squares_arg
from controller.dataset.board.spec import BoardSpecError
from controller.progress import ProgressBar


def _camera_source(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(
            f"expected CAMERA=PATH (a folder of pictures or a video), got {text!r}"
        )
    return name, Path(path)


def add_intrinsics_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "intrinsics",
        help="each camera's intrinsics from pictures of a board (checkerboard or ChArUco), no session needed",
    )
    p.add_argument(
        "sources",
        nargs="+",
        type=_camera_source,
        metavar="CAMERA=PATH",
        help="a folder of pictures or a video",
    )
    add_board_arguments(p)
    p.add_argument(
        "--checkerboard",
        type=squares_arg,
        metavar="COLSxROWS",
        help="a checkerboard with this many inner corners (with --square-mm)",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="the intrinsics file to write (calibration.toml schema)"
    )
    p.add_argument("--fisheye", action="store_true", help="OpenCV's fisheye lens model (k1..k4)")
    p.add_argument("--k3", action="store_true", help="also fit the k3 radial term (pinhole)")
    p.add_argument("--every-s", type=float, default=1.0, help="a video: one picture every this many seconds")
    p.set_defaults(handler=cmd_intrinsics)


def intrinsics_board(args: argparse.Namespace):  # noqa: ANN201
    """--checkerboard COLSxROWS --square-mm S, or the ChArUco board flags / --board (one spec)."""
    from controller.dataset.board.spec import BoardSpec

    if args.checkerboard is None:
        spec = board_from_args(args, None)
        if spec is None:
            raise BoardSpecError(
                "no board: give --checkerboard COLSxROWS --square-mm S, --board FILE or the ChArUco flags"
            )
        return spec
    others = [
        f
        for f in ("board", "squares", "squares_x", "squares_y", "marker_mm", "dictionary")
        if getattr(args, f)
    ]
    if others:
        raise BoardSpecError(
            f"--checkerboard describes the whole board: drop --{others[0].replace('_', '-')}"
        )
    if args.square_mm is None:
        raise BoardSpecError("--checkerboard needs --square-mm (the side of one printed square, measured)")
    return BoardSpec.checkerboard(*args.checkerboard, args.square_mm)


def cmd_intrinsics(args: argparse.Namespace) -> int:
    from controller.dataset.calibrate import CalibrationError
    from controller.dataset.calibrate.standalone import intrinsics_from_pictures, write_intrinsics_toml

    names = [name for name, _ in args.sources]
    try:
        if len(set(names)) != len(names):
            raise CalibrationError(f"a camera is named twice: {' '.join(names)}")
        if not args.every_s > 0:
            raise CalibrationError(f"--every-s must be > 0, got {args.every_s}")
        spec = intrinsics_board(args)
        results = intrinsics_from_pictures(
            dict(args.sources), spec, fisheye=args.fisheye, fix_k3=not args.k3, every_s=args.every_s
        )
        write_intrinsics_toml(args.out, results, spec)
    except (CalibrationError, BoardSpecError, OSError) as exc:
        print(f"syncrig intrinsics: {exc}", file=sys.stderr)
        return 2
    for name, r in results.items():
        k = r["intrinsics"].matrix
        errors = [v for v in r["pictures"].values() if isinstance(v, float)]
        print(
            f"  {name}: {r['size'][0]}x{r['size'][1]}, f = {k[0, 0]:.1f}, {k[1, 1]:.1f} px, principal point "
            f"{k[0, 2]:.1f}, {k[1, 2]:.1f} px; {len(errors)} of {len(r['pictures'])} pictures used, "
            f"rms {r['intrinsics'].rms_px:.3f} px"
        )
    print(f"wrote {args.out}")
    return 0


def add_calibrate_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="calibrate every camera of a synced session from a ChArUco board (bundle adjustment)",
    )
    p.add_argument("session", type=Path, help="session directory with synced outputs (`syncrig sync`)")
    add_board_arguments(p)
    p.add_argument("--fisheye", action="store_true", help="OpenCV's fisheye lens model (k1..k4)")
    p.add_argument(
        "--reference-row",
        type=non_negative_int,
        help="match row whose board defines the world frame (default: the row seen by most cameras)",
    )
    p.add_argument("--max-views", type=int, default=40, help="views per camera used for the intrinsics")
    p.add_argument(
        "--max-rows",
        type=int,
        default=600,
        help="board poses in the bundle adjustment (rows seen by several cameras first; 0: all)",
    )
    p.add_argument("--k3", action="store_true", help="also fit the k3 radial term (pinhole)")
    p.add_argument(
        "--fixed-intrinsics",
        action="store_true",
        help="the bundle adjustment keeps each camera's first intrinsics (refines poses only)",
    )
    p.add_argument(
        "--intrinsics",
        type=Path,
        metavar="FILE.toml",
        help="hold each camera's intrinsics from this file (`syncrig intrinsics`): solve extrinsics only",
    )
    p.add_argument("--redetect", action="store_true", help="detect again even if detections exist")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    import json

    from controller.dataset.calibrate import (
        CalibrationError,
        CalibrationOptions,
        calibrate_session,
        session_board,
    )
    from controller.dataset.calibrate.standalone import load_intrinsics
    from syncrig_agent.contract.layout import SessionLayout

    try:
        own = session_board(args.session) if Path(args.session).is_dir() else None
        spec = board_from_args(args, own)
        if args.max_views < 3:
            raise CalibrationError("--max-views must be at least 3")
        if args.max_rows < 0:
            raise CalibrationError("--max-rows must be >= 0 (0: every row)")
        options = CalibrationOptions(
            fisheye=args.fisheye,
            reference_row=args.reference_row,
            max_views=args.max_views,
            max_rows=args.max_rows or None,
            fix_k3=not args.k3,
            refine_intrinsics=not args.fixed_intrinsics,
            intrinsics=load_intrinsics(args.intrinsics) if args.intrinsics else None,
        )
        bar = None if args.quiet else ProgressBar("calibrating", total=1.0)
        try:
            report = calibrate_session(
                args.session,
                spec,
                options,
                progress=(lambda f, m: bar.update(f)) if bar else None,
                redetect=args.redetect,
            )
        except BaseException:
            if bar is not None and bar._tty:
                bar.stream.write("\n")  # leave the partial bar; the error goes on its own line
            raise
        if bar is not None:
            bar.close()
    except (CalibrationError, BoardSpecError, OSError) as exc:
        print(f"syncrig calibrate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    ba = report["bundle_adjustment"]
    print(
        f"{len(report['cameras'])} cameras, {report['rows']} board poses, world = board in row "
        f"{report['reference_row']} (mm); reprojection mean {report['reprojection_px']['mean']:.3f} px"
    )
    print(
        f"bundle adjustment: {ba['observations']} corners, {ba['parameters']} parameters, {ba['iterations']} "
        f"iterations, cost {ba['cost_before']:.1f} -> {ba['cost_after']:.1f}, {ba['seconds']:.1f} s, "
        f"{ba['outliers_dropped']} outliers dropped"
    )
    for name, cam in report["cameras"].items():
        e = cam["reprojection_px"]
        print(
            f"  {name}: mean {e['mean']:.3f} / median {e['median']:.3f} / p95 {e['p95']:.3f} px, "
            f"{cam['rows']} rows, {cam['views_intrinsics']} views for intrinsics, "
            f"f = {cam['focal_px'][0]:.1f} px"
        )
    layout = SessionLayout(args.session)
    print(f"wrote {layout.calibration_toml}, {layout.pose2sim_toml.name}, report.json, plots/")
    return 0
