"""`syncrig process`: the dataset steps over many sessions on a Ray cluster (local by default),
resumable, with a progress line per session and step and a report per unit of work."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.cli.arg_types import positive

positive_int = positive(int)


def _steps(text: str) -> list[str]:
    from controller.cluster.steps import STEPS

    steps = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in steps if s not in STEPS]
    if unknown or not steps:
        expected = ",".join(STEPS)
        raise argparse.ArgumentTypeError(f"unknown step(s) {', '.join(unknown)}; expected some of {expected}")
    return steps


def add_process_command(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "process",
        help="run the dataset steps over sessions on Ray (chunked, resumable; local Ray by default)",
    )
    p.add_argument("paths", nargs="+", type=Path, metavar="SESSION_OR_ROOT")
    p.add_argument(
        "--steps",
        type=_steps,
        default="sync,detect,calibrate,pose,triangulate,export",
        help="comma-separated, run in pipeline order (default: all of sync,detect,calibrate,pose,"
        "triangulate,export)",
    )
    p.add_argument("--ray-address", help="a Ray cluster (host:port); default: local Ray on 127.0.0.1")
    p.add_argument("--workers", type=positive_int, help="pose actors (default: the cluster's CPUs)")
    p.add_argument("--serial", action="store_true", help="no Ray: all work here, in order")
    p.add_argument(
        "--data",
        choices=["auto", "shared", "object-store"],
        default="auto",
        help="shared: workers read videos from storage every node sees; object-store: the driver sends "
        "each chunk's packets through Ray; auto: shared if every node sees the files",
    )
    p.add_argument("--chunk-frames", type=positive_int, default=120, help="least frames per chunk")
    p.add_argument("--pose-model", type=Path, help="ONNX pose model (not MediaPipe)")
    p.add_argument("--pose-device", choices=["cpu", "cuda"], default="cpu", help="ONNX Runtime's provider")
    p.add_argument("--board", type=Path, help="board spec JSON (detect)")
    p.add_argument("--export-format", choices=["trc", "csv", "nwb"], default="trc")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(handler=cmd_process)


class _Progress:
    """One line per session and step each time it passes another quarter (and when it ends)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.shown: dict[tuple, int] = {}

    def __call__(self, session: Path, step: str, done: int, total: int) -> None:
        quarter = 4 if total == 0 else 4 * done // total
        key = (str(session), step)
        if self.quiet or self.shown.get(key, -1) >= quarter:
            return
        self.shown[key] = quarter
        print(f"{step:<11} {session.name}: {done}/{total}", file=sys.stderr, flush=True)


def cmd_process(args: argparse.Namespace) -> int:
    from controller.cluster.engine import ClusterError
    from controller.cluster.process import ProcessOptions, process
    from controller.cluster.steps import PoseModel, StepError
    from controller.dataset.board.spec import BoardSpec, BoardSpecError
    from controller.dataset.calibrate import CalibrationError
    from controller.dataset.pose.run import PoseError

    try:
        board = BoardSpec.load(args.board) if args.board else None
        model = PoseModel("onnx", args.pose_model, args.pose_device) if args.pose_model else PoseModel()
        options = ProcessOptions(
            steps=args.steps,
            address=args.ray_address,
            workers=args.workers,
            serial=args.serial,
            data=args.data,
            chunk_frames=args.chunk_frames,
            pose_model=model,
            board=board,
            export_format=args.export_format,
        )
        report = process(args.paths, options, _Progress(args.quiet))
    except (StepError, ClusterError, BoardSpecError, CalibrationError, PoseError, ValueError, OSError) as exc:
        print(f"syncrig process: {exc}", file=sys.stderr)
        return 1
    print(
        f"{report['computed']} units computed, {report['reused']} reused from earlier runs, "
        f"{len(report['reruns'])} reruns, on {len(report['nodes'])} node(s) ({report['backend']}, "
        f"data: {report['data']}, {report['workers']} workers) in {report['seconds']:.1f} s"
    )
    for rerun in report["reruns"]:
        print(
            f"  rerun: {rerun['session']} {rerun['step']} {rerun['camera']} chunk {rerun['chunk']} "
            f"(attempt {rerun['attempt']} failed: {rerun['error']})"
        )
    print(f"report: {report['report']}")
    return 0
