"""Footage from another rig into a new SyncRig session: one video per camera (camera = file stem),
any codec PyAV decodes, frame times from a sidecar or the container (pipeline/frame_times.py).

Each video becomes `raw/<cam>.h264` + `raw/<cam>.pts`, as a Pi would have recorded it, so the one
sync use case (pipeline/sync.py: match → report → synced outputs) runs on it unchanged. H.264 without
B-frames is copied packet for packet; anything else (another codec, or frames stored out of
presentation order, which the packet-copying outputs cannot cut) is re-encoded to H.264 once,
here, and the manifest, the printed summary and `synced/report.json` ("import") say so per camera.
FFmpeg's own reason for a failure is reported as a SessionError naming the file.
"""

from __future__ import annotations

import shutil
from collections import Counter
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from controller.pipeline.frame_times import (
    FrameTimes,
    exact_rate,
    find_sidecar,
    rate_from_times,
    read_sidecar,
)
from controller.pipeline.outputs import REENCODE_OPTIONS
from controller.pipeline.sources import SessionError
from controller.progress import Progress
from controller.session.create import create_session_dir, utc_now_iso
from syncrig_agent.contract.formats import SessionManifest, write_manifest, write_pts
from syncrig_agent.contract.grid import period_ns_for_fps
from syncrig_agent.contract.ids import InvalidName, validate_camera_name
from syncrig_agent.contract.layout import SessionLayout

VIDEO_SUFFIXES = (
    ".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mts", ".ts", ".ivf",
    ".h264", ".264", ".h265", ".hevc", ".mjpeg", ".mjpg",
)  # fmt: skip
# Elementary streams carry no timing: their times come from a sidecar, --fps or FFmpeg's guess.
RAW_STREAM_FORMATS = {".h264": "h264", ".264": "h264", ".h265": "hevc", ".hevc": "hevc", ".mjpeg": "mjpeg"}
RAW_STREAM_FORMATS[".mjpg"] = "mjpeg"
TIMELESS_CONTAINERS = set(RAW_STREAM_FORMATS.values())


@dataclass
class ImportedCamera:
    """One camera of the import: where it came from and what was done to it."""

    name: str
    source: Path
    codec: str
    width: int
    height: int
    frames: int
    video: str  # "copied" or "re-encoded"
    reason: str  # why re-encoded ("" when copied)
    times: str  # where the frame times came from
    rate: Fraction | None  # the container's rate (None: it states none)

    def as_dict(self) -> dict:
        return {
            "source": self.source.name,
            "codec": self.codec,
            "video": self.video,
            "reason": self.reason,
            "times": self.times,
            "container_rate": None if self.rate is None else str(self.rate),
        }


@dataclass
class FootageImport:
    """What `syncrig import` was asked for."""

    source: Path
    dest_root: Path
    fps: Fraction | None = None  # overrides the rate the files state
    subject: str | None = None
    project: str | None = None


@dataclass
class ImportResult:
    session: Path
    cameras: list[ImportedCamera]
    fps: Fraction
    absolute: bool
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        """The "import" section of synced/report.json."""
        return {
            "source_folder": str(self.cameras[0].source.parent.resolve()) if self.cameras else "",
            "fps": str(self.fps),
            "absolute_time": self.absolute,
            "cameras": {c.name: c.as_dict() for c in self.cameras},
            "reencoded": [c.name for c in self.cameras if c.video == "re-encoded"],
            "notes": list(self.notes),
        }


def find_videos(folder: Path) -> dict[str, Path]:
    """{camera: video} for every video in the folder; SessionError when none or a name repeats."""
    if not folder.is_dir():
        raise SessionError(f"{folder} is not a folder")
    videos: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in VIDEO_SUFFIXES:
            continue
        try:
            camera = validate_camera_name(path.stem)
        except InvalidName as exc:
            raise SessionError(f"{path}: the file name must be the camera's name ({exc})") from None
        if camera in videos:
            raise SessionError(
                f"{folder}: two videos for camera {camera}: {videos[camera].name}, {path.name}"
            )
        videos[camera] = path
    if not videos:
        raise SessionError(
            f"{folder}: no videos (expected one per camera, named after it: cam1.mp4, cam2.mkv, ...; "
            f"suffixes {', '.join(VIDEO_SUFFIXES)})"
        )
    return videos


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), format=RAW_STREAM_FORMATS.get(path.suffix.lower()))
    except av.error.FFmpegError as exc:
        raise SessionError(f"{path}: FFmpeg cannot read it: {_reason(exc)}") from None
    if not container.streams.video:
        container.close()
        raise SessionError(f"{path}: no video stream in it")
    return container


def _reason(exc: Exception) -> str:
    """FFmpeg's own words (PyAV puts them in strerror), without the file name repeated."""
    return getattr(exc, "strerror", None) or str(exc)


@dataclass
class _Probe:
    codec: str
    width: int
    height: int
    rate: Fraction | None
    times_ns: np.ndarray | None  # presentation times from the container (None: it has none)
    reordered: bool  # frames stored out of presentation order (B-frames)
    frames: int


def probe(path: Path) -> _Probe:
    """Codec, size, rate, presentation times and frame order from the packets (nothing decoded)."""
    with _open(path) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        pts: list[int | None] = []
        try:
            for packet in container.demux(stream):
                if packet.size:
                    pts.append(packet.pts)
        except av.error.FFmpegError as exc:
            raise SessionError(f"{path}: FFmpeg cannot read it: {_reason(exc)}") from None
        timed = container.format.name not in TIMELESS_CONTAINERS and None not in pts and stream.time_base
        rate = stream.average_rate or stream.guessed_rate
        times = None
        reordered = False
        if timed:
            ticks = np.asarray(pts, dtype=np.int64)
            reordered = bool(np.any(np.diff(ticks) < 0))
            tb = Fraction(stream.time_base)
            times = np.asarray(
                [round((int(t) - int(ticks.min())) * tb * 10**9) for t in np.sort(ticks)], np.int64
            )
        if not pts:
            raise SessionError(f"{path}: no frames in its video stream")
        return _Probe(
            getattr(ctx.codec, "canonical_name", ctx.name),  # "av1", not its decoder "libdav1d"
            ctx.width,
            ctx.height,
            Fraction(rate) if (timed and rate) else None,
            times,
            reordered or bool(getattr(ctx, "has_b_frames", False)),
            len(pts),
        )


def _copy_h264(source: Path, dest: Path) -> int:
    """Packets of an H.264 stream into Annex-B (FFmpeg's raw muxer converts length prefixes)."""
    count = 0
    with _open(source) as inp, av.open(str(dest), "w", format="h264") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
                count += 1
    return count


def _reencode_h264(source: Path, dest: Path, rate: Fraction, progress: Progress | None, total: int) -> int:
    """Decode every frame (presentation order) and encode H.264 with no B-frames, a keyframe a second."""
    count = 0
    with _open(source) as inp, av.open(str(dest), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=rate)
        stream.options = dict(REENCODE_OPTIONS)
        stream.codec_context.max_b_frames = 0
        stream.codec_context.gop_size = max(1, round(rate))
        for frame in inp.decode(video=0):
            if count == 0:
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            picture = frame.reformat(format="yuv420p")
            picture.pts = count
            picture.time_base = 1 / rate
            for packet in stream.encode(picture):
                out.mux(packet)
            count += 1
            if progress is not None and total:
                progress(min(1.0, count / total), dest.stem)
        for packet in stream.encode(None):
            out.mux(packet)
    return count


def bring_in(
    source: Path, dest: Path, info: _Probe, rate: Fraction, progress: Progress | None = None
) -> tuple[int, str, str]:
    """Write raw/<cam>.h264 and return (frames, "copied" | "re-encoded", reason)."""
    if info.codec == "h264" and not info.reordered:
        video, reason = "copied", ""
    elif info.codec == "h264":
        video, reason = (
            "re-encoded",
            "H.264 with B-frames (frames stored out of order cannot be cut by copying)",
        )
    else:
        video, reason = "re-encoded", f"{info.codec} (synced outputs copy H.264 packets only)"
    try:
        if video == "copied":
            frames = _copy_h264(source, dest)
        else:
            frames = _reencode_h264(source, dest, rate, progress, info.frames)
    except av.error.FFmpegError as exc:
        raise SessionError(f"{source}: FFmpeg failed while {video[:-1]}ing it: {_reason(exc)}") from None
    if frames != info.frames:
        raise SessionError(
            f"{source}: {info.frames} packets but {frames} frames decoded; the file may be damaged"
        )
    return frames, video, reason


def _frame_times(camera: str, video: Path, info: _Probe, fps: Fraction | None) -> FrameTimes:
    sidecar = find_sidecar(video)
    if sidecar is not None:
        times = read_sidecar(sidecar)
        if times.times_ns.size != info.frames:
            raise SessionError(
                f"{camera}: {sidecar.name} has {times.times_ns.size} frame times but {video.name} has "
                f"{info.frames} frames"
            )
        return times
    if info.times_ns is not None:
        return FrameTimes(info.times_ns, False, f"{video.name} (container timestamps)")
    if fps is None:
        raise SessionError(
            f"{video}: a {info.codec} elementary stream has no frame times and no sidecar "
            f"({video.stem}.pts or {video.stem}.csv) is next to it; give the rate with --fps"
        )
    period = Fraction(10**9) / fps
    return FrameTimes(
        np.asarray([round(i * period) for i in range(info.frames)], np.int64),
        False,
        f"constant {fps} fps (--fps; the stream has no times)",
    )


def _session_rate(
    request: FootageImport, probes: dict[str, _Probe], times: dict[str, FrameTimes]
) -> Fraction:
    if request.fps is not None:
        return request.fps
    rates = [p.rate for p in probes.values() if p.rate]
    if not rates:
        rates = [rate_from_times(t.times_ns, cam) for cam, t in times.items() if t.times_ns.size > 1]
    if not rates:
        raise SessionError(f"{request.source}: no camera states its frame rate; give it with --fps")
    # The container's rational rate is exact (60/1, 30000/1001); a rate FFmpeg averaged is snapped.
    return exact_rate(Counter(rates).most_common(1)[0][0])


def import_footage(request: FootageImport, progress: Progress | None = None) -> ImportResult:
    """Create a new session under request.dest_root from the videos in request.source (nothing in
    the source is changed). Raises SessionError naming the file and what is wrong."""
    videos = find_videos(request.source)
    probes = {cam: probe(path) for cam, path in videos.items()}
    times = {cam: _frame_times(cam, videos[cam], probes[cam], request.fps) for cam in videos}
    rate = _session_rate(request, probes, times)
    shared = all(t.shared_clock for t in times.values())
    origin = min(int(t.times_ns[0]) for t in times.values()) if shared else 0
    _sid, session_dir = create_session_dir(
        request.dest_root, subject=request.subject, project=request.project or "import"
    )
    layout = SessionLayout(session_dir)
    cameras: list[ImportedCamera] = []
    try:
        total = sum(p.frames for p in probes.values())
        done = 0
        for cam, path in videos.items():
            info = probes[cam]

            def cam_progress(fraction: float, label: str, base: int = done, n: int = info.frames) -> None:
                if progress is not None:
                    progress(min(1.0, (base + fraction * n) / max(1, total)), label)

            cam_progress(0.0, cam)
            frames, video, reason = bring_in(path, layout.raw.video(cam), info, rate, cam_progress)
            t = times[cam].times_ns
            write_pts(layout.raw.pts(cam), (t - origin) if shared else (t - t[0]))
            cameras.append(
                ImportedCamera(
                    cam,
                    path,
                    info.codec,
                    info.width,
                    info.height,
                    frames,
                    video,
                    reason,
                    times[cam].source,
                    info.rate,
                )  # fmt: skip
            )
            done += info.frames
        result = ImportResult(session_dir, cameras, rate, shared, _notes(cameras, shared, rate))
        write_manifest(session_dir, _manifest(session_dir, request, result, origin))
    except BaseException:
        # Only what this import created goes: the new session directory.
        shutil.rmtree(session_dir, ignore_errors=True)
        raise
    if progress is not None:
        progress(1.0, "imported")
    return result


def _notes(cameras: list[ImportedCamera], shared: bool, rate: Fraction) -> list[str]:
    notes = [
        f"{c.name}: {c.codec} {c.width}x{c.height}, {c.frames} frames, "
        + (f"re-encoded to H.264: {c.reason}" if c.video == "re-encoded" else "H.264 packets copied")
        + f"; times from {c.times}"
        for c in cameras
    ]
    notes.append(
        "times on one clock for every camera (wall-clock sidecars)"
        if shared
        else "RELATIVE TIME ONLY: each camera's times count from its own first frame, so start offsets "
        "between cameras are unknown; frames are matched by their times from each camera's start"
    )
    notes.append(f"frame rate {rate} fps ({float(rate):.6g})")
    return notes


def _manifest(
    session_dir: Path, request: FootageImport, result: ImportResult, origin: int
) -> SessionManifest:
    entries = [
        {
            "name": c.name,
            "host": "imported",
            "role": "server" if i == 0 else "client",
            "width": c.width,
            "height": c.height,
            "frames": c.frames,
            "source_files": [c.source.name],
            "import": c.as_dict(),
        }
        for i, c in enumerate(result.cameras)
    ]
    return SessionManifest(
        id=session_dir.name,
        subject=request.subject,
        project=request.project or "import",
        created=utc_now_iso(),
        fps=float(result.fps),
        period_ns=period_ns_for_fps(result.fps),
        t0_ns=origin,
        cameras=entries,
        software={
            "imported_from": "footage",
            "source_folder": str(request.source.resolve()),
            "fps": str(result.fps),
        },
        absolute_time=result.absolute,
        notes=list(result.notes),
    )


__all__ = [
    "FootageImport",
    "ImportResult",
    "ImportedCamera",
    "bring_in",
    "find_videos",
    "import_footage",
    "probe",
]
