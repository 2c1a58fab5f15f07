"""`synced/report.json`: the sync quality of a session, with the thresholds its verdict used.

The report cannot claim more than the data shows: residuals are timestamps against the row
instants (a camera whose clock is wrong stamps wrong times and looks perfect here; `syncrig verify`
reads the pictures instead), and recordings whose timestamps are not absolute (SqueakShot imports:
each camera's times start at its own first frame) get no quality verdict at all, because a start
offset between cameras is invisible in them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from controller.pipeline.matching import EMPTY, MatchTable
from syncrig_agent.contract.layout import SessionLayout

REPORT_VERSION = 1
MAX_LISTED = 1000  # positions listed per camera (counts are always complete)

# Verdict thresholds (also written into every report, so a reader knows what a word means).
THRESHOLDS = {
    "excellent": {"max_abs_residual_us": 1000.0, "max_drop_fraction": 0.001, "max_unmatched_frames": 0},
    "good": {"p99_abs_residual_us": 2000.0, "max_drop_fraction": 0.01, "max_unmatched_fraction": 0.001},
    # anything else is "poor"; recordings without absolute time are "relative-time-only"
}


def _stats_us(values_ns: np.ndarray) -> dict:
    if values_ns.size == 0:
        return {"n": 0, "mean": None, "p50": None, "p99": None, "max": None, "min": None, "max_abs": None}
    us = values_ns / 1e3
    abs_us = np.abs(us)
    return {
        "n": int(us.size),
        "mean": round(float(us.mean()), 3),
        "p50": round(float(np.percentile(us, 50)), 3),
        "p99": round(float(np.percentile(us, 99)), 3),
        "max": round(float(us.max()), 3),
        "min": round(float(us.min()), 3),
        "max_abs": round(float(abs_us.max()), 3),
        "p99_abs": round(float(np.percentile(abs_us, 99)), 3),
    }


def _runs(flags: np.ndarray) -> list[list[int]]:
    """[[first row, length], ...] of True runs."""
    if not flags.any():
        return []
    edges = np.diff(np.r_[0, flags.astype(np.int8), 0])
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    return [[int(s), int(e - s)] for s, e in zip(starts, ends, strict=True)]


def build_report(
    table: MatchTable,
    times_ns: dict[str, np.ndarray],
    *,
    session_id: str,
    fps: float,
    absolute: bool,
    source_format: str = "syncrig",
) -> dict:
    residuals = table.residuals_ns(times_ns)
    rows = table.rows
    cameras = {}
    worst = {"max_abs": 0.0, "p99_abs": 0.0, "drop_fraction": 0.0, "unmatched": 0, "unmatched_fraction": 0.0}
    for c, name in enumerate(table.cameras):
        col = table.cells[:, c]
        empty = col == EMPTY
        res = residuals[~empty, c]
        stats = _stats_us(res)
        drop_runs = _runs(empty)
        unmatched = table.unmatched.get(name, np.empty(0, np.int64))
        frames = int(times_ns[name].size)
        cameras[name] = {
            "frames": frames,
            "matched": int((~empty).sum()),
            "dropped": int(empty.sum()),  # instants (rows) this camera has no frame for
            "drop_events": len(drop_runs),
            "drop_runs": drop_runs[:MAX_LISTED],  # [first row, length]
            "unmatched_frames": int(unmatched.size),  # recorded frames in no row (outside tolerance)
            "unmatched_positions": unmatched[:MAX_LISTED].tolist(),
            "residual_us": stats,
        }
        if stats["n"]:
            worst["max_abs"] = max(worst["max_abs"], stats["max_abs"])
            worst["p99_abs"] = max(worst["p99_abs"], stats["p99_abs"])
        worst["drop_fraction"] = max(worst["drop_fraction"], float(empty.mean()) if rows else 1.0)
        worst["unmatched"] = max(worst["unmatched"], int(unmatched.size))
        worst["unmatched_fraction"] = max(worst["unmatched_fraction"], unmatched.size / max(frames, 1))
    verdict, reasons = _verdict(worst, absolute, rows)
    complete = int(np.all(table.cells != EMPTY, axis=1).sum()) if rows else 0
    notes = [
        "residuals are frame timestamps minus the row instant: they show how well the timestamps agree, "
        "not the cameras' true exposure times (a camera with a wrong clock stamps wrong times); "
        "`syncrig verify` reads the capture time drawn into simulated frames for the truth",
    ]
    if table.mode == "time":
        notes.append(
            f"free-running match: row instants are {table.reference}'s frame times, gaps filled at its "
            "measured period"
        )
    if not absolute:
        notes.append(
            "RELATIVE TIME ONLY: each camera's timestamps start at its own first frame (imported "
            f"{'SqueakShot-style .pts' if source_format == 'squeakshot' else 'footage'}), so a start "
            "offset between cameras cannot be seen or corrected"
        )
    return {
        "report_version": REPORT_VERSION,
        "session": session_id,
        "source_format": source_format,
        "absolute_time": bool(absolute),
        "relative_time_only": not absolute,
        "fps": fps,
        "period_ns": table.period_ns,
        "matching": {
            "mode": table.mode,
            "tolerance_ns": table.tolerance_ns,
            "reference_camera": table.reference,
            "first_grid_index": int(table.grid_indices[0])
            if table.grid_indices is not None and rows
            else None,
            "rows": rows,
            "complete_rows": complete,
            "first_instant_ns": int(table.instants_ns[0]) if rows else None,
            "last_instant_ns": int(table.instants_ns[-1]) if rows else None,
        },
        "cameras": cameras,
        "verdict": verdict,
        "verdict_reasons": reasons,
        "thresholds": THRESHOLDS,
        "notes": notes,
        "flags": [],
    }


def _verdict(worst: dict, absolute: bool, rows: int) -> tuple[str, list[str]]:
    if rows == 0:
        return "poor", ["no matched instants"]
    figures = (
        f"worst camera: max |residual| {worst['max_abs']:.0f} µs, p99 {worst['p99_abs']:.0f} µs, "
        f"{100 * worst['drop_fraction']:.2f} % instants without a frame, "
        f"{worst['unmatched']} unmatched frames"
    )
    if not absolute:
        return "relative-time-only", [
            "timestamps are relative to each camera's own first frame: cross-camera sync cannot be judged",
            figures,
        ]
    ex, good = THRESHOLDS["excellent"], THRESHOLDS["good"]
    if (
        worst["max_abs"] <= ex["max_abs_residual_us"]
        and worst["drop_fraction"] <= ex["max_drop_fraction"]
        and worst["unmatched"] <= ex["max_unmatched_frames"]
    ):
        return "excellent", [figures]
    if (
        worst["p99_abs"] <= good["p99_abs_residual_us"]
        and worst["drop_fraction"] <= good["max_drop_fraction"]
        and worst["unmatched_fraction"] <= good["max_unmatched_fraction"]
    ):
        return "good", [figures]
    return "poor", [figures]


def read_report(session_dir: Path) -> dict:
    return json.loads(SessionLayout(session_dir).synced.report.read_text(encoding="utf-8"))
