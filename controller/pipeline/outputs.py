"""Per-camera output files from a match table, copying recorded packets instead of re-encoding.

An output is a list of items (one per output frame): the recorded frame it shows and the timestamp
it carries. A recorded packet can be copied as-is when the decoder of the output will hold exactly
the reference pictures it held when the frame was recorded: the frame is a keyframe, or the output
frame just before it is its recorded predecessor, itself copied. Everything else (a cut on a
non-keyframe, a frame after a skipped one, a repeated frame) is re-encoded, from there only up to
the next recorded keyframe, where copying resumes. The streams have no B-frames (the agent's
encoder is configured so), so a cut after any frame needs nothing re-encoded.

Next to `<cam>.mp4` go `<cam>.pts` (v2, ms since T0: the output's timestamps, mkvmerge-readable)
and `<cam>.map.csv` (output frame → match row, recorded frame, its capture time, filled/re-encoded),
which `verify` uses to compare the pictures with what the files claim.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from controller.pipeline.matching import EMPTY, MatchTable
from controller.pipeline.packets import SourcePacket, iter_packets
from controller.pipeline.sources import CameraTrack, SessionError
from controller.progress import Progress
from syncrig_agent.contract.formats.pts import PTS_HEADER, format_pts_line
from syncrig_agent.contract.layout import OutputFolder

FILL_MODES = ("gaps", "repeat")
TIME_BASE = Fraction(1, 1_000_000)  # µs: exact enough for capture times, fine for MP4
# The edit list that places the first frame at its true time is written in the movie timescale
# (ms by default, which would shift every frame by the sub-ms part of the first timestamp).
MP4_OPTIONS = {"movie_timescale": "1000000"}
MAP_COLUMNS = ("output_frame", "row", "source_frame", "capture_ns", "pts_ns", "filled", "reencoded")
# Re-encoded frames are few (a partial GOP at a cut, around a filled instant): high quality (crf 16)
# at the recording's own speed setting (ultrafast spends bits, not time).
REENCODE_OPTIONS = {
    "preset": "ultrafast",
    "tune": "zerolatency",  # one packet out per frame in, no B-frames
    "crf": "16",
    "x264-params": "scenecut=0:repeat-headers=1",
}


def write_map_csv(path: Path, table: np.ndarray) -> None:
    """`<cam>.map.csv`: one row per output frame, the MAP_COLUMNS in their order (integers)."""
    with open(path, "w", encoding="ascii") as fh:
        fh.write(",".join(MAP_COLUMNS) + "\n")
        np.savetxt(
            fh, np.asarray(table, dtype=np.int64).reshape(-1, len(MAP_COLUMNS)), fmt="%d", delimiter=","
        )


def read_map_csv(path: Path) -> dict[str, np.ndarray]:
    """A `<cam>.map.csv` by column (int64 arrays, empty for an output without frames). Raises
    OSError, or ValueError when a MAP_COLUMNS column is missing or a value is not an integer."""
    lines = path.read_text(encoding="ascii").splitlines()
    header = lines[0].split(",") if lines else []
    missing = [c for c in MAP_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: columns {missing} missing")
    data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    return {name: data[:, i] if data.size else np.zeros(0, np.int64) for i, name in enumerate(header)}


@dataclass
class OutputPlan:
    camera: str
    rows: np.ndarray  # match row of each output frame
    sources: np.ndarray  # recorded frame shown by each output frame
    filled: np.ndarray  # bool: a repeated frame standing in for an instant the camera has no frame for
    pts_ns: np.ndarray  # output timestamps, ns since T0 (or the camera's own origin, if relative)
    # (write_camera_outputs may shift them by a whole-ms offset shared by all cameras; see there)
    capture_ns: np.ndarray  # capture time of the recorded frame shown (from its .pts)

    def __len__(self) -> int:
        return int(self.rows.size)


@dataclass
class OutputResult:
    camera: str
    path: str
    frames: int
    copied: int
    reencoded: int
    filled: int
    reencoded_runs: list[dict] = field(default_factory=list)  # {first_output_frame, frames, reason}
    bytes: int = 0

    def as_dict(self) -> dict:
        return {
            "camera": self.camera,
            "path": self.path,
            "frames": self.frames,
            "copied": self.copied,
            "reencoded": self.reencoded,
            "filled": self.filled,
            "reencoded_runs": self.reencoded_runs,
            "bytes": self.bytes,
        }


def plan_output(
    table: MatchTable, track: CameraTrack, first_row: int, end_row: int, fill: str = "gaps"
) -> OutputPlan:
    """Output frames of one camera for match rows [first_row, end_row).

    gaps: only the rows where the camera has a frame, each carrying its own capture time, so an
    instant without a frame is a timestamp gap. repeat: one frame per row (constant frame rate on
    the row instants); an empty cell repeats the camera's previous frame (its first one, for empty
    rows before it) and is marked filled."""
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}, got {fill!r}")
    col = table.column(track.name)[first_row:end_row]
    rows = np.arange(first_row, end_row, dtype=np.int64)
    present = col != EMPTY
    if not present.any():
        raise SessionError(f"camera {track.name} has no frame in rows {first_row}..{end_row - 1}")
    if fill == "gaps":
        sources = col[present]
        out_rows = rows[present]
        filled = np.zeros(sources.size, dtype=bool)
        pts = track.times_ns[sources]
    else:
        # Forward fill: position of the last present cell at or before each row.
        last = np.maximum.accumulate(np.where(present, np.arange(col.size), -1))
        last[last < 0] = int(np.argmax(present))
        sources = col[last]
        out_rows = rows
        filled = ~present
        pts = table.instants_ns[first_row:end_row]
    return OutputPlan(
        track.name, out_rows, sources, filled, np.asarray(pts, np.int64), track.times_ns[sources]
    )


class _Reencoder:
    """Decodes recorded packets on demand (from the keyframe they depend on) and re-encodes pictures."""

    def __init__(self) -> None:
        self.decoder: av.CodecContext | None = None
        self.fed_through = -1  # last recorded frame fed to the decoder
        self.pictures: dict[int, av.VideoFrame] = {}
        self.encoder: av.CodecContext | None = None

    def picture(self, index: int, gop: list[SourcePacket]) -> av.VideoFrame:
        if index in self.pictures:
            return self.pictures[index]
        gop_start = gop[0].index
        if self.decoder is None or self.fed_through + 1 < gop_start or self.fed_through >= index:
            self.decoder = av.CodecContext.create("h264", "r")
            self.fed_through = gop_start - 1
            self.pictures.clear()
        for packet in gop[self.fed_through + 1 - gop_start : index + 1 - gop_start]:
            decoded = self.decoder.decode(av.Packet(packet.data))
            # No B-frames: one picture out per packet in, in order.
            for pic in decoded:
                self.pictures[packet.index] = pic
            self.fed_through = packet.index
        # Keep only recent pictures (a repeated frame needs the previous one).
        for old in [k for k in self.pictures if k < index - 1]:
            del self.pictures[old]
        if index not in self.pictures:
            raise SessionError(f"recorded frame {index} did not decode")
        return self.pictures[index]

    def encode(self, picture: av.VideoFrame, pts_us: int, first: bool) -> list[av.Packet]:
        if self.encoder is None:
            enc = av.CodecContext.create("libx264", "w")
            enc.width = picture.width
            enc.height = picture.height
            enc.pix_fmt = "yuv420p"
            enc.time_base = TIME_BASE
            enc.max_b_frames = 0
            enc.gop_size = 1 << 20  # one IDR at the start of the run; the run ends at a recorded keyframe
            enc.options = dict(REENCODE_OPTIONS)
            enc.open()
            self.encoder = enc
        frame = picture.reformat(format="yuv420p")
        frame.pts = pts_us
        frame.time_base = TIME_BASE
        if first:
            frame.pict_type = av.video.frame.PictureType.I
        return list(self.encoder.encode(frame))

    def finish(self) -> list[av.Packet]:
        if self.encoder is None:
            return []
        packets = list(self.encoder.encode(None))
        self.encoder = None
        return packets


def write_output(
    track: CameraTrack,
    plan: OutputPlan,
    out_dir: Path,
    progress: Progress | None = None,
) -> OutputResult:
    """Write `<cam>.mp4`, `<cam>.pts` and `<cam>.map.csv` into out_dir (atomically: temp names,
    renamed when complete, so a failed run never leaves a half file under the final name)."""
    final = OutputFolder(out_dir).files(track.name)
    tmp = {k: p.with_name(f".{p.name}.{os.getpid()}.tmp") for k, p in final.items()}
    try:
        result = _write_mp4(track, plan, tmp["mp4"], progress)
        reenc_flags = np.zeros(len(plan), dtype=bool)
        for run in result.reencoded_runs:
            reenc_flags[run["first_output_frame"] : run["first_output_frame"] + run["frames"]] = True
        with open(tmp["pts"], "w", encoding="ascii") as fh:
            fh.write(PTS_HEADER + "\n")
            fh.writelines(format_pts_line(int(v)) + "\n" for v in plan.pts_ns)
        write_map_csv(
            tmp["map"],
            np.column_stack(
                [
                    np.arange(len(plan)),
                    plan.rows,
                    plan.sources,
                    plan.capture_ns,
                    plan.pts_ns,
                    plan.filled.astype(np.int64),
                    reenc_flags.astype(np.int64),
                ]
            ),
        )
        for key in ("pts", "map", "mp4"):
            os.replace(tmp[key], final[key])
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    result.path = str(final["mp4"])
    result.bytes = final["mp4"].stat().st_size
    return result


def _write_mp4(track: CameraTrack, plan: OutputPlan, path: Path, progress: Progress | None) -> OutputResult:
    pts_us = np.rint(plan.pts_ns / 1000).astype(np.int64)
    if pts_us.size > 1 and np.any(np.diff(pts_us) <= 0):
        raise SessionError(f"camera {track.name}: output timestamps are not strictly increasing")
    durations = np.r_[np.diff(pts_us), np.median(np.diff(pts_us)) if pts_us.size > 1 else 1].astype(np.int64)
    result = OutputResult(track.name, str(path), len(plan), 0, 0, int(plan.filled.sum()))
    stop = int(plan.sources.max()) + 1
    packets = iter_packets(track, stop)
    gop: list[SourcePacket] = []
    current: SourcePacket | None = None
    reenc = _Reencoder()
    run: dict | None = None
    prev_source, prev_copied = -2, False
    report_every = max(1, len(plan) // 200)

    with (
        av.open(str(track.video), format="h264") as template_in,
        av.open(str(path), "w", format="mp4", options=MP4_OPTIONS) as out,
    ):
        stream = out.add_stream_from_template(template_in.streams.video[0])
        stream.time_base = TIME_BASE

        def mux(packet: av.Packet, pts: int, duration: int) -> None:
            packet.stream = stream
            packet.time_base = TIME_BASE
            packet.pts = packet.dts = pts
            packet.duration = duration
            out.mux(packet)

        def end_run() -> None:
            nonlocal run
            for packet in reenc.finish():
                mux(packet, int(packet.pts), int(durations[np.searchsorted(pts_us, packet.pts)]))
            run = None

        for k in range(len(plan)):
            src = int(plan.sources[k])
            while current is None or current.index < src:
                current = next(packets)
                if current.keyframe:
                    gop = [current]
                else:
                    gop.append(current)
            if not gop or gop[0].index > src or not gop[0].keyframe:
                raise SessionError(
                    f"camera {track.name}: frame {src} has no keyframe before it in the recording"
                )
            filled = bool(plan.filled[k])
            copyable = not filled and (current.keyframe or (prev_copied and prev_source == src - 1))
            if copyable:
                if run is not None:
                    end_run()
                packet = av.Packet(current.data)
                packet.is_keyframe = current.keyframe
                mux(packet, int(pts_us[k]), int(durations[k]))
                result.copied += 1
            else:
                reason = (
                    "filled instant (repeated frame)"
                    if filled
                    else "cut on a non-keyframe"
                    if k == 0
                    else "continues a re-encoded run"
                    if run is not None
                    else "recorded frame(s) skipped before it"
                )
                if run is None:
                    run = {"first_output_frame": k, "frames": 0, "first_source_frame": src, "reason": reason}
                    result.reencoded_runs.append(run)
                picture = reenc.picture(src, gop)
                for packet in reenc.encode(picture, int(pts_us[k]), first=run["frames"] == 0):
                    mux(packet, int(packet.pts), int(durations[np.searchsorted(pts_us, packet.pts)]))
                run["frames"] += 1
                result.reencoded += 1
            prev_source, prev_copied = src, copyable
            if progress is not None and (k % report_every == 0 or k == len(plan) - 1):
                progress((k + 1) / len(plan), track.name)
        if run is not None:
            end_run()
    return result
