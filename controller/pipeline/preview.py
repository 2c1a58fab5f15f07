"""One decoded picture of camera X at match row k (the trim scrubber's preview), straight from the
raw recording: decode from the keyframe before the frame up to it."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from controller.pipeline.analyze import analyze_session, current_match
from controller.pipeline.matching import EMPTY, MatchTable
from controller.pipeline.packets import packet_index
from controller.pipeline.sources import SessionError, SessionSource, load_session
from syncrig_agent.contract.layout import SessionLayout


@dataclass
class _Indexed:
    source: SessionSource
    table: MatchTable
    packets: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


@functools.lru_cache(maxsize=8)
def _indexed(session_dir: str, _match_mtime_ns: int) -> _Indexed:
    source = load_session(session_dir)
    table, _report = current_match(source)
    return _Indexed(source, table, {t.name: packet_index(t) for t in source.tracks})


def _load(session_dir: Path | str) -> _Indexed:
    match = SessionLayout(session_dir).synced.match_csv
    if not match.is_file():
        analyze_session(session_dir)
    # Keyed by match.csv's mtime: a re-analysis invalidates the cached table and packet index.
    return _indexed(str(Path(session_dir).resolve()), match.stat().st_mtime_ns)


def preview_frame(
    session_dir: Path | str, camera: str, row: int, *, max_width: int | None = None
) -> np.ndarray | None:
    """RGB uint8 array (H, W, 3) of the recorded frame camera `camera` shows at match row `row`;
    None where that camera has no frame for the instant (a drop)."""
    indexed = _load(session_dir)
    if camera not in indexed.table.cameras:
        raise SessionError(f"no camera named {camera!r} (cameras: {', '.join(indexed.table.cameras)})")
    if not 0 <= int(row) < indexed.table.rows:
        raise SessionError(f"row {row} is outside the match table (0..{indexed.table.rows - 1})")
    frame_index = int(indexed.table.column(camera)[int(row)])
    if frame_index == EMPTY:
        return None
    starts, sizes, keys = indexed.packets[camera]
    key_positions = np.flatnonzero(keys[: frame_index + 1])
    if key_positions.size == 0:
        raise SessionError(f"{camera}: no keyframe at or before frame {frame_index}")
    first = int(key_positions[-1])
    track = indexed.source.track(camera)
    decoder = av.CodecContext.create("h264", "r")
    picture = None
    with open(track.video, "rb") as fh:
        fh.seek(int(starts[first]))
        blob = fh.read(int(starts[frame_index] + sizes[frame_index] - starts[first]))
    offset = 0
    for i in range(first, frame_index + 1):
        chunk = blob[offset : offset + int(sizes[i])]
        offset += int(sizes[i])
        for pic in decoder.decode(av.Packet(chunk)):
            picture = pic
    for pic in decoder.decode(None):
        picture = pic
    if picture is None:
        raise SessionError(f"{camera}: frame {frame_index} did not decode")
    if max_width is not None and picture.width > max_width:
        height = max(2, round(picture.height * max_width / picture.width / 2) * 2)
        picture = picture.reformat(width=int(max_width), height=height)
    return picture.to_ndarray(format="rgb24")


def preview_jpeg(
    session_dir: Path | str, camera: str, row: int, *, max_width: int | None = 640, quality: int = 85
) -> bytes | None:
    """The same picture as JPEG bytes (None for an instant the camera has no frame for)."""
    from PIL import Image

    rgb = preview_frame(session_dir, camera, row, max_width=max_width)
    if rgb is None:
        return None
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=int(quality))
    return buf.getvalue()


def describe_row(session_dir: Path | str, row: int) -> dict:
    """What the trim scrubber shows under a row: its instant and each camera's frame (None where
    the camera has none), and whether the row may start or end a trim (every camera has a frame)."""
    indexed = _load(session_dir)
    table = indexed.table
    if not 0 <= int(row) < table.rows:
        raise SessionError(f"row {row} is outside the match table (0..{table.rows - 1})")
    cells = table.cells[int(row)]
    frames = {cam: (None if int(f) == EMPTY else int(f)) for cam, f in zip(table.cameras, cells, strict=True)}
    capture = {
        cam: (None if f is None else int(indexed.source.track(cam).times_ns[f])) for cam, f in frames.items()
    }
    return {
        "row": int(row),
        "rows": table.rows,
        "instant_ns": int(table.instants_ns[int(row)]),
        "frames": frames,
        "capture_ns": capture,
        "complete": all(f is not None for f in frames.values()),
    }
