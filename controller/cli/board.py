"""`syncrig board` (a printable ChArUco board + its spec) and `syncrig detect` (find the board in a
synced session, refusing footage of a board that does not fit the spec)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.progress import ProgressBar


def _squares(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected COLSxROWS like 7x5, got {text!r}") from None
    return x, y


def _add_spec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spec", type=Path, help="board spec JSON (as written next to a printed board)")
    p.add_argument("--squares", type=_squares, default=None, metavar="COLSxROWS", help="default 7x5")
    p.add_argument("--square-mm", type=float, default=None, help="square side in mm (default 30)")
    p.add_argument("--marker-mm", type=float, default=None, help="marker side in mm (default 22)")
    p.add_argument("--dictionary", default=None, help="ArUco dictionary (default DICT_4X4_50)")
    p.add_argument(
        "--legacy",
        action="store_true",
        default=None,
        help="OpenCV < 4.6 pattern (matters for even row counts)",
    )


def spec_from_args(args: argparse.Namespace):
    from controller.dataset.board.spec import BoardSpec

    base = BoardSpec.load(args.spec).as_dict() if args.spec else BoardSpec().as_dict()
    if args.squares is not None:
        base["squares_x"], base["squares_y"] = args.squares
    for name in ("square_mm", "marker_mm", "dictionary"):
        value = getattr(args, name)
        if value is not None:
            base[name] = value
    if args.legacy:
        base["legacy_pattern"] = True
    return BoardSpec.from_dict(base)


def add_board_commands(sub: argparse._SubParsersAction) -> None:
    board = sub.add_parser("board", help="write a printable ChArUco board (PNG/PDF) and its spec (JSON)")
    _add_spec_arguments(board)
    board.add_argument("--out", type=Path, required=True, help="board.png or board.pdf (spec: <stem>.json)")
    board.add_argument("--dpi", type=float, default=300.0, help="PNG resolution (the PDF is vector)")
    board.add_argument("--margin-mm", type=float, default=10.0, help="white margin around the board")
    board.add_argument(
        "--page",
        choices=["auto", "fit", "A4", "A3", "A2", "A1", "A0"],
        default="auto",
        help="PDF page: auto = smallest A size that holds it, fit = board + margins",
    )
    board.set_defaults(handler=cmd_board)
    detect = sub.add_parser("detect", help="detect the ChArUco board in every synced frame of a session")
    detect.add_argument("session", type=Path)
    _add_spec_arguments(detect)
    detect.set_defaults(handler=cmd_detect)


def cmd_board(args: argparse.Namespace) -> int:
    from controller.dataset.board.printable import PrintError, write_board
    from controller.dataset.board.spec import BoardSpecError

    try:
        spec = spec_from_args(args)
        info = write_board(spec, args.out, dpi=args.dpi, page=args.page, margin_mm=args.margin_mm)
    except (BoardSpecError, PrintError, OSError) as exc:
        print(f"syncrig board: {exc}", file=sys.stderr)
        return 2
    size = f"{info.width_mm:.1f} x {info.height_mm:.1f} mm"
    pixels = f", {info.width_px}x{info.height_px} px at {args.dpi:g} dpi" if info.width_px else ""
    print(f"wrote {info.path} ({size}{pixels}) and {info.spec_path}")
    print(f"print at 100 % (no 'fit to page') and check that a square measures {spec.square_mm:g} mm")
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from controller.dataset.board.detect import DetectionError, detect_session
    from controller.dataset.board.spec import BoardSpecError
    from syncrig_agent.contract.layout import SessionLayout

    try:
        spec = spec_from_args(args)
    except BoardSpecError as exc:
        print(f"syncrig detect: {exc}", file=sys.stderr)
        return 2
    bar = ProgressBar("detecting", total=1.0)
    try:
        result = detect_session(args.session, spec, lambda done, total: bar.update(done / max(1, total)))
    except DetectionError as exc:
        print(f"\nsyncrig detect: {exc}", file=sys.stderr)
        return 1
    bar.close()
    for camera, det in result.items():
        path = SessionLayout(args.session).detections_file(camera)
        print(f"  {camera}: {len(det.rows())} views, {len(det.row)} corners -> {path}")
    return 0
