"""`synced/<cam>.mp4` for every camera: exactly the matched frames, packets copied."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.pipeline.analyze import current_match
from controller.pipeline.matching import EMPTY
from controller.pipeline.outputs import FILL_MODES, OutputPlan, plan_output, write_output
from controller.pipeline.sources import CameraTrack, load_session, session_subdir
from controller.progress import Progress
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.layout import SessionLayout


def timestamp_offset_ns(plans: list[OutputPlan]) -> int:
    """Shift (whole ms, shared by every camera) that keeps output timestamps non-negative.

    A frame captured a few µs before T0 (trigger jitter at slot 0) would get a negative timestamp,
    and an MP4 never presents a frame with a negative one (the edit list treats it as pre-roll).
    Normally 0; when not, it is recorded next to the outputs so their timestamps still map to T0."""
    lowest = min(int(p.pts_ns.min()) for p in plans if len(p))
    return 0 if lowest >= 0 else -(lowest // 1_000_000) * 1_000_000


def write_camera_outputs(
    tracks: list[CameraTrack], plans: list[OutputPlan], out_dir: Path, progress: Progress | None
) -> tuple[list[dict], int]:
    """Write every camera's output, reporting overall progress weighted by frame count; returns
    the results and the timestamp offset applied (see timestamp_offset_ns)."""
    offset = timestamp_offset_ns(plans)
    for plan in plans:
        plan.pts_ns = plan.pts_ns + offset
    total = max(1, sum(len(p) for p in plans))
    done = 0
    results = []
    for track, plan in zip(tracks, plans, strict=True):
        base = done

        def cam_progress(fraction: float, label: str, base: int = base, n: int = len(plan)) -> None:
            if progress is not None:
                progress(min(1.0, (base + fraction * n) / total), label)

        results.append(write_output(track, plan, out_dir, cam_progress).as_dict())
        done += len(plan)
    return results, offset


def write_synced_outputs(
    session_dir: Path | str, *, fill: str = "gaps", progress: Progress | None = None
) -> dict:
    """Write synced/<cam>.mp4 (+ .pts, .map.csv) for the whole match table; record what was done
    (copied / re-encoded / filled per camera) in synced/report.json and return that section."""
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}, got {fill!r}")
    source = load_session(session_dir)
    table, report = current_match(source)
    synced = SessionLayout(source.session_dir).synced
    out = session_subdir(synced.path)
    # A camera without a single matched frame (it failed at the start) gets no output, and a flag.
    tracks = [t for t in source.tracks if np.any(table.column(t.name) != EMPTY)]
    plans = [plan_output(table, track, 0, table.rows, fill) for track in tracks]
    results, offset = write_camera_outputs(tracks, plans, out, progress)
    section = _outputs_section(fill, results, offset)
    for track in source.tracks:
        if track not in tracks:
            section["flags"].append(f"{track.name}: no matched frames; no output written")
    report["outputs"] = section
    report["flags"] = [f for f in report.get("flags", []) if not f.startswith("synced outputs")]
    report["flags"] += [f"synced outputs: {flag}" for flag in section["flags"]]
    write_json_atomic(synced.report, report)
    return section


def _outputs_section(fill: str, results: list[dict], offset_ns: int) -> dict:
    flags = []
    for r in results:
        if r["filled"]:
            flags.append(
                f"{r['camera']}: {r['filled']} repeated frame(s) fill instants it has no frame for "
                "(constant frame rate requested)"
            )
        if r["reencoded"]:
            flags.append(
                f"{r['camera']}: {r['reencoded']} frame(s) re-encoded in {len(r['reencoded_runs'])} partial "
                "GOP(s) (a cut or a skipped frame fell on a non-keyframe); all others are copied packets"
            )
    return {
        "fill": fill,
        "timestamps": "each frame's own capture time (gaps at instants without a frame)"
        if fill == "gaps"
        else "the row instants (constant frame rate); filled frames repeat the previous frame",
        # Output timestamps (.pts and MP4) are ns since T0 minus this: 0 unless a frame came
        # before T0 (see timestamp_offset_ns).
        "timestamp_offset_ns": offset_ns,
        "cameras": {r["camera"]: r for r in results},
        "flags": flags,
    }
