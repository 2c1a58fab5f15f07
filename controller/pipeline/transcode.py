"""H.265 archive of each camera: `archive/<cam>.h265.mp4` + `archive/<cam>.pts`.

Steps per camera: (1) PyAV remuxes `raw/<cam>.h264` into an MP4 whose packets carry the frame
times from `raw/<cam>.pts` (µs time base, no re-encode: variable frame rate survives, drops stay
gaps); (2) the FFmpeg binary re-encodes it to H.265 with `-fps_mode passthrough` and the
demuxer's time base, on the GPU when FFmpeg reports an encoder that actually opens (NVENC, VAAPI),
with libx265 otherwise; its `-progress` output drives the progress bar; (3) the result is probed
with PyAV: same number of frames, every timestamp identical to (1), or nothing is kept. The
exact (ns) `.pts` is copied next to it; the MP4's own timestamps are the same values in µs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av

from controller.media import ffmpeg_exe
from controller.progress import Progress
from syncrig_agent.contract.formats import read_pts
from syncrig_agent.contract.ids import validate_camera_name
from syncrig_agent.contract.layout import SessionLayout

log = logging.getLogger(__name__)

HW_ENCODERS = ("hevc_nvenc", "hevc_vaapi")
VAAPI_DEVICE = "/dev/dri/renderD128"
TIME_BASE = Fraction(1, 1_000_000)


class TranscodeError(RuntimeError):
    pass


def listed_hevc_encoders(ffmpeg: str) -> list[str]:
    out = subprocess.run(
        [ffmpeg, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30
    ).stdout
    names = {line.split()[1] for line in out.splitlines() if len(line.split()) > 1 and line.startswith(" V")}
    return [e for e in (*HW_ENCODERS, "libx265") if e in names]


def _encoder_args(encoder: str, quality: int, preset: str | None) -> tuple[list[str], list[str]]:
    """(arguments before -i, arguments after) for an encoder."""
    if encoder == "hevc_vaapi":
        return ["-vaapi_device", VAAPI_DEVICE], [
            "-vf", "format=nv12,hwupload", "-c:v", encoder, "-qp", str(quality),
        ]  # fmt: skip
    if encoder == "hevc_nvenc":
        return [], [
            "-c:v",
            encoder,
            "-preset",
            preset or "p5",
            "-rc",
            "vbr",
            "-cq",
            str(quality),
            "-b:v",
            "0",
        ]
    return [], [
        "-c:v", encoder, "-preset", preset or "fast", "-crf", str(quality), "-x265-params", "log-level=error",
    ]  # fmt: skip


def encoder_works(ffmpeg: str, encoder: str) -> bool:
    """Listed is not enough (NVENC is compiled in everywhere): try one tiny frame."""
    pre, post = _encoder_args(encoder, 30, None)
    cmd = [ffmpeg, "-hide_banner", "-loglevel", "error", *pre, "-f", "lavfi", "-i",
           "color=size=256x256:rate=1:duration=1", "-frames:v", "1", *post, "-f", "null", "-"]  # fmt: skip
    try:
        return subprocess.run(cmd, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def choose_encoder(ffmpeg: str, requested: str = "auto") -> str:
    listed = listed_hevc_encoders(ffmpeg)
    if requested != "auto":
        if requested not in listed:
            raise TranscodeError(
                f"FFmpeg at {ffmpeg} has no encoder {requested!r} (has: {', '.join(listed)})"
            )
        if not encoder_works(ffmpeg, requested):
            raise TranscodeError(f"encoder {requested} is listed but does not open on this machine")
        return requested
    for encoder in listed:
        if encoder_works(ffmpeg, encoder):
            return encoder
    raise TranscodeError(f"no working H.265 encoder in {ffmpeg} (listed: {', '.join(listed) or 'none'})")


def remux_with_times(h264: Path, pts_path: Path, out: Path) -> tuple[list[int], int]:
    """MP4 with the .pts times (µs) on the packets; returns (packet times written, shift in µs)."""
    times = read_pts(pts_path)
    us = [int(round(ns / 1000)) for ns in times.times_ns.tolist()]
    # MP4 starts the track at 0: a first frame at t > 0 would become an edit list whose start is
    # rounded to the movie's 1 ms timescale. So the archive counts from its first frame, and the
    # shift (the first frame's time since T0, µs) is recorded; archive/<cam>.pts keeps the exact values.
    shift = us[0] if us else 0
    written: list[int] = []
    with av.open(str(h264), format="h264") as src, av.open(str(out), "w", format="mp4") as dst:
        in_stream = src.streams.video[0]
        out_stream = dst.add_stream_from_template(in_stream)
        out_stream.time_base = TIME_BASE
        for packet in src.demux(in_stream):
            if packet.size == 0:
                continue
            if len(written) >= len(us):
                raise TranscodeError(f"{h264} has more frames than {pts_path} has lines")
            t = us[len(written)] - shift
            packet.stream = out_stream
            packet.pts = packet.dts = t
            packet.time_base = TIME_BASE
            dst.mux(packet)
            written.append(t)
    if len(written) != len(us):
        raise TranscodeError(f"{h264} has {len(written)} frames, {pts_path} {len(us)} lines")
    return written, shift


def probe_times(path: Path) -> list[int]:
    """Frame times (µs) in presentation order of the first video stream (H.265 has B-frames, so
    decode order differs)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        tb = stream.time_base
        return sorted(
            int(round(p.pts * tb / TIME_BASE))
            for p in container.demux(stream)
            if p.size and p.pts is not None
        )


def transcode_camera(
    session_dir: Path,
    camera: str,
    encoder: str,
    quality: int = 23,
    preset: str | None = None,
    ffmpeg: str | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> dict:
    ffmpeg = ffmpeg or ffmpeg_exe()
    layout = SessionLayout(session_dir)
    raw, archive = layout.raw, layout.archive
    archive.path.mkdir(exist_ok=True)
    final = archive.video(camera)
    final_pts = archive.pts(camera)
    if final.exists():
        raise TranscodeError(f"{final} exists; an archive is never overwritten")
    # Hidden work files beside the archive (never mistaken for one), removed whatever happens.
    timed = final.with_name(f".{camera}.timed.mp4")
    part = final.with_name(f".{final.name}.part")
    for leftover in (timed, part):
        leftover.unlink(missing_ok=True)  # ours, from an interrupted run
    try:
        times, shift = remux_with_times(raw.video(camera), raw.pts(camera), timed)
        pre, post = _encoder_args(encoder, quality, preset)
        cmd = [
            ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *pre, "-i", str(timed),
            "-map", "0:v", *post, "-fps_mode", "passthrough", "-enc_time_base:v", "demux",
            "-video_track_timescale", "1000000", "-progress", "pipe:1", "-nostats", "-f", "mp4", str(part),
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        reported = 0
        for line in proc.stdout:
            if line.startswith("frame="):
                try:
                    frame = int(line.split("=", 1)[1])
                except ValueError:
                    continue
                if on_frames is not None and frame > reported:
                    on_frames(frame - reported)
                reported = max(reported, frame)
        err = proc.stderr.read() if proc.stderr else ""
        if proc.wait() != 0:
            raise TranscodeError(f"{camera}: FFmpeg {encoder} failed: {err.strip()[-500:]}")
        if on_frames is not None and len(times) > reported:
            on_frames(len(times) - reported)
        got = probe_times(part)
        if got != times:
            pairs = enumerate(zip(got, times, strict=False))
            bad = next((i for i, (a, b) in pairs if a != b), min(len(got), len(times)))
            raise TranscodeError(
                f"{camera}: archive timestamps differ from the .pts (frames {len(got)} vs {len(times)}, "
                f"first difference at frame {bad})"
            )
        os.link(part, final)
        shutil.copyfile(raw.pts(camera), final_pts)
        return {
            "output": str(final.relative_to(session_dir)),
            "pts": str(final_pts.relative_to(session_dir)),
            "encoder": encoder,
            "frames": len(times),
            "bytes": final.stat().st_size,
            "raw_bytes": raw.video(camera).stat().st_size,
            "timestamps_verified": True,
            # MP4 time = .pts time (µs) − shift: the archive's clock starts at its first frame
            "pts_shift_us": shift,
        }
    finally:
        timed.unlink(missing_ok=True)
        part.unlink(missing_ok=True)


def transcode_session(
    session_dir: Path | str,
    cameras: list[str] | None = None,
    encoder: str = "auto",
    quality: int = 23,
    preset: str | None = None,
    progress: Progress | None = None,
    ffmpeg: str | None = None,
) -> dict:
    """Archive every (or the named) camera of a session as H.265; JSON-serialisable result."""
    session_dir = Path(session_dir)
    layout = SessionLayout(session_dir)
    if not layout.raw.path.is_dir():
        raise TranscodeError(f"{session_dir} has no raw/ directory")
    available = layout.raw.cameras()
    names = [validate_camera_name(c) for c in (cameras or available)]
    missing = [c for c in names if c not in available]
    if missing:
        raise TranscodeError(f"no raw/<cam>.h264 for {', '.join(missing)} (have {', '.join(available)})")
    ffmpeg = ffmpeg or ffmpeg_exe()
    chosen = choose_encoder(ffmpeg, encoder)
    total = sum(len(read_pts(layout.raw.pts(c))) for c in names)
    done = 0

    def on_frames(n: int, camera: str) -> None:
        nonlocal done
        done += n
        if progress is not None:
            progress(min(1.0, done / max(1, total)), f"{camera}: {chosen}")

    results = {}
    for c in names:
        results[c] = transcode_camera(
            session_dir, c, chosen, quality, preset, ffmpeg, lambda n, c=c: on_frames(n, c)
        )
    summary = {"encoder": chosen, "cameras": results}
    layout.archive.summary.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
