"""`syncrig sync | trim | verify | import` (and `tools/sync_videos.py`): the pipeline on the command line,
with progress bars on the terminal. Works on a session directory with no controller running, and
on a folder of SqueakShot-style recordings (imported first, marked relative-time only)."""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path

from controller.cli.arg_types import non_negative_int, positive_float
from controller.progress import Progress, ProgressBar
from syncrig_agent.contract.layout import SessionLayout


def add_sync_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "session", type=Path, help="session directory (or a folder of SqueakShot <cam>_<rec>.pts files)"
    )
    p.add_argument(
        "--tolerance-us",
        type=positive_float,
        help="match tolerance around each instant (µs; default and maximum: half a frame period)",
    )
    p.add_argument(
        "--mode",
        choices=["auto", "grid", "time"],
        default="auto",
        help="grid: by grid index (phase-locked SyncRig); time: nearest in time; auto picks",
    )
    p.add_argument("--reference", help="time mode: camera whose frames define the instants")
    p.add_argument(
        "--fill",
        choices=["gaps", "repeat"],
        default="gaps",
        help="gaps: instants without a frame stay timestamp gaps; repeat: constant frame rate, "
        "repeating the previous frame (flagged in the report)",
    )
    p.add_argument("--analyze-only", action="store_true", help="match + report + plots, no video outputs")
    p.add_argument("--recording", help="SqueakShot folder with several recordings: which one")
    p.add_argument(
        "--out",
        type=Path,
        help="SqueakShot folder: where to create the imported session (default: inside it)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def add_pipeline_commands(sub: argparse._SubParsersAction) -> None:
    sync = sub.add_parser("sync", help="match cameras, write the quality report, plots and synced outputs")
    add_sync_arguments(sync)
    sync.set_defaults(handler=cmd_sync)

    trim = sub.add_parser("trim", help="cut every camera to the same range of matched frames")
    trim.add_argument("session", type=Path)
    trim.add_argument(
        "--start-frame", type=non_negative_int, required=True, help="first match row (inclusive)"
    )
    trim.add_argument("--end-frame", type=non_negative_int, required=True, help="last match row (inclusive)")
    trim.add_argument(
        "--fill",
        choices=["gaps", "repeat"],
        default="repeat",
        help="repeat (default): a dropped instant repeats the previous frame (flagged), so frame k is the "
        "same instant in every camera; gaps: real frames only, aligned by timestamp",
    )
    trim.add_argument("--force", action="store_true", help="replace an existing trim of the same range")
    trim.add_argument("--quiet", action="store_true")
    trim.set_defaults(handler=cmd_trim)

    verify = sub.add_parser("verify", help="read the capture time drawn into simulated frames of the outputs")
    verify.add_argument("session", type=Path)
    verify.add_argument(
        "--pts-tolerance-us",
        type=positive_float,
        default=1000.0,
        help="flag frames whose picture time and .pts differ by more (µs)",
    )
    verify.add_argument("--json", action="store_true")
    verify.add_argument("--quiet", action="store_true")
    verify.set_defaults(handler=cmd_verify)

    imp = sub.add_parser(
        "import", help="footage from another rig (one video per camera) as a new synced session"
    )
    imp.add_argument(
        "source", type=Path, help="folder with one video per camera, named after it (cam1.mp4...)"
    )
    imp.add_argument("--out", type=Path, required=True, help="sessions root to create the new session in")
    imp.add_argument(
        "--calibration",
        type=Path,
        help="the rig's calibration (SyncRig, aniposelib, Pose2Sim Calib.toml, Qualisys .qca.txt, "
        "EasyMocap intri/extri.yml, Caliscope config.toml): written as calibration/calibration.toml (mm)",
    )
    imp.add_argument(
        "--units",
        choices=["mm", "m"],
        help="the calibration's translation unit, where its format does not say",
    )
    imp.add_argument("--fps", type=_rate, help="frame rate, exact (60, 30000/1001); default: the videos'")
    imp.add_argument("--subject", help="subject ID for the session name")
    imp.add_argument("--project", help="project ID for the session name (default: import)")
    imp.add_argument("--quiet", action="store_true", help="no progress bars")
    imp.set_defaults(handler=cmd_import)


def _rate(text: str) -> Fraction:
    try:
        rate = Fraction(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"not a frame rate: {text!r} (e.g. 60 or 30000/1001)") from None
    if rate <= 0:
        raise argparse.ArgumentTypeError(f"the frame rate must be positive, got {text}")
    return rate


class _Bar:
    """A ProgressBar per stage label prefix, fed by the pipeline's progress(fraction, label)."""

    def __init__(self, title: str, quiet: bool) -> None:
        self.bar = None if quiet else ProgressBar(title, total=1.0)

    def __call__(self, fraction: float, label: str) -> None:
        if self.bar is not None:
            self.bar.update(fraction)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _fail(command: str, exc: Exception) -> int:
    print(f"syncrig {command}: {exc}", file=sys.stderr)
    return 2


class _StageBars:
    """One progress bar per stage of the sync use case, titled with the stage; each closes when the
    next stage begins. The end of `import_stage` is where the imported session is announced."""

    def __init__(self, quiet: bool, import_stage: str) -> None:
        self.quiet = quiet
        self.import_stage = import_stage
        self.stage: str | None = None
        self.bar: _Bar | None = None

    def __call__(self, stage: str, session: Path) -> Progress:
        self.close()
        if self.stage == self.import_stage:
            print(f"imported SqueakShot recording as {session} (RELATIVE TIME ONLY)")
        self.stage = stage
        self.bar = _Bar(stage, self.quiet)
        return self.bar

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def cmd_sync(args: argparse.Namespace) -> int:
    from controller.pipeline import SessionError
    from controller.pipeline.sync import IMPORTING, SqueakShotImport, SyncRequest, sync_session

    request = SyncRequest(
        tolerance_us=args.tolerance_us,
        mode=args.mode,
        reference=args.reference,
        fill=args.fill,
        outputs=not args.analyze_only,
        squeakshot=SqueakShotImport(dest_root=args.out, recording=args.recording),
    )
    bars = _StageBars(args.quiet, import_stage=IMPORTING)
    try:
        result = sync_session(args.session, request, bars)
    except (SessionError, ValueError, OSError) as exc:
        return _fail("sync", exc)
    bars.close()
    if args.json:
        print(json.dumps(result.report, indent=2))
    else:
        print_report(result.session, result.report)
    return 0


def print_report(session: Path, report: dict) -> None:
    m = report["matching"]
    print(
        f"session {report['session']}: {m['rows']} instants ({m['complete_rows']} with every camera), "
        f"{m['mode']} match, tolerance {m['tolerance_ns'] / 1e3:.0f} µs"
    )
    print(f"  verdict: {report['verdict'].upper()} — {'; '.join(report['verdict_reasons'])}")
    print("  camera    frames  matched  empty  unmatched  residual mean / p99 / max |µs|")
    for name, cam in report["cameras"].items():
        r = cam["residual_us"]
        res = f"{r['mean']:.1f} / {r['p99_abs']:.1f} / {r['max_abs']:.1f}" if r["n"] else "-"
        print(
            f"  {name:<8} {cam['frames']:7d} {cam['matched']:8d} {cam['dropped']:6d} "
            f"{cam['unmatched_frames']:10d}  {res}"
        )
    for note in report.get("notes", []):
        if note.startswith("RELATIVE"):
            print(f"  {note}")
    outputs = report.get("outputs")
    if outputs:
        for name, out in outputs["cameras"].items():
            print(
                f"  {name}: {out['path']} — {out['frames']} frames, {out['copied']} copied, "
                f"{out['reencoded']} re-encoded, {out['filled']} filled"
            )
        for flag in outputs["flags"]:
            print(f"  note: {flag}")
    print(
        f"  report: {SessionLayout(session).synced.report}; plots: "
        + ", ".join(str(session / p["png"]) for p in report.get("plots", {}).values())
    )


def cmd_trim(args: argparse.Namespace) -> int:
    from controller.pipeline import SessionError, trim_session

    bar = _Bar("trimming", args.quiet)
    try:
        trim = trim_session(
            args.session, args.start_frame, args.end_frame, fill=args.fill, overwrite=args.force, progress=bar
        )
    except (SessionError, ValueError, OSError) as exc:
        bar.close()
        return _fail("trim", exc)
    bar.close()
    print(f"trim rows {trim['start_frame']}..{trim['end_frame']} ({trim['rows']} instants):")
    for name, out in trim["cameras"].items():
        print(
            f"  {name}: {out['path']} — {out['frames']} frames, {out['copied']} copied, "
            f"{out['reencoded']} re-encoded, {out['filled']} filled"
        )
    for flag in trim["flags"]:
        print(f"  note: {flag}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from controller.pipeline import SessionError, verify_session

    bar = _Bar("verifying", args.quiet)
    try:
        result = verify_session(
            args.session, pts_tolerance_ns=round(args.pts_tolerance_us * 1000), progress=bar
        )
    except (SessionError, ValueError, OSError) as exc:
        bar.close()
        return _fail("verify", exc)
    bar.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, out in result["outputs"].items():
            off = out["cross_camera_offset_us"]
            spread = f"p50 {off['p50']} / p99 {off['p99']} / max {off['max']} µs" if off["n"] else "n/a"
            print(
                f"{key}: {'OK' if out['ok'] else 'PROBLEMS'} — true cross-camera offset {spread} "
                f"over {out['rows_compared']} instants; first frames {out['first_frame_offset_us']} µs apart"
            )
            for cam, entry in out["cameras"].items():
                if "error" in entry:
                    print(f"  {cam}: ERROR {entry['error']}")
                    continue
                d = entry["pts_minus_picture_us"]
                print(
                    f"  {cam}: {entry['frames']} frames, |picture − .pts| p99 {d['p99']} max {d['max']} µs, "
                    f"{entry['disagreeing_frames']} disagreeing, {entry['unreadable_timecodes']} unreadable, "
                    f"{entry['filled']} filled"
                )
    return 0 if result["ok"] else 1


def cmd_import(args: argparse.Namespace) -> int:
    from controller.dataset.imports.footage import import_session
    from controller.pipeline.footage_import import FootageImport

    if args.units and not args.calibration:
        return _fail("import", ValueError("--units applies to --calibration FILE, which was not given"))
    request = FootageImport(args.source, args.out, args.fps, args.subject, args.project)
    bars = _StageBars(args.quiet, import_stage="")
    try:
        done = import_session(request, args.calibration, args.units, bars)
    except (ValueError, OSError) as exc:
        return _fail("import", exc)
    bars.close()
    for note in done.imported.notes:
        print(f"  {note}")
    print_report(done.session, done.sync.report)
    if done.calibration is not None:
        calib = SessionLayout(done.session).calibration_toml
        print(f"  calibration: {done.calibration.format} {done.calibration.source} -> {calib}")
        for note in done.calibration.notes:
            print(f"    note: {note}")
    print(done.session)
    return 0


def sync_videos_main(argv: list[str] | None = None) -> int:
    """`tools/sync_videos.py`: the same as `syncrig sync`."""
    parser = argparse.ArgumentParser(
        prog="sync_videos.py",
        description="Match cameras, write the quality report, plots and synced outputs (no controller).",
    )
    add_sync_arguments(parser)
    return cmd_sync(parser.parse_args(argv))
