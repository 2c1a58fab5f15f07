"""TRC (OpenSim's marker-trajectory format): tab-separated, five header lines, then one line per
frame: `Frame#`, `Time`, X Y Z per marker; missing markers are empty fields (OpenSim reads them as
NaN). OpenSim is Y-up; our world frame (the calibration board's) is Z-up, so by default the
coordinates are turned to Y-up (X stays, Y = Z, Z = −Y: a rotation, handedness kept);
`up="z"` writes the world frame unchanged. Units mm (as triangulated) or m. Groups never seen
are left out (export.seen_keypoints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.dataset.export import seen_keypoints
from controller.dataset.pose.pose3d import load_pose3d

Z_UP_TO_Y_UP = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])


def _fmt(values: np.ndarray) -> list[str]:
    return ["" if not np.isfinite(v) else f"{v:.5f}" for v in values]


def export(session: Path, out: Path, progress=None, units: str = "mm", up: str = "y") -> Path:
    if units not in ("mm", "m"):
        raise ValueError(f"TRC units must be mm or m, got {units!r}")
    if up not in ("y", "z"):
        raise ValueError(f"TRC up axis must be y or z, got {up!r}")
    pose = load_pose3d(session)
    keep, _left_out = seen_keypoints(pose)  # groups never seen are not written
    names = [pose.names[i] for i in keep]
    pts = pose.points[:, keep].astype(np.float64)
    if up == "y":
        pts = pts @ Z_UP_TO_Y_UP.T
    if units == "m":
        pts = pts / 1000.0
    frames, markers = pts.shape[:2]
    rate = float(pose.meta.get("fps") or 0.0)
    times = (pose.time_ns - pose.time_ns[0]) / 1e9 if frames else np.zeros(0)
    header = [
        f"PathFileType\t4\t(X/Y/Z)\t{out.name}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:.6g}\t{rate:.6g}\t{frames}\t{markers}\t{units}\t{rate:.6g}\t1\t{frames}",
        "\t".join(["Frame#", "Time"] + [f"{n}\t\t" for n in names]).rstrip("\t"),
        "\t".join(["", ""] + [f"X{i}\tY{i}\tZ{i}" for i in range(1, markers + 1)]),
        "",
    ]
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\n".join(header) + "\n")
        for f in range(frames):
            fh.write("\t".join([str(f + 1), f"{times[f]:.6f}"] + _fmt(pts[f].reshape(-1))) + "\n")
            if progress is not None and f % 500 == 0:
                progress(f / max(frames, 1), "writing TRC")
    tmp.replace(out)
    return out


def read_trc_header(path: Path) -> dict:
    """The TRC header as a dict (DataRate ... OrigNumFrames, marker names); used by the tests and
    by anyone checking a file before handing it to OpenSim."""
    lines = Path(path).read_text(encoding="utf-8").split("\n")
    first = lines[0].split("\t")
    if first[0] != "PathFileType":
        raise ValueError(f"{path}: not a TRC file (first field {first[0]!r})")
    keys, values = lines[1].split("\t"), lines[2].split("\t")
    info: dict = dict(zip(keys, values, strict=False))
    names_row = lines[3].split("\t")
    info["markers"] = [n for n in names_row[2:] if n]
    info["coordinate_row"] = lines[4].split("\t")
    return info
