"""anipose's pose-3d CSV (what `anipose triangulate` writes and its tools read): per keypoint
`<kp>_x, <kp>_y, <kp>_z, <kp>_error, <kp>_ncams, <kp>_score`, then the frame transform
`M_00 … M_22`, `center_0 … center_2` (identity / zero: coordinates are already in the calibration's
world frame) and `fnum` (the match row). Missing values are empty, as pandas writes NaN. Groups
never seen are left out (export.seen_keypoints)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.dataset.export import seen_keypoints
from controller.dataset.pose.pose3d import load_pose3d


def export(session: Path, out: Path, progress=None) -> Path:
    pose = load_pose3d(session)
    keep, _left_out = seen_keypoints(pose)  # groups never seen are not written
    frames, k = pose.points.shape[0], len(keep)
    columns = [f"{pose.names[i]}_{s}" for i in keep for s in ("x", "y", "z", "error", "ncams", "score")]
    columns += (
        [f"M_{i}{j}" for i in range(3) for j in range(3)] + [f"center_{i}" for i in range(3)] + ["fnum"]
    )
    block = np.empty((frames, k, 6))
    block[..., :3] = pose.points[:, keep]
    block[..., 3] = pose.error_px[:, keep]
    block[..., 4] = np.where(pose.ncams[:, keep] > 0, pose.ncams[:, keep], np.nan)
    block[..., 5] = pose.score[:, keep]
    fixed = np.concatenate([np.eye(3).reshape(-1), np.zeros(3)])
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(",".join(columns) + "\n")
        for f in range(frames):
            vals = block[f].reshape(-1)
            cells = [
                "" if not np.isfinite(v) else (f"{v:.0f}" if i % 6 == 4 else f"{v:.6g}")
                for i, v in enumerate(vals)
            ]
            cells += [f"{v:g}" for v in fixed] + [str(int(pose.rows[f]))]
            fh.write(",".join(cells) + "\n")
            if progress is not None and f % 500 == 0:
                progress(f / max(frames, 1), "writing CSV")
    tmp.replace(out)
    return out
