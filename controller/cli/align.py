"""`syncrig align SESSION FILE`: another instrument's recording (Open Ephys, SpikeGLX, Intan,
WAV/FLAC, a CSV of event times) onto the session's clock, from the TTL pulses SyncRig sent."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from controller.cli.arg_types import non_negative_int


def add_align_command(sub: argparse._SubParsersAction) -> None:
    from controller.align.readers import FORMATS

    p = sub.add_parser(
        "align",
        help="map an external recording (ephys, audio, event CSV) onto the session clock via TTL pulses",
    )
    p.add_argument("session", type=Path, help="session directory (with ttl/<cam>.out.csv)")
    p.add_argument(
        "file", type=Path, help="the recording: Open Ephys/SpikeGLX folder or file, .rhd, .wav/.flac, .csv"
    )
    p.add_argument("--format", choices=FORMATS, help="default: from the file name")
    p.add_argument(
        "--channel",
        type=non_negative_int,
        default=None,
        help="the channel with the TTL: Open Ephys TTL line (default 1), SpikeGLX XD line, Intan digital "
        "input (0-based), audio channel (0-based), CSV channel column (default 0)",
    )
    p.add_argument("--json", action="store_true", help="print the map as JSON")
    p.set_defaults(handler=cmd_align)


def cmd_align(args: argparse.Namespace) -> int:
    from controller.align.edges import AlignError
    from controller.align.readers import guess_format
    from controller.align.run import align_session
    from syncrig_agent.contract.formats import ManifestError
    from syncrig_agent.contract.layout import SessionLayout

    try:
        fmt = args.format or guess_format(args.file)
        channel = args.channel if args.channel is not None else (1 if fmt == "openephys" else 0)
        summary = align_session(args.session, args.file, fmt, channel)
    except (AlignError, ManifestError, OSError) as exc:
        print(f"syncrig align: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    r = summary["residual_us"]
    stem = Path(summary["file"])
    print(f"{summary['file']} ({summary['format']}, channel {summary['channel']}) → {args.session}")
    print(
        f"  matched {summary['camera']}'s {summary['role']} (line {summary['line']}): "
        f"{summary['pulses_matched']} pulses, {summary['edges_matched']} edges"
    )
    print(f"  session_ns = {summary['slope']:.9f} · external_s · 1e9 + {summary['offset_ns']:.0f}")
    print(f"  residual p50 {r['p50']:.2f} µs, p99 {r['p99']:.2f} µs, max {r['max']:.2f} µs")
    sync = SessionLayout(args.session).sync
    print(f"  wrote {sync.path}/ ({stem.name.split('.')[0] or stem.name}.json, .frames.csv)")
    return 0
