"""Dataset exports from `pose3d/points.npz`, one module per format, each `export(session, out)`
writing one file into `exports/` and returning its path: TRC (OpenSim), anipose-style pose-3d
CSV, NWB with ndx-pose (pynwb; the `nwb` extra)."""

from __future__ import annotations

from pathlib import Path

from controller.progress import Progress
from syncrig_agent.contract.layout import SessionLayout

FORMATS = ("trc", "csv", "nwb")
SUFFIX = {"trc": ".trc", "csv": ".csv", "nwb": ".nwb"}


class ExportError(ValueError):
    pass


def default_path(session: Path, fmt: str) -> Path:
    return SessionLayout(session).export_file(SUFFIX[fmt])


def export_session(
    session: Path,
    fmt: str,
    out: Path | None = None,
    progress: Progress | None = None,
    **options,
) -> Path:
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (one of {', '.join(FORMATS)})")
    if fmt == "trc":
        from controller.dataset.export.trc import export
    elif fmt == "csv":
        from controller.dataset.export.anipose_csv import export
    else:
        from controller.dataset.export.nwb import export
    path = Path(out) if out else default_path(session, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    return export(Path(session), path, progress=progress, **options)
