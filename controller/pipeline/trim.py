"""Frame-accurate trim: every camera cut to the same range of match rows, straight from the raw
recordings (packets copied; only a partial GOP at a cut on a non-keyframe is re-encoded).

Rows A..B (inclusive) of `synced/match.csv` become `trimmed/<A>-<B>/<cam>.mp4` with its own
`.pts` and `.map.csv`, plus `trim.json`. A and B must be rows where every camera has a frame, so
output frame 0 (and the last one) of every camera is the same instant; the error names the
nearest rows that are.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from controller.pipeline.analyze import current_match
from controller.pipeline.matching import EMPTY
from controller.pipeline.outputs import FILL_MODES, plan_output
from controller.pipeline.sources import SessionError, load_session, session_subdir
from controller.pipeline.synced import _outputs_section, write_camera_outputs
from controller.progress import Progress
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.layout import SessionLayout, TrimFolder


class TrimError(SessionError):
    pass


def nearest_complete_rows(complete: np.ndarray, row: int) -> tuple[int | None, int | None]:
    """The complete rows at or before / at or after `row`."""
    i = int(np.searchsorted(complete, row))
    before = int(complete[i - 1]) if i > 0 else None
    if i < complete.size and complete[i] == row:
        before = row
    after = int(complete[i]) if i < complete.size else None
    return before, after


def delete_trim(session_dir: Path | str, name: str) -> Path:
    """Delete one trim folder (`trimmed/<A>-<B>/`, named as `TrimFolder.name_for` names it) and
    everything in it; only trims, never the recording. Returns the folder deleted."""
    layout = SessionLayout(Path(session_dir))
    found = {trim.path.name: trim.path for trim in layout.trims()}
    if name not in found:
        known = ", ".join(sorted(found)) or "none"
        raise TrimError(f"no trim {name!r} in {layout.root.name} (trims: {known})")
    shutil.rmtree(found[name])
    return found[name]


def trim_session(
    session_dir: Path | str,
    start_frame: int,
    end_frame: int,
    *,
    fill: str = "repeat",
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Cut every camera to match rows start_frame..end_frame (inclusive); returns the trim's
    description (also written to trimmed/<A>-<B>/trim.json).

    The default fills a camera's dropped instant with its previous frame (flagged in trim.json and
    the .map.csv), so output frame k is the same instant in every camera — what frame-indexed
    tools (pose, labelling) rely on. `fill="gaps"` keeps only real frames; then frames align by
    timestamp, not by index, after the first drop."""
    if fill not in FILL_MODES:
        raise ValueError(f"fill must be one of {FILL_MODES}, got {fill!r}")
    source = load_session(session_dir)
    table, report = current_match(source)
    start, end = int(start_frame), int(end_frame)
    if not 0 <= start <= end < table.rows:
        raise TrimError(
            f"trim range {start}..{end} is outside the match table (rows 0..{table.rows - 1}, start <= end)"
        )
    complete = table.complete_rows()
    lost = {cam["name"] for cam in source.manifest.cameras if cam.get("lost")}
    for label, row in (("start", start), ("end", end)):
        # A camera lost before this row has no frame from here on: it cannot hold the others back.
        missing = [
            cam
            for cam in table.cameras
            if table.column(cam)[row] == EMPTY
            and not (cam in lost and np.all(table.column(cam)[row:] == EMPTY))
        ]
        if missing:
            before, after = ("none" if r is None else str(r) for r in nearest_complete_rows(complete, row))
            raise TrimError(
                f"{label} frame {row}: {', '.join(missing)} has no frame at that instant, so the cameras "
                f"would not {label} on the same instant; nearest rows with every camera: "
                f"{before} (before), {after} (after)"
            )
    layout = SessionLayout(source.session_dir)
    trims = session_subdir(layout.trimmed)
    out = layout.trim(start, end).path
    if out.exists():
        if not overwrite:
            raise TrimError(f"{out} already exists; pass overwrite=True (--force) to replace that trim")
        shutil.rmtree(out)
    tmp_out = trims / f".{out.name}.partial"
    if tmp_out.exists():
        shutil.rmtree(tmp_out)
    tmp_out.mkdir()
    try:
        plans = [plan_output(table, track, start, end + 1, fill) for track in source.tracks]
        results, offset = write_camera_outputs(source.tracks, plans, tmp_out, progress)
        section = _outputs_section(fill, results, offset)
        for r in section["cameras"].values():
            r["path"] = str(out / Path(r["path"]).name)
        description = {
            "session": source.manifest.id,
            "start_frame": start,
            "end_frame": end,
            "rows": end - start + 1,
            "first_instant_ns": int(table.instants_ns[start]),
            "last_instant_ns": int(table.instants_ns[end]),
            "matching": report["matching"],
            "relative_time_only": report.get("relative_time_only", False),
            **section,
        }
        write_json_atomic(TrimFolder(tmp_out).trim_json, description)
        tmp_out.rename(out)
    except BaseException:
        shutil.rmtree(tmp_out, ignore_errors=True)
        raise
    return description
