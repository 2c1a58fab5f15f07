"""`syncrig verify`: the truth about synced and trimmed outputs, read from the pictures.

Simulated cameras draw their true capture time into every frame (`syncrig_agent.sim.timecode`). This
decodes each output, reads that time from every picture and reports, per output folder:
- the true cross-camera offset of every output row (max − min capture time over the cameras that
  show a recorded frame for it): p50 / p99 / max µs;
- every frame whose decoded time disagrees with its `.pts` by more than `pts_tolerance_ns`
  (filled frames are compared with the frame they repeat and counted separately);
- frames whose timecode cannot be read, and frame-count mismatches between the video and its `.pts`.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

from controller.pipeline.outputs import read_map_csv
from controller.pipeline.sources import SessionError, load_session
from controller.progress import Progress
from syncrig_agent.contract.formats import read_pts
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.layout import OutputFolder, SessionLayout, SyncedFolder, TrimFolder
from syncrig_agent.sim.timecode import read_timecode

MAX_LISTED = 200


def decode_timecodes(video: Path) -> list[int | None]:
    values: list[int | None] = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            values.append(read_timecode(frame.to_ndarray(format="gray")))
    return values


def _percentiles_us(values_ns: np.ndarray) -> dict:
    if values_ns.size == 0:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    us = values_ns / 1e3
    return {
        "n": int(us.size),
        "p50": round(float(np.percentile(us, 50)), 3),
        "p99": round(float(np.percentile(us, 99)), 3),
        "max": round(float(us.max()), 3),
    }


def output_time_origin(folder: Path, t0_ns: int) -> int:
    """Absolute time of output timestamp 0 in an output folder (T0 − the recorded offset)."""
    trim = TrimFolder(folder).trim_json
    description = trim if trim.is_file() else SyncedFolder(folder).report
    try:
        data = json.loads(description.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return t0_ns
    section = data.get("outputs", data)
    return t0_ns - int(section.get("timestamp_offset_ns", 0))


def verify_outputs(
    folder: Path,
    cameras: list[str],
    t0_ns: int,
    pts_tolerance_ns: int,
    progress: Progress | None = None,
) -> dict:
    origin = output_time_origin(folder, t0_ns)
    per_camera: dict[str, dict] = {}
    row_times: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for i, cam in enumerate(cameras):
        video, pts_path, map_path = OutputFolder(folder).files(cam).values()
        if not (video.is_file() and pts_path.is_file() and map_path.is_file()):
            per_camera[cam] = {"error": f"missing {cam}.mp4 / .pts / .map.csv in {folder}"}
            continue
        if progress is not None:
            progress(i / len(cameras), f"decoding {cam}")
        codes = decode_timecodes(video)
        pts = read_pts(pts_path).times_ns
        mapping = read_map_csv(map_path)
        entry: dict = {"frames": len(codes), "pts_lines": int(pts.size), "map_rows": int(mapping["row"].size)}
        if not (len(codes) == pts.size == mapping["row"].size):
            entry["error"] = "frame count of the video, its .pts and its .map.csv differ"
            per_camera[cam] = entry
            continue
        readable = np.array([c is not None for c in codes])
        decoded = np.array([c if c is not None else 0 for c in codes], dtype=np.int64)
        filled = mapping["filled"].astype(bool)
        claimed = origin + pts  # what the output's timestamps say each picture shows
        # A filled frame repeats an earlier picture: compare it with that picture's own time.
        claimed[filled] = t0_ns + mapping["capture_ns"][filled]
        diff = decoded - claimed
        check = readable
        bad = np.flatnonzero(check & (np.abs(diff) > pts_tolerance_ns))
        entry.update(
            {
                "unreadable_timecodes": int((~readable).sum()),
                "filled": int(filled.sum()),
                "pts_minus_picture_us": _percentiles_us(np.abs(diff[check])),
                "disagreeing_frames": int(bad.size),
                "disagreeing": [
                    {
                        "output_frame": int(k),
                        "row": int(mapping["row"][k]),
                        "picture_minus_pts_us": float(diff[k] / 1e3),
                    }
                    for k in bad[:MAX_LISTED]
                ],
                "first_frame_true_ns": int(decoded[0]) if len(codes) and readable[0] else None,
            }
        )
        per_camera[cam] = entry
        real = readable & ~filled
        row_times[cam] = (mapping["row"][real], decoded[real])
    spread_rows, spreads = _row_spreads(row_times)
    worst = np.argsort(spreads)[::-1][:20]
    first_rows = {cam: int(rt[0][0]) for cam, rt in row_times.items() if rt[0].size}
    firsts = [per_camera[c].get("first_frame_true_ns") for c in cameras]
    return {
        "folder": str(folder),
        "cameras": per_camera,
        "rows_compared": int(spreads.size),
        "cross_camera_offset_us": _percentiles_us(spreads),
        "worst_rows": [{"row": int(spread_rows[i]), "offset_us": float(spreads[i] / 1e3)} for i in worst],
        "first_frame_offset_us": round((max(firsts) - min(firsts)) / 1e3, 3)
        if firsts and all(f is not None for f in firsts)
        else None,
        "first_rows": first_rows,
        "ok": bool(
            all(
                "error" not in e and e["disagreeing_frames"] == 0 and e["unreadable_timecodes"] == 0
                for e in per_camera.values()
            )
        ),
    }


def _row_spreads(row_times: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(rows, max − min decoded capture time per row), over rows shown by at least two cameras."""
    none = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    if len(row_times) < 2:
        return none
    rows = np.concatenate([r for r, _ in row_times.values()])
    times = np.concatenate([t for _, t in row_times.values()])
    if rows.size == 0:
        return none
    order = np.argsort(rows, kind="stable")
    rows, times = rows[order], times[order]
    starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
    counts = np.diff(np.r_[starts, rows.size])
    spread = np.maximum.reduceat(times, starts) - np.minimum.reduceat(times, starts)
    shown = counts >= 2
    return rows[starts][shown], spread[shown]


def verify_session(
    session_dir: Path | str, *, pts_tolerance_ns: int = 1_000_000, progress: Progress | None = None
) -> dict:
    """Verify synced/ and every trimmed/<A>-<B>/ output of the session; writes verify.json into
    each folder and returns {"outputs": {folder name: result}, "ok": bool}."""
    source = load_session(session_dir)
    if not source.absolute:
        raise SessionError("verify needs absolute timestamps (a SyncRig session), not an imported one")
    layout = SessionLayout(source.session_dir)
    folders: list[OutputFolder] = []
    if layout.synced.video(source.cameras[0]).is_file():
        folders.append(layout.synced)
    folders += layout.trims()
    if not folders:
        raise SessionError(f"{source.session_dir} has no synced or trimmed outputs to verify; run sync first")
    results = {}
    for i, folder in enumerate(folders):

        def sub(fraction: float, label: str, i: int = i, name: str = folder.path.name) -> None:
            if progress is not None:
                progress((i + fraction) / len(folders), f"{name}: {label}")

        result = verify_outputs(folder.path, source.cameras, source.manifest.t0_ns, pts_tolerance_ns, sub)
        result["pts_tolerance_ns"] = pts_tolerance_ns
        write_json_atomic(folder.verify_report, result)
        results[layout.output_label(folder)] = result
    if progress is not None:
        progress(1.0, "done")
    return {"session": source.manifest.id, "outputs": results, "ok": all(r["ok"] for r in results.values())}
