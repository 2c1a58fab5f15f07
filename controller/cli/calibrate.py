"""`syncrig calibrate SESSION`: ChArUco detection + calibration of every camera of a synced
session, with a progress bar; writes calibration/calibration.toml, Calib.toml, report.json, plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.cli.arg_types import non_negative_int
from controller.cli.board import add_board_arguments, board_from_args
from controller.dataset.board.spec import BoardSpecError
from controller.progress import ProgressBar


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
