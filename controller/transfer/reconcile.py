"""A lost camera's footage: everything it produced up to the loss, from the Pi's copy and the live
stream, cut to whole frames.

A camera whose agent died (or froze, or lost its link) never closed its files: the Pi's `.h264`
may hold bytes whose frame-table row was still in a buffer, its `.frames.csv` may end in half a
line, and the live stream may hold frames the Pi never flushed (or miss some the Pi has). Frame
`i` is whole when its row is known (the Pi's table, else the stream's) and its bytes are there
(the Pi's `.h264` at the offset the rows before it give, else the stream's spool). Where both
sources hold a frame the bytes must agree; the Pi's copy is the source of truth when they do not
(counted as a mismatch). The result stops at the first frame that is not whole; everything after
it (rows without bytes, bytes without rows) is the cut, recorded in `Reconciliation`, never a
reason to refuse the session. The `.pts` is rebuilt from the rows (wall_ns − T0), as the agent
writes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from controller.receivers.sidecar import read_stream_table
from syncrig_agent.contract.formats.frame_table import (
    FRAME_TABLE_COLUMNS,
    FrameRow,
    write_frame_header,
    write_frame_row,
)
from syncrig_agent.contract.formats.pts import write_pts
from syncrig_agent.contract.layout import SessionLayout


@dataclass
class Reconciliation:
    """What was kept of a lost camera and what was cut (the ledger's `reconciled`)."""

    frames: int  # whole frames written to raw/
    frames_from_pi: int
    frames_from_stream: int
    bytes: int  # size of the reconciled .h264
    pi_rows: int  # whole rows in the Pi's frame table
    pi_torn_row: bool  # the Pi's table ended in half a line (cut)
    pi_bytes: int  # size of the Pi's .h264
    pi_bytes_cut: int  # the Pi's bytes after the last whole frame (bytes without a row)
    stream_frames: int  # frames the live stream delivered (rows with their bytes)
    rows_without_bytes: int  # rows (Pi or stream) past the last whole frame (cut)
    mismatches: int  # frames both sources held with different bytes (the Pi's kept)

    def as_dict(self) -> dict:
        return asdict(self)


def read_torn_frame_table(path: Path) -> tuple[list[FrameRow], bool]:
    """The whole rows of a frame table that may end mid-line (its writer was killed); and whether
    a torn line was cut. Rows must run 0, 1, 2...: the first row that does not ends the table."""
    rows: list[FrameRow] = []
    torn = False
    if not path.exists():
        return rows, torn
    text = path.read_bytes().decode("ascii", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] != "":
        torn = True  # the last line has no newline: its writer died while writing it
    lines = lines[:-1]
    if not lines:
        return rows, torn
    header = lines[0].strip().split(",")
    if tuple(header[: len(FRAME_TABLE_COLUMNS)]) != FRAME_TABLE_COLUMNS:
        raise ValueError(f"{path}: header {header} is not {list(FRAME_TABLE_COLUMNS)}")
    for line in lines[1:]:
        parts = line.strip().split(",")
        try:
            row = FrameRow(*(int(v) for v in parts[: len(FRAME_TABLE_COLUMNS)]))
        except (TypeError, ValueError):
            torn = True
            break
        if len(parts) < len(FRAME_TABLE_COLUMNS) or row.frame != len(rows):
            torn = True
            break
        rows.append(row)
    return rows, torn


def reconcile_camera(
    session_dir: Path,
    camera: str,
    pi_copies: dict[str, Path],
    t0_ns: int,
) -> Reconciliation:
    """Write `raw/<cam>.h264`, `.frames.csv` and `.pts` (none may exist) from the Pi's copies
    (`pi_copies` by kind "h264"/"frames", verified copies of what the Pi holds) and the stream."""
    layout = SessionLayout(session_dir)
    out = layout.raw.files(camera)
    pi_rows, torn = read_torn_frame_table(pi_copies["frames"])
    pi_video = pi_copies["h264"]
    pi_size = pi_video.stat().st_size if pi_video.exists() else 0
    spool_files = layout.stream.files(camera)
    stream_rows = {r.row.frame: r for r in read_stream_table(spool_files["frames"])}
    spool_size = spool_files["h264"].stat().st_size if spool_files["h264"].exists() else 0
    streamed = {f: r for f, r in stream_rows.items() if r.offset + r.row.size <= spool_size}

    kept: list[FrameRow] = []
    from_pi = from_stream = mismatches = 0
    pi_offset = 0
    digest = hashlib.sha256()
    pi_fh = open(pi_video, "rb") if pi_video.exists() else None
    spool_fh = open(spool_files["h264"], "rb") if spool_files["h264"].exists() else None
    try:
        with open(out["h264"], "xb") as video:
            while True:
                i = len(kept)
                row = pi_rows[i] if i < len(pi_rows) else (streamed[i].row if i in streamed else None)
                if row is None:
                    break
                pi_bytes = None
                if pi_fh is not None and pi_offset + row.size <= pi_size:
                    pi_fh.seek(pi_offset)
                    pi_bytes = pi_fh.read(row.size)
                stream_bytes = None
                hit = streamed.get(i)
                if spool_fh is not None and hit is not None and hit.row.size == row.size:
                    spool_fh.seek(hit.offset)
                    stream_bytes = spool_fh.read(row.size)
                if pi_bytes is None and stream_bytes is None:
                    break
                if pi_bytes is not None and stream_bytes is not None and pi_bytes != stream_bytes:
                    mismatches += 1
                data = pi_bytes if pi_bytes is not None else stream_bytes
                if pi_bytes is not None:
                    from_pi += 1
                else:
                    from_stream += 1
                video.write(data)
                digest.update(data)
                pi_offset += row.size
                kept.append(row)
            video.flush()
    finally:
        for fh in (pi_fh, spool_fh):
            if fh is not None:
                fh.close()
    with open(out["frames"], "x", encoding="ascii") as table:
        write_frame_header(table)
        for row in kept:
            write_frame_row(table, row)
    write_pts(out["pts"], [row.wall_ns - t0_ns for row in kept])
    known_rows = max(len(pi_rows), max(stream_rows, default=-1) + 1)
    return Reconciliation(
        frames=len(kept),
        frames_from_pi=from_pi,
        frames_from_stream=from_stream,
        bytes=pi_offset,
        pi_rows=len(pi_rows),
        pi_torn_row=torn,
        pi_bytes=pi_size,
        pi_bytes_cut=max(0, pi_size - sum(r.size for r in kept[:from_pi])),
        stream_frames=len(streamed),
        rows_without_bytes=max(0, known_rows - len(kept)),
        mismatches=mismatches,
    )


__all__ = ["Reconciliation", "read_torn_frame_table", "reconcile_camera"]
