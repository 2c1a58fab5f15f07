"""Dataset exports from `pose3d/points.npz`, one module per format, each `export(session, out)`
writing one file into `exports/` and returning its path: TRC (OpenSim), anipose-style pose-3d
CSV, NWB with ndx-pose (pynwb; the `nwb` extra), C3D (ezc3d; the `c3d` extra). Keypoint groups
that no camera ever saw in 3D are left out of every format (`seen_keypoints`; the CLI says so)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.progress import Progress
from syncrig_agent.contract.layout import SessionLayout

FORMATS = ("trc", "csv", "nwb", "c3d")
SUFFIX = {"trc": ".trc", "csv": ".csv", "nwb": ".nwb", "c3d": ".c3d"}


class ExportError(ValueError):
    pass


def seen_keypoints(pose) -> tuple[list[int], list[str]]:
    """The keypoints to export (indices, in order) and the groups left out: a group none of whose
    keypoints has a 3D point in any row (e.g. the face when nobody faced a camera)."""
    from controller.dataset.pose.keypoints import group_of

    valid = np.isfinite(pose.points).all(axis=-1)
    keep, left_out = [], []
    for group, idx in group_of(pose.names).items():
        if valid[:, idx].any():
            keep += idx
        else:
            left_out.append(group)
    return sorted(keep), left_out


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
    elif fmt == "nwb":
        from controller.dataset.export.nwb import export
    else:
        from controller.dataset.export.c3d import export
    path = Path(out) if out else default_path(session, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    return export(Path(session), path, progress=progress, **options)
