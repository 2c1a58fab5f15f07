"""Match a session and write `synced/match.csv`, `synced/report.json` and the plots."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from controller.pipeline.matching import (
    MatchTable,
    match_by_grid,
    match_by_time,
    read_match_csv,
    write_match_csv,
)
from controller.pipeline.plots import write_plots
from controller.pipeline.report import build_report, read_report
from controller.pipeline.sources import SessionError, SessionSource, load_session, session_subdir
from controller.progress import Progress
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.layout import SessionLayout

MATCH_MODES = ("auto", "grid", "time")


def match_session(
    source: SessionSource,
    *,
    tolerance_ns: int | None = None,
    mode: str = "auto",
    reference: str | None = None,
) -> MatchTable:
    """Grid match for phase-locked SyncRig sessions (every camera has grid indices and absolute
    time), nearest-in-time match otherwise (or when asked)."""
    if mode not in MATCH_MODES:
        raise ValueError(f"mode must be one of {MATCH_MODES}, got {mode!r}")
    has_grid = all(t.grid_index is not None for t in source.tracks)
    if mode == "grid" and not (has_grid and source.absolute):
        raise SessionError(
            "grid matching needs frames.csv grid indices and absolute timestamps for every camera"
        )
    use_grid = mode == "grid" or (mode == "auto" and has_grid and source.absolute)
    times = [t.times_ns for t in source.tracks]
    if use_grid:
        grids = [t.grid_index for t in source.tracks]
        present = [g for g in grids if g.size]
        lo = min([0, *[int(g.min()) for g in present]])
        hi = max([source.expected_rows() or 0, *[int(g.max()) + 1 for g in present]])
        return match_by_grid(source.cameras, grids, times, source.period_ns, tolerance_ns, (lo, hi))
    return match_by_time(source.cameras, times, source.period_ns, tolerance_ns, reference)


def analyze_session(
    session_dir: Path | str,
    *,
    tolerance_ns: int | None = None,
    mode: str = "auto",
    reference: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Match every camera, write synced/match.csv, synced/report.json and synced/plots/; return
    the report (a JSON-serialisable dict)."""
    step = progress or (lambda _f, _l: None)
    step(0.0, "reading")
    source = load_session(session_dir)
    step(0.2, "matching")
    table = match_session(source, tolerance_ns=tolerance_ns, mode=mode, reference=reference)
    synced = SessionLayout(source.session_dir).synced
    session_subdir(synced.path)
    write_match_csv(synced.match_csv, table)
    step(0.4, "report")
    report = build_report(
        table,
        source.times(),
        session_id=source.manifest.id,
        fps=source.manifest.fps,
        absolute=source.absolute,
        source_format=source.manifest.software.get("imported_from", "syncrig"),
    )
    _note_lost_cameras(report, source.manifest.cameras)
    # What happened during the recording (a receiver restarted, a controller re-attached, ...).
    report["notes"].extend(f"recording: {note}" for note in source.manifest.notes)
    report["generated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report["matching"]["requested_mode"] = mode
    step(0.6, "plots")
    report["plots"] = write_plots(table, source.times(), synced.plots, source.manifest.id)
    write_json_atomic(synced.report, report)
    step(1.0, "done")
    return report


def _note_lost_cameras(report: dict, manifest_cameras: list[dict]) -> None:
    """Which camera was lost, when and why (the manifest's `lost`), in the report and its reasons:
    its rows are empty after the loss, the other cameras are unaffected."""
    for cam in manifest_cameras:
        lost = cam.get("lost")
        if not lost or cam.get("name") not in report["cameras"]:
            continue
        report["cameras"][cam["name"]]["lost"] = lost
        report["verdict_reasons"].insert(
            0,
            f"{cam['name']} was lost ({lost['reason']}): its last frame {lost['at_s']:.2f} s into the "
            f"recording, its rows empty from grid slot {_next_slot(lost.get('last_grid_index'))} on",
        )


def _next_slot(last_grid_index: int | None) -> int:
    return 0 if last_grid_index is None else int(last_grid_index) + 1


def current_match(source: SessionSource) -> tuple[MatchTable, dict]:
    """The session's match table as analyze wrote it (re-derived with the report's parameters and
    checked against synced/match.csv), and the report. Analyzes first if never analyzed."""
    synced = SessionLayout(source.session_dir).synced
    match_path = synced.match_csv
    if not synced.report.is_file() or not match_path.is_file():
        analyze_session(source.session_dir)
    report = read_report(source.session_dir)
    params = report["matching"]
    table = match_session(
        source,
        tolerance_ns=params["tolerance_ns"],
        mode=params["mode"],
        reference=params.get("reference_camera"),
    )
    cameras, cells = read_match_csv(match_path)
    if cameras != table.cameras or cells.shape != table.cells.shape or not np.array_equal(cells, table.cells):
        raise SessionError(
            f"{match_path} does not match the recording any more; run `syncrig sync` (analyze) again"
        )
    return table, report
