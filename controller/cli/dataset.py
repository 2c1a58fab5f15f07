"""`syncrig pose | triangulate | export`: from synced video to a 3D keypoint dataset, with progress
bars. Each works on a session directory with no controller running."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller.cli.arg_types import positive_float
from controller.dataset.export import FORMATS as EXPORT_FORMATS
from controller.progress import ProgressBar


def _fraction(text: str) -> float:
    value = positive_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def _region(text: str) -> tuple[str, tuple[float, float, float, float]]:
    """CAM:x0,y0,x1,y1 (pixels)."""
    cam, _, box = text.partition(":")
    try:
        x0, y0, x1, y1 = (float(v) for v in box.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected CAM:x0,y0,x1,y1 in pixels, got {text!r}") from None
    if not cam or x1 <= x0 or y1 <= y0:
        raise argparse.ArgumentTypeError(f"expected CAM:x0,y0,x1,y1 with x0 < x1 and y0 < y1, got {text!r}")
    return cam, (x0, y0, x1, y1)


def _volume(text: str) -> tuple[float, float, float, float]:
    """x,y,z,radius (mm, the calibration's world frame)."""
    try:
        x, y, z, r = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected x,y,z,radius in mm, got {text!r}") from None
    if r <= 0:
        raise argparse.ArgumentTypeError(f"the radius must be > 0 mm, got {r}")
    return x, y, z, r


def add_dataset_commands(sub: argparse._SubParsersAction) -> None:
    pose = sub.add_parser(
        "pose", help="2D keypoints (body, hands, face) for every synced frame of every camera"
    )
    pose.add_argument("session", type=Path)
    pose.add_argument("--cameras", nargs="+", metavar="NAME", help="only these cameras (default: all)")
    pose.add_argument(
        "--force", action="store_true", help="estimate again even where pose2d/<cam>.npz is current"
    )
    pose.add_argument(
        "--import",
        dest="import_files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="take 2D keypoints from DeepLabCut (.h5/.csv), SLEAP (.slp/analysis .h5) or Lightning Pose "
        "(.csv) files instead, one per camera, each named after its camera",
    )
    pose.add_argument(
        "--frames",
        choices=["synced", "raw"],
        default="synced",
        help="--import: frame N of a file is frame N of synced/<cam>.mp4 (synced) or recorded frame N "
        "of the camera, i.e. of the original video (raw)",
    )
    pose.add_argument("--quiet", action="store_true", help="no progress bar")
    pose.set_defaults(handler=cmd_pose)

    tri = sub.add_parser(
        "triangulate", help="3D keypoints from the cameras' 2D keypoints and the calibration"
    )
    tri.add_argument("session", type=Path)
    tri.add_argument(
        "--calibration",
        type=Path,
        help="calibration (default: the session's calibration/calibration.toml); any format "
        "`syncrig import` reads (aniposelib, Pose2Sim, Qualisys, EasyMocap YAML, Caliscope), converted to mm",
    )
    tri.add_argument(
        "--units",
        choices=["mm", "m"],
        help="the --calibration file's translation unit, where its format does not say",
    )
    tri.add_argument(
        "--method",
        choices=["sequence", "frame"],
        default="sequence",
        help="sequence (default): the whole sequence at once, views checked and down-weighted; "
        "frame: each row on its own, outlier views voted off",
    )
    tri.add_argument(
        "--subject-region",
        type=_region,
        action="append",
        metavar="CAM:x0,y0,x1,y1",
        help="the chosen person is inside this box of camera CAM (pixels); repeat per camera",
    )
    tri.add_argument(
        "--subject-volume",
        type=_volume,
        metavar="x,y,z,r",
        help="the chosen person is inside this sphere (mm, calibration frame)",
    )
    tri.add_argument(
        "--identity-px",
        type=positive_float,
        default=60.0,
        help="sequence: a view whose median error over the body exceeds this shows someone else",
    )
    tri.add_argument("--smooth", action="store_true", help="zero-phase low-pass along time (gaps kept)")
    tri.add_argument("--cutoff-hz", type=positive_float, default=6.0, help="smoothing cutoff (default 6 Hz)")
    tri.add_argument("--min-confidence", type=_fraction, default=0.3, help="2D confidence to use a keypoint")
    tri.add_argument(
        "--outlier-px",
        type=positive_float,
        default=15.0,
        help="frame method: reprojection error above which a view is an outlier",
    )
    tri.add_argument(
        "--min-valid-fraction",
        type=_fraction,
        default=0.8,
        help="sample-count summary: a row labels a group when this fraction of its keypoints is in 3D",
    )
    tri.add_argument("--json", action="store_true", help="print the report as JSON")
    tri.add_argument("--quiet", action="store_true", help="no progress bar")
    tri.set_defaults(handler=cmd_triangulate)

    exp = sub.add_parser(
        "export", help="write the 3D keypoints as TRC (OpenSim), anipose CSV, NWB (ndx-pose) or C3D"
    )
    exp.add_argument("session", type=Path)
    exp.add_argument("--format", choices=EXPORT_FORMATS, required=True)
    exp.add_argument("--out", type=Path, help="output file (default: <session>/exports/<session id>.<ext>)")
    exp.add_argument("--units", choices=["mm", "m"], default="mm", help="TRC units")
    exp.add_argument(
        "--up", choices=["y", "z"], default="y", help="TRC: y = OpenSim's Y-up (default), z = world frame"
    )
    exp.add_argument("--face-2d", action="store_true", help="NWB: also every camera's 2D face mesh (slow)")
    exp.add_argument("--quiet", action="store_true", help="no progress bar")
    exp.set_defaults(handler=cmd_export)


def _bar(args: argparse.Namespace, label: str):
    if args.quiet:
        return None, None
    bar = ProgressBar(label, total=1.0)
    return bar, (lambda fraction, _msg: bar.update(fraction))


def cmd_pose(args: argparse.Namespace) -> int:
    from controller.dataset.pose.env import PoseEnvError
    from controller.dataset.pose.pose2d import Pose2DError
    from controller.dataset.pose.run import PoseError, pose_session

    if args.import_files:
        return _import_pose(args)
    bar, progress = _bar(args, "2D pose")
    try:
        results = pose_session(args.session, args.cameras, progress=progress, force=args.force)
    except (PoseError, PoseEnvError, Pose2DError, ValueError, OSError) as exc:
        print(f"\nsyncrig pose: {exc}", file=sys.stderr)
        return 1
    if bar:
        bar.close()
    for r in results:
        extra = f", {r['fps']} frames/s" if r.get("fps") else ""
        missing = (
            f"; NOT estimated (model unavailable): {', '.join(r['unavailable_groups'])}"
            if r.get("unavailable_groups")
            else ""
        )
        print(f"{r['camera']}: {r['status']}, {r['frames']} frames{extra}{missing}")
    return 0


def _import_pose(args: argparse.Namespace) -> int:
    from controller.dataset.imports.keypoints import import_keypoints

    try:
        results = import_keypoints(args.session, args.import_files, frames=args.frames, overwrite=args.force)
    except (ValueError, OSError) as exc:
        print(f"syncrig pose: {exc}", file=sys.stderr)
        return 1
    for r in results:
        left_out = (
            f"; {r['dropped_frames']} frames of the file are not in the match table"
            if r["dropped_frames"]
            else ""
        )
        print(
            f"{r['camera']}: {r['status']} from {r['file']} ({r['tool']}), {r['frames']} frames, "
            f"{r['keypoints']} keypoints{left_out}"
        )
    return 0


def cmd_triangulate(args: argparse.Namespace) -> int:
    from controller.dataset.pose.pose3d import TriangulationError, triangulate_session
    from controller.dataset.pose.views import Subject

    subject = None
    if args.subject_region or args.subject_volume:
        subject = Subject(dict(args.subject_region or []), args.subject_volume)
    bar, progress = _bar(args, "triangulating")
    try:
        report = triangulate_session(
            args.session,
            args.calibration,
            smooth=args.smooth,
            units=args.units,
            cutoff_hz=args.cutoff_hz,
            min_confidence=args.min_confidence,
            outlier_px=args.outlier_px,
            min_valid_fraction=args.min_valid_fraction,
            progress=progress,
            method=args.method,
            subject=subject,
            identity_px=args.identity_px,
        )
    except (TriangulationError, ValueError, OSError) as exc:
        print(f"\nsyncrig triangulate: {exc}", file=sys.stderr)
        return 1
    if bar:
        bar.close()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(format_triangulation(report, args.session))
    return 0


def format_triangulation(report: dict, session: Path) -> str:
    """The printed summary: per group coverage, error and why points were dropped; per camera
    what was used, excluded or swapped; smoothing; the sample counts."""
    from controller.dataset.pose.pose3d import format_samples

    head = f"{report['rows']} rows x {report['keypoints']} keypoints ({report['method']})"
    lines = [f"{head} -> {session / 'pose3d'}"]
    for name, g in report["groups"].items():
        d = report["drop_causes"][name]
        if d["never_seen"]:
            lines.append(f"  {name:<11} never seen by any camera (left out of exports)")
            continue
        rep = g["reprojection_px"]
        dropped = ", ".join(f"{n} {why}" for why, n in d["dropped"].items() if n) or "none"
        lines.append(
            f"  {name:<11} {d['coverage']:.1%} triangulated, "
            f"reprojection p50 {rep['p50']} px p95 {rep['p95']} px, "
            f"{g['cameras_used_mean']} cameras on average; dropped: {dropped}"
        )
    views = report.get("views") or {}
    for cam, c in report["cameras"].items():
        line = f"  {cam}: {c['observations']} observations, {c['rejected_as_outliers']} " + (
            "down-weighted (farther than 30 px from the 3D)" if views else "rejected as outliers"
        )
        v = views.get(cam)
        if v:
            line += (
                f"; {v['frames_swapped_whole_view']} frames swapped left/right, "
                f"{v['left_right_pairs_swapped']} pairs"
            )
            if v["frames_excluded"]:
                line += f"; {v['frames_excluded']} frames EXCLUDED"
                if v["follows_another_person"]:
                    line += " (follows another person)"
            if v["frames_outside_subject"]:
                line += f"; {v['frames_outside_subject']} frames outside the chosen subject"
        lines.append(line)
    smoothing = report.get("smoothing")
    if smoothing:
        lines.append(
            f"  smoothing {smoothing['cutoff_hz']} Hz: {smoothing['samples_filtered']} samples filtered, "
            f"{smoothing['samples_left_unfiltered']} left as they were"
            + (f" ({smoothing['why_unfiltered']})" if smoothing["samples_left_unfiltered"] else "")
        )
    if report["unavailable_groups"]:
        lines.append(
            f"  NOTE: the pose model could not run {', '.join(report['unavailable_groups'])}: those are empty"
        )
    lines.append(format_samples(report))
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from controller.dataset.export import ExportError, export_session
    from controller.dataset.pose.pose3d import TriangulationError

    options = {"trc": {"units": args.units, "up": args.up}, "nwb": {"face_2d": args.face_2d}}.get(
        args.format, {}
    )
    bar, progress = _bar(args, f"export {args.format}")
    try:
        path = export_session(args.session, args.format, args.out, progress=progress, **options)
    except (ExportError, TriangulationError, ValueError, OSError) as exc:
        print(f"\nsyncrig export: {exc}", file=sys.stderr)
        return 1
    if bar:
        bar.close()
    print(f"wrote {path}")
    from controller.dataset.export import seen_keypoints
    from controller.dataset.pose.pose3d import load_pose3d

    _keep, left_out = seen_keypoints(load_pose3d(args.session))
    if left_out:
        print(f"left out (never seen by any camera in 3D): {', '.join(left_out)}")
    return 0
