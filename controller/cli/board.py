"""`syncrig board` (a printable ChArUco board + its spec) and `syncrig detect` (find the board in a
synced session, refusing footage of a board that does not fit the spec)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.progress import ProgressBar


def squares_arg(text: str) -> tuple[int, int]:
    try:
        x, y = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected COLSxROWS like 7x5, got {text!r}") from None
    return x, y


def add_board_arguments(p: argparse.ArgumentParser) -> None:
    """The one board vocabulary of `board`, `detect` and `calibrate` (and the web page's fields):
    a spec file and/or the fields one by one (a flag overrides the file's field). Defaults: the
    session's own board (detect, calibrate), else the demo's 7x5 board of 40/30 mm."""
    from controller.dataset.board.spec import DICTIONARIES

    p.add_argument(
        "--board", "--spec", dest="board", type=Path, help="board spec JSON (as `syncrig board` writes it)"
    )
    p.add_argument("--squares", type=squares_arg, metavar="COLSxROWS", help="squares across x down (7x5)")
    p.add_argument("--squares-x", type=int, help=argparse.SUPPRESS)  # the older spelling of --squares
    p.add_argument("--squares-y", type=int, help=argparse.SUPPRESS)
    p.add_argument("--square-mm", type=float, help="square side as printed (measure it), mm (40)")
    p.add_argument("--marker-mm", type=float, help="ArUco marker side as printed, mm (30)")
    p.add_argument(
        "--dictionary", choices=DICTIONARIES, metavar="DICT", help="ArUco dictionary (DICT_4X4_50)"
    )
    p.add_argument(
        "--legacy-pattern",
        "--legacy",
        dest="legacy_pattern",
        action="store_true",
        default=None,
        help="a board made by OpenCV < 4.6 (matters for even row counts)",
    )


def board_from_args(args: argparse.Namespace, default=None):  # noqa: ANN001, ANN201
    """The BoardSpec the flags say: --board's file (else `default`, else BoardSpec's defaults) with
    each given field on top; `default` itself when no flag at all was given (None: "the session's
    own"). BoardSpecError for a bad file or field."""
    from controller.dataset.board.spec import BoardSpec, BoardSpecError

    given = {
        k: getattr(args, k)
        for k in ("squares_x", "squares_y", "square_mm", "marker_mm", "dictionary", "legacy_pattern")
        if getattr(args, k, None) is not None
    }
    if args.squares is not None:
        if "squares_x" in given or "squares_y" in given:
            raise BoardSpecError("give --squares COLSxROWS or --squares-x/--squares-y, not both")
        given["squares_x"], given["squares_y"] = args.squares
    if args.board is not None:
        base = BoardSpec.load(args.board)
    elif not given:
        return default
    else:
        base = default or BoardSpec()
    return BoardSpec.from_dict({**base.as_dict(), **given})


def add_board_commands(sub: argparse._SubParsersAction) -> None:
    board = sub.add_parser("board", help="write a printable ChArUco board (PNG/PDF) and its spec (JSON)")
    add_board_arguments(board)
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
    add_board_arguments(detect)
    detect.set_defaults(handler=cmd_detect)


def cmd_board(args: argparse.Namespace) -> int:
    from controller.dataset.board.printable import PrintError, write_board
    from controller.dataset.board.spec import BoardSpec, BoardSpecError

    try:
        spec = board_from_args(args, BoardSpec())
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
    from controller.dataset.board.spec import BoardSpec, BoardSpecError
    from controller.dataset.calibrate import session_board
    from syncrig_agent.contract.layout import SessionLayout

    try:
        spec = board_from_args(args, session_board(args.session) or BoardSpec())
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
