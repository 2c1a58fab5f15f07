"""Import a folder of SqueakShot-style recordings (`<cam>_<rec>.pts` + `<cam>_<rec>.h264`/`.mp4`)
as a session the pipeline can match, marked relative-time only.

SqueakShot's `.pts` holds integer µs since each camera's own first frame, so the times are not
comparable across cameras: a start offset between cameras is invisible. The imported session says
so (`absolute_time: false`), and every report made from it carries that flag instead of a verdict.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import av
import numpy as np

from controller.pipeline.footage_import import bring_in, probe
from controller.pipeline.frame_times import rate_from_intervals
from controller.pipeline.sources import SessionError
from controller.progress import Progress
from controller.session.create import create_session_dir, utc_now_iso
from syncrig_agent.contract.formats import SessionManifest, read_pts, write_manifest, write_pts
from syncrig_agent.contract.grid import period_ns_for_fps
from syncrig_agent.contract.ids import InvalidName, validate_camera_name, validate_subject_id
from syncrig_agent.contract.layout import SessionLayout

VIDEO_SUFFIXES = (".h264", ".mp4")


def find_recordings(folder: Path | str) -> dict[str, dict[str, dict[str, Path]]]:
    """{recording: {camera: {"pts": path, "video": path}}} for every `<cam>_<rec>.pts` with a video."""
    folder = Path(folder)
    found: dict[str, dict[str, dict[str, Path]]] = {}
    for pts in sorted(folder.glob("*_*.pts")):
        camera, _, rec = pts.stem.partition("_")
        try:
            validate_camera_name(camera)
        except InvalidName:
            continue
        videos = [pts.with_suffix(s) for s in VIDEO_SUFFIXES if pts.with_suffix(s).is_file()]
        if not videos or not rec:
            continue
        found.setdefault(rec, {})[camera] = {"pts": pts, "video": videos[0]}
    return found


def is_squeakshot_folder(folder: Path | str) -> bool:
    return not SessionLayout(folder).manifest.exists() and bool(find_recordings(folder))


def _count_and_size(video: Path) -> tuple[int, int, int]:
    fmt = "h264" if video.suffix == ".h264" else None
    with av.open(str(video), format=fmt) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        count = sum(1 for p in container.demux(stream) if p.size)
    return count, width, height


def import_squeakshot(
    folder: Path | str,
    dest_root: Path | str,
    *,
    recording: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Create a new session directory under dest_root from one SqueakShot recording in `folder`."""
    folder = Path(folder)
    recordings = find_recordings(folder)
    if not recordings:
        raise SessionError(f"{folder}: no SqueakShot-style <cam>_<rec>.pts with a .h264/.mp4 next to it")
    if recording is None:
        if len(recordings) > 1:
            raise SessionError(
                f"{folder} holds several recordings ({', '.join(sorted(recordings))}); "
                "choose one with --recording"
            )
        recording = next(iter(recordings))
    if recording not in recordings:
        raise SessionError(f"{folder}: no recording {recording!r} (found: {', '.join(sorted(recordings))})")
    cams = recordings[recording]
    times = {}
    for cam, files in cams.items():
        pts = read_pts(files["pts"])
        if pts.times_ns.size < 2:
            raise SessionError(f"{files['pts']}: fewer than two frames")
        times[cam] = pts.times_ns
    # The rate the µs timestamps show, made exact (16667 µs steps are 60 fps, not 59.999).
    rate = rate_from_intervals(np.concatenate([np.diff(t) for t in times.values()]), str(folder))
    period_ns = period_ns_for_fps(rate)
    try:
        subject = validate_subject_id(recording, "recording")
    except InvalidName:
        subject = None
    _sid, session_dir = create_session_dir(dest_root, subject=subject, project="squeakshot-import")
    try:
        entries = []
        for i, (cam, files) in enumerate(sorted(cams.items())):
            if progress is not None:
                progress(i / len(cams), f"importing {cam}")
            raw_video = SessionLayout(session_dir).raw.video(cam)
            if files["video"].suffix == ".h264":
                shutil.copyfile(files["video"], raw_video)
            else:
                # MP4 stores length-prefixed NAL units (or another codec): the pipeline reads Annex-B
                # H.264 like a Pi records, so it is converted by the one import path (FFmpeg's own
                # reason on failure).
                bring_in(files["video"], raw_video, probe(files["video"]), rate)
            count, width, height = _count_and_size(raw_video)
            if count != times[cam].size:
                raise SessionError(
                    f"{cam}: {files['video'].name} has {count} frames but {files['pts'].name} has "
                    f"{times[cam].size} timestamps"
                )
            write_pts(SessionLayout(session_dir).raw.pts(cam), times[cam])
            entries.append(
                {
                    "name": cam,
                    "host": "imported",
                    "role": "server" if i == 0 else "client",
                    "width": width,
                    "height": height,
                    "frames": int(count),
                    "source_files": [files["pts"].name, files["video"].name],
                }
            )
        manifest = SessionManifest(
            id=session_dir.name,
            subject=subject,
            project="squeakshot-import",
            created=utc_now_iso(),
            fps=float(rate),
            period_ns=period_ns,
            t0_ns=0,
            cameras=entries,
            software={
                "imported_from": "squeakshot",
                "source_folder": str(folder.resolve()),
                "recording": recording,
            },
            absolute_time=False,
            notes=[
                "imported SqueakShot recording: timestamps are µs since each camera's own first frame "
                "(relative time only; start offsets between cameras are unknown)",
                f"frame rate from the timestamps' median interval, made exact: {rate} fps ({period_ns} ns)",
            ],
        )
        write_manifest(session_dir, manifest)
    except BaseException:
        # Only what this import created goes: the new session directory.
        shutil.rmtree(session_dir, ignore_errors=True)
        raise
    if progress is not None:
        progress(1.0, "imported")
    return session_dir


__all__ = ["find_recordings", "import_squeakshot", "is_squeakshot_folder"]
