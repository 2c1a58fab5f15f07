"""Reconciliation: assemble a camera's `.h264` from what the live stream delivered, fetching only
the missing frames from the Pi's copy.

The Pi's frame table (pulled and verified first) gives every frame's size, hence its byte range in
the Pi's `.h264`. The receiver's table says which frames it has and where in `stream/<cam>.h264`.
Runs of frames the stream has are copied locally; the gaps (a receiver restart, a cut connection,
frames dropped from a full stream queue) are read from the Pi as byte ranges. The result is then
checked against the Pi's SHA-256 like any download; if anything disagrees the caller falls back to
a full (resumable) download, so a damaged stream copy can never end up in `raw/`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller.receivers.sidecar import read_stream_table
from controller.transfer.transports import Transport
from syncrig_agent.contract.formats import read_frame_table
from syncrig_agent.contract.layout import SessionLayout

COPY_CHUNK = 1 << 20


@dataclass
class GapFillResult:
    sha256: str
    size: int
    frames: int
    frames_from_stream: int
    frames_from_pi: int
    bytes_from_pi: int
    ranges_from_pi: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def plan_runs(pi_sizes: np.ndarray, stream: dict[int, tuple[int, int]]) -> list[tuple[str, int, int, int]]:
    """Runs of ("stream"|"pi", first frame, end frame (excl.), source offset) over all frames."""
    offsets = np.concatenate([[0], np.cumsum(pi_sizes)]).astype(np.int64)
    runs: list[tuple[str, int, int, int]] = []
    for i, size in enumerate(pi_sizes.tolist()):
        have = stream.get(i)
        if have is not None and have[1] == size:
            src, off = "stream", have[0]
            contiguous = runs and runs[-1][0] == "stream" and runs[-1][2] == i
            if contiguous:
                prev = runs[-1]
                prev_end_offset = stream[i - 1][0] + stream[i - 1][1]
                if prev_end_offset == off:
                    runs[-1] = (prev[0], prev[1], i + 1, prev[3])
                    continue
            runs.append((src, i, i + 1, off))
        else:
            if runs and runs[-1][0] == "pi" and runs[-1][2] == i:
                prev = runs[-1]
                runs[-1] = (prev[0], prev[1], i + 1, prev[3])
            else:
                runs.append(("pi", i, i + 1, int(offsets[i])))
    return runs


def assemble_from_stream(
    session_dir: Path,
    camera: str,
    transport: Transport,
    remote_h264: str,
    pi_frames_csv: Path,
    out_path: Path,
    on_bytes: Callable[[int], None] | None = None,
) -> GapFillResult | None:
    """Write `out_path` (must not exist) from stream + Pi ranges; None if there is no stream copy."""
    files = SessionLayout(session_dir).stream.files(camera)
    if not files["h264"].exists() or not files["frames"].exists():
        return None
    rows = read_stream_table(files["frames"])
    if not rows:
        return None
    table = read_frame_table(pi_frames_csv)
    if "size" not in table:
        return None
    pi_sizes = table["size"].astype(np.int64)
    if not np.array_equal(table["frame"], np.arange(len(pi_sizes))):
        raise ValueError(f"{pi_frames_csv}: frame column is not 0..n-1")
    stream = {r.row.frame: (r.offset, r.row.size) for r in rows if r.row.frame < len(pi_sizes)}
    runs = plan_runs(pi_sizes, stream)
    digest = hashlib.sha256()
    total = 0
    from_stream = from_pi = bytes_from_pi = 0
    pi_ranges = [(offset, int(pi_sizes[first:end].sum())) for src, first, end, offset in runs if src == "pi"]
    from_the_pi = transport.read_ranges(remote_h264, pi_ranges) if pi_ranges else iter(())

    def put(chunk: bytes) -> None:
        nonlocal total
        out.write(chunk)
        digest.update(chunk)
        total += len(chunk)
        if on_bytes is not None:
            on_bytes(len(chunk))

    with open(out_path, "xb") as out, open(files["h264"], "rb") as spool:
        for source, first, end, offset in runs:
            length = int(pi_sizes[first:end].sum())
            if source == "pi":
                data = next(from_the_pi)
                if len(data) != length:
                    raise OSError(f"the Pi's copy of {camera} ended early at frame {first}")
                put(data)
                from_pi += end - first
                bytes_from_pi += length
                continue
            spool.seek(offset)
            from_stream += end - first
            remaining = length
            while remaining:
                chunk = spool.read(min(COPY_CHUNK, remaining))
                if not chunk:
                    raise OSError(f"stream copy of {camera} ended early at frame {first}")
                put(chunk)
                remaining -= len(chunk)
    return GapFillResult(
        sha256=digest.hexdigest(),
        size=total,
        frames=len(pi_sizes),
        frames_from_stream=from_stream,
        frames_from_pi=from_pi,
        bytes_from_pi=bytes_from_pi,
        ranges_from_pi=len(pi_ranges),
    )
