"""`synced/<cam>.mp4` for every camera: exactly the matched frames, packets copied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .analyze import current_match
from .outputs import FILL_MODES, OutputPlan, plan_output, write_output
from .report import write_json_atomic
from .sources import CameraTrack, load_session, session_subdir

Progress = Callable[[float, str], None]


def write_camera_outputs(
    tracks: list[CameraTrack], plans: list[OutputPlan], out_dir: Path, progress: Progress | None
) -> list[dict]:
    """Write every camera's output, reporting overall progress weighted by frame count."""
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
    return results


def write_synced_outputs(
    session_dir: Path | str, *, fill: str = "gaps", progress: Progress | None = None
) -> dict:
    """Write synced/<cam>.mp4 (+ .pts, .map.csv) for the whole match table; record what was done
    (copied / re-encoded / filled per camera) in synced/report.json and return that section."""
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}, got {fill!r}")
    source = load_session(session_dir)
    table, report = current_match(source)
    out = session_subdir(source.session_dir, "synced")
    plans = [plan_output(table, track, 0, table.rows, fill) for track in source.tracks]
    results = write_camera_outputs(source.tracks, plans, out, progress)
    section = _outputs_section(fill, results)
    report["outputs"] = section
    report["flags"] = [f for f in report.get("flags", []) if not f.startswith("synced outputs")]
    report["flags"] += [f"synced outputs: {flag}" for flag in section["flags"]]
    write_json_atomic(out / "report.json", report)
    return section


def _outputs_section(fill: str, results: list[dict]) -> dict:
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
        "cameras": {r["camera"]: r for r in results},
        "flags": flags,
    }
