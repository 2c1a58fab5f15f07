"""Calibration plots (PNG + SVG, matplotlib Agg): reprojection error per camera, where each
camera saw board corners (a heat map over its image: uncovered edges mean poorly known
distortion there), and the camera layout in 3D with the board and the world axes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.dataset.calibrate.solve import CalibrationResult
from controller.pipeline.plots import save_figure

PLOT_STEMS = ("reprojection", "layout")  # plus coverage_<camera>


def coverage_stem(camera: str) -> str:
    return f"coverage_{camera}"


def _save(fig, out_dir: Path, stem: str) -> dict[str, str]:  # noqa: ANN001
    from matplotlib import pyplot as plt

    paths = {fmt: path.name for fmt, path in save_figure(fig, out_dir, stem).items()}
    plt.close(fig)
    return paths


def _reprojection(result: CalibrationResult, out_dir: Path) -> dict[str, str]:
    from matplotlib import pyplot as plt

    names = [c.name for c in result.cameras]
    fig, (bars, hist) = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100)
    x = np.arange(len(names))
    for k, (key, label) in enumerate((("mean", "mean"), ("median", "median"), ("p95", "95th percentile"))):
        vals = [result.per_camera[n]["reprojection_px"][key] or 0 for n in names]
        bars.bar(x + (k - 1) * 0.27, vals, width=0.27, label=label)
    bars.set_xticks(x, names)
    bars.set_ylabel("reprojection error (px)")
    bars.set_title("Reprojection error per camera")
    bars.legend(fontsize=8)
    top = max(float(np.percentile(e, 99.5)) for e in result.errors.values() if len(e))
    edges = np.linspace(0, max(top, 0.1), 50)
    for n in names:
        if len(result.errors[n]):
            hist.hist(result.errors[n], bins=edges, histtype="step", label=n)
    hist.set_xlabel("reprojection error (px)")
    hist.set_ylabel("corners")
    hist.set_title(f"Distribution (all corners; mean {result.mean_error_px:.3f} px)")
    hist.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, out_dir, "reprojection")


def _coverage(result: CalibrationResult, out_dir: Path) -> dict[str, dict[str, str]]:
    from matplotlib import pyplot as plt

    written = {}
    for cam in result.cameras:
        w, h = cam.size
        pts = result.points[cam.name]
        fig, ax = plt.subplots(figsize=(6.4, 6.4 * h / w + 0.8), dpi=100)
        bins_x = 32
        bins_y = max(4, round(bins_x * h / w))
        counts, _, _ = np.histogram2d(pts[:, 0], pts[:, 1], bins=(bins_x, bins_y), range=((0, w), (0, h)))
        image = ax.imshow(
            counts.T,
            origin="upper",
            extent=(0, w, h, 0),
            cmap="viridis",
            interpolation="nearest",
            aspect="equal",
        )
        empty = (counts == 0).mean() * 100
        ax.set_title(
            f"{cam.name}: where board corners were seen\n"
            f"{len(pts)} corners; {empty:.0f}% of the image never covered"
        )
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
        fig.colorbar(image, ax=ax, label="corners per cell", fraction=0.04)
        written[cam.name] = _save(fig, out_dir, coverage_stem(cam.name))
    return written


def _frustum(cam, depth: float) -> np.ndarray:  # noqa: ANN001
    """World coordinates of the camera centre and its image corners at `depth` mm."""
    w, h = cam.size
    corners_px = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float64)
    rays = np.c_[cam.normalise(corners_px), np.ones(4)] * depth
    world = (rays - cam.translation) @ cam.rotation_matrix  # R^T (x - t)
    return np.vstack([cam.centre, world])


def _layout(result: CalibrationResult, out_dir: Path) -> dict[str, str]:
    from matplotlib import pyplot as plt

    fig = plt.figure(figsize=(7.5, 7), dpi=100)
    ax = fig.add_subplot(projection="3d")
    centres = np.array([c.centre for c in result.cameras])
    span = float(np.ptp(np.vstack([centres, [[0, 0, 0]]]), axis=0).max()) or 1000.0
    for cam in result.cameras:
        f = _frustum(cam, 0.15 * span)
        for k in range(1, 5):
            ax.plot(*np.c_[f[0], f[k]], color="tab:blue", lw=0.8)
        loop = f[[1, 2, 3, 4, 1]]
        ax.plot(loop[:, 0], loop[:, 1], loop[:, 2], color="tab:blue", lw=1.2)
        ax.text(*cam.centre, f" {cam.name}", fontsize=9)
    spec = result.spec
    outline = (
        np.array(
            [
                [0, 0, 0],
                [spec.squares_x, 0, 0],
                [spec.squares_x, spec.squares_y, 0],
                [0, spec.squares_y, 0],
                [0, 0, 0],
            ],
            dtype=np.float64,
        )
        * spec.square_mm
    )
    ax.plot(outline[:, 0], outline[:, 1], outline[:, 2], color="k", lw=1.5, label="board (reference row)")
    axis_len = max(spec.squares_x * spec.square_mm, 0.1 * span)
    for vec, color, label in zip(np.eye(3), ("r", "g", "b"), ("x", "y", "z"), strict=True):
        ax.quiver(0, 0, 0, *(vec * axis_len), color=color, lw=2)
        ax.text(*(vec * axis_len * 1.1), label, color=color)
    lo = np.vstack([centres, outline]).min(0)
    hi = np.vstack([centres, outline]).max(0)
    mid, half = (lo + hi) / 2, (hi - lo).max() / 2 * 1.1
    ax.set_xlim(mid[0] - half, mid[0] + half)
    ax.set_ylim(mid[1] - half, mid[1] + half)
    ax.set_zlim(mid[2] - half, mid[2] + half)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_zlabel("z (mm)")
    ax.set_title(f"Camera layout; world = board in row {result.reference_row}")
    ax.invert_zaxis()  # z points into the board: the cameras in front of it appear above
    return _save(fig, out_dir, "layout")


def write_plots(result: CalibrationResult, out_dir: Path) -> dict:
    """All calibration plots into out_dir; returns {plot: {format: file name}}."""
    import matplotlib

    matplotlib.use("Agg")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"reprojection": _reprojection(result, out_dir), "layout": _layout(result, out_dir)}
    for cam, files in _coverage(result, out_dir).items():
        written[coverage_stem(cam)] = files
    return written
