"""Whole-session steps of `syncrig process` (sync, calibrate, triangulate, export): each calls the
serial use case unchanged; a finished step leaves `process/<step>.done.json` with the signature of
the inputs it ran on, so a rerun skips it while those inputs are unchanged and its outputs exist."""

from __future__ import annotations

import json
import time
from pathlib import Path

from syncrig_agent.contract.layout import SessionLayout

SESSION_STEPS = ("sync", "calibrate", "triangulate", "export")


def _files_signature(paths: list[Path]) -> list:
    """(path, size, mtime) of every file under the given files/folders, sorted."""
    found = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.is_file():
                st = f.stat()
                found.append([str(f), st.st_size, st.st_mtime_ns])
    return found


def _inputs(session: Path, step: str) -> list[Path]:
    layout = SessionLayout(session)
    if step == "sync":
        return [layout.manifest, layout.raw.path]
    if step == "calibrate":
        from controller.session.synced import synced_cameras

        return [layout.board_file, *(layout.detections_file(c) for c in synced_cameras(session))]
    if step == "triangulate":
        return [layout.pose2d_dir, layout.calibration_toml]
    return [layout.pose3d_file]


def _outputs(session: Path, step: str, export_format: str) -> list[Path]:
    layout = SessionLayout(session)
    suffix = {"trc": ".trc", "csv": ".csv", "nwb": ".nwb"}[export_format]
    return {
        "sync": [layout.synced.match_csv],
        "calibrate": [layout.calibration_toml],
        "triangulate": [layout.pose3d_file],
        "export": [layout.export_file(suffix)],
    }[step]


def is_done(session: Path, step: str, export_format: str = "trc") -> bool:
    marker = SessionLayout(session).process_step_done(step)
    try:
        done = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return (
        done.get("inputs") == _files_signature(_inputs(session, step))
        and done.get("params", {}).get("export_format", export_format) == export_format
        and all(p.is_file() for p in _outputs(session, step, export_format))
    )


def run_session_step(session: Path, step: str, export_format: str = "trc") -> dict:
    """Run one whole-session step; returns {"outputs": [...], "frames": n, "seconds": s}."""
    started = time.monotonic()
    frames = 0
    if step == "sync":
        from controller.pipeline.sync import SyncRequest, sync_session

        result = sync_session(session, SyncRequest())
        frames = int(result.report.get("rows", 0) or 0)
    elif step == "calibrate":
        from controller.dataset.calibrate import calibrate_session

        report = calibrate_session(session)
        frames = int(report.get("rows", 0))
    elif step == "triangulate":
        from controller.dataset.pose.pose3d import triangulate_session

        frames = int(triangulate_session(session)["rows"])
    elif step == "export":
        from controller.dataset.export import export_session

        export_session(session, export_format)
    else:
        raise ValueError(f"not a whole-session step: {step!r} (one of {', '.join(SESSION_STEPS)})")
    seconds = time.monotonic() - started
    mark_done(session, step, export_format)
    return {
        "outputs": [str(p) for p in _outputs(session, step, export_format)],
        "frames": frames,
        "seconds": round(seconds, 3),
    }


def mark_done(session: Path, step: str, export_format: str = "trc") -> None:
    marker = SessionLayout(session).process_step_done(step)
    marker.parent.mkdir(parents=True, exist_ok=True)
    data = {"inputs": _files_signature(_inputs(session, step)), "params": {"export_format": export_format}}
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(marker)
