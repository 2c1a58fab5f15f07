"""The align use case: an external recording → `sync/<stem>.json` and `sync/<stem>.frames.csv`.

The JSON (**contract** for readers of sessions, docs/ARCHITECTURE.md): format, file, channel,
camera + role + line of the matched TTL output, slope, offset_ns (session_ns = slope ·
external_seconds_since_file_start · 1e9 + offset_ns, session_ns since T0), pulses_matched (rising
edges), edges_matched, residual_us {p50, p99, max} (|session − mapped| over matched edges),
sample_rate_hz, missing/spurious edge counts, how the first map was found (anchors) and the
polarity the channel recorded the TTL with ("high", or "low": inverted). The frames
table has every recorded frame of every camera: camera, frame, grid_index, session_ns, external_s,
sample_index (empty for event lists), in_file (1 if inside the recording)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.align.edges import AlignError
from controller.align.match import Alignment, SessionTrain, align_train
from controller.align.readers import read_edges
from syncrig_agent.contract.formats import read_frame_table, read_manifest
from syncrig_agent.contract.formats.atomic import write_json_atomic, write_text_atomic
from syncrig_agent.contract.formats.ttl import TtlTableError, read_ttl_out
from syncrig_agent.contract.layout import SessionLayout
from syncrig_agent.contract.ttl import TTL_ROLES

FRAMES_COLUMNS = ("camera", "frame", "grid_index", "session_ns", "external_s", "sample_index", "in_file")


def session_trains(session: Path) -> list[SessionTrain]:
    """Every output line in the session's ttl/*.out.csv, barcodes first (they identify moments)."""
    layout = SessionLayout(session)
    manifest = read_manifest(session)
    files = layout.ttl.out_files()
    if not files:
        raise AlignError(f"{layout.ttl.path}: no TTL out table (record with --ttl-out)")
    trains = []
    for camera, path in files.items():
        try:
            table = read_ttl_out(path)
        except TtlTableError as exc:
            raise AlignError(str(exc)) from None
        for role in TTL_ROLES:
            for line in np.unique(table["line"][table["role"] == role]):
                pick = (table["role"] == role) & (table["line"] == line)
                times = (table["wall_ns"][pick] - manifest.t0_ns).astype(np.float64)
                levels = table["level"][pick].astype(np.int8)
                width = None
                if role == "strobe":
                    rises = np.flatnonzero(levels[:-1] == 1)
                    width = int(np.median(times[rises + 1] - times[rises])) if rises.size else None
                trains.append(SessionTrain(camera, role, int(line), times, levels, manifest.period_ns, width))
    order = {"barcode": 0, "strobe": 1, "start": 2}
    return sorted(trains, key=lambda t: (order[t.role], t.camera))


def align_recording(
    session: Path, edges_source: Path, fmt: str | None, channel: int
) -> tuple[Alignment, dict]:
    ext = read_edges(edges_source, fmt, channel)
    reasons = []
    for train in session_trains(session):
        # Active high first; then inverted, as an inverting input stage (many audio interfaces) has it.
        for polarity, edges in (("high", ext), ("low", ext.inverted())):
            try:
                result = align_train(edges, train)
            except AlignError as exc:
                if polarity == "high":
                    reasons.append(f"{train.camera} {train.role} (line {train.line}): {exc}")
                continue
            summary = _summary(result, edges)
            summary["polarity"] = polarity
            return result, summary
    raise AlignError(f"{edges_source} does not match this session's TTL out:\n  " + "\n  ".join(reasons))


def _summary(result: Alignment, ext) -> dict:
    r = np.abs(result.residual_ns) / 1e3
    return {
        "format": ext.format,
        "file": ext.source,
        "channel": ext.channel,
        "camera": result.train.camera,
        "role": result.train.role,
        "line": result.train.line,
        "slope": result.clock.slope,
        "offset_ns": result.clock.offset_ns,
        "pulses_matched": int((ext.levels[result.external_index] == 1).sum()),
        "edges_matched": int(result.external_index.size),
        "residual_us": {
            "p50": float(np.percentile(r, 50)),
            "p99": float(np.percentile(r, 99)),
            "max": float(r.max()),
        },
        "sample_rate_hz": ext.rate_hz,
        "samples": ext.n_samples,
        "missing_edges": result.unmatched_session,
        "spurious_edges": result.unmatched_external,
        "anchors": result.anchors,
        "equation": "session_ns = slope * external_seconds_since_file_start * 1e9 + offset_ns (since T0)",
    }


def frames_rows(session: Path, summary: dict) -> list[str]:
    layout = SessionLayout(session)
    manifest = read_manifest(session)
    slope, offset = summary["slope"], summary["offset_ns"]
    rate, n = summary["sample_rate_hz"], summary["samples"]
    rows = [",".join(FRAMES_COLUMNS)]
    for camera in manifest.camera_names:
        if not layout.raw.frames(camera).exists():
            continue
        table = read_frame_table(layout.raw.frames(camera))
        session_ns = table["wall_ns"] - manifest.t0_ns
        ext_s = (session_ns - offset) / (slope * 1e9)
        for i in range(session_ns.size):
            sample = "" if rate is None else str(round(ext_s[i] * rate))
            inside = ext_s[i] >= 0 and (n is None or rate is None or ext_s[i] * rate < n)
            rows.append(
                f"{camera},{table['frame'][i]},{table['grid_index'][i]},{session_ns[i]},"
                f"{ext_s[i]:.9f},{sample},{int(inside)}"
            )
    return rows


def align_session(session: Path | str, source: Path | str, fmt: str | None = None, channel: int = 0) -> dict:
    """Align `source` to `session`; writes sync/<stem>.json and .frames.csv, returns the JSON object."""
    session, source = Path(session), Path(source)
    _, summary = align_recording(session, source, fmt, channel)
    sync = SessionLayout(session).sync
    named = source.parent if source.name == "structure.oebin" else source
    stem = named.name.split(".")[0] if named.is_file() else named.name
    sync.path.mkdir(exist_ok=True)
    write_text_atomic(sync.frames_csv(stem), "\n".join(frames_rows(session, summary)) + "\n")
    write_json_atomic(sync.map_json(stem), summary)
    return summary
