"""Sync-quality plots (PNG for quick viewing, SVG for the UI): residual offset over time per
camera, and where each camera has no frame. Long recordings are drawn as a min/max envelope per
time bin, so a single outlier is never averaged away and the SVG stays small."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.pipeline.matching import EMPTY, MatchTable

ENVELOPE_BINS = 2000


def _envelope(x: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bin centre, min, max) of y over equal-width bins of x (bins with no samples dropped)."""
    edges = np.linspace(x.min(), x.max() + 1e-9, bins + 1)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)
    lo = np.full(bins, np.inf)
    hi = np.full(bins, -np.inf)
    np.minimum.at(lo, idx, y)
    np.maximum.at(hi, idx, y)
    keep = np.isfinite(lo)
    centres = (edges[:-1] + edges[1:]) / 2
    return centres[keep], lo[keep], hi[keep]


def write_plots(table: MatchTable, times_ns: dict[str, np.ndarray], out_dir: Path, title: str) -> dict:
    """Write offsets.{png,svg} and drops.{png,svg} into out_dir (<session>/synced/plots); returns
    {name: {format: path relative to the session directory}}."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    residuals_us = table.residuals_ns(times_ns) / 1e3
    t_s = (table.instants_ns - (table.instants_ns[0] if table.rows else 0)) / 1e9
    written: dict[str, dict[str, str]] = {}

    # One panel per camera (overlaid dots would hide each other), each scaled to its own data so
    # µs residuals stay visible; the tolerance is drawn when it falls inside the panel.
    n = max(1, len(table.cameras))
    fig, axes = plt.subplots(n, 1, figsize=(10, 1.2 + 1.6 * n), dpi=100, sharex=True, squeeze=False)
    tol_us = table.tolerance_ns / 1e3
    for c, name in enumerate(table.cameras):
        ax = axes[c, 0]
        y = residuals_us[:, c]
        ok = np.isfinite(y)
        if ok.any():
            x, yy = t_s[ok], y[ok]
            if x.size > 2 * ENVELOPE_BINS:
                xc, lo, hi = _envelope(x, yy, ENVELOPE_BINS)
                ax.fill_between(xc, lo, hi, step="mid", color=f"C{c}", alpha=0.6, label="min/max per bin")
            else:
                ax.plot(x, yy, ".", ms=2, color=f"C{c}")
            span = max(1.2 * float(np.abs(yy).max()), 50.0)
        else:
            span = tol_us
            ax.text(0.5, 0.5, "no matched frames", transform=ax.transAxes, ha="center", va="center")
        if span >= tol_us:
            ax.axhline(tol_us, color="red", lw=0.8, ls="--")
            ax.axhline(-tol_us, color="red", lw=0.8, ls="--")
        ax.set_ylim(-min(span, 1.05 * tol_us), min(span, 1.05 * tol_us))
        ax.set_ylabel(f"{name}\n(µs)")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time since first instant (s)")
    axes[0, 0].set_title(
        f"{title}: frame time − row instant per camera ({table.mode} match, tolerance ±{tol_us:.0f} µs)"
    )
    fig.tight_layout()
    written["offsets"] = _save(fig, out_dir, "offsets")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 0.6 + 0.5 * len(table.cameras)), dpi=100)
    for c in range(len(table.cameras)):
        rows = np.flatnonzero(table.cells[:, c] == EMPTY)
        ax.plot(t_s[rows], np.full(rows.size, c), "|", ms=12, color="tab:red")
        ax.text(1.0, c, f" {rows.size} empty", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    ax.set_yticks(range(len(table.cameras)), table.cameras)
    ax.set_ylim(-0.6, len(table.cameras) - 0.4)
    if table.rows:
        ax.set_xlim(t_s[0], max(t_s[-1], t_s[0] + 1e-3))
    ax.set_xlabel("time since first instant (s)")
    ax.set_title(f"{title}: instants without a frame (drops)")
    fig.tight_layout()
    written["drops"] = _save(fig, out_dir, "drops")
    plt.close(fig)
    return written


def save_figure(fig, out_dir: Path, stem: str) -> dict[str, Path]:  # noqa: ANN001
    """`<stem>.png` and `.svg` in out_dir, each written to a temporary name and renamed, so a
    reader never sees half a plot; returns {format: path}."""
    paths = {}
    for fmt in ("png", "svg"):
        path = out_dir / f"{stem}.{fmt}"
        tmp = path.with_name(f".{path.name}.tmp")
        fig.savefig(tmp, format=fmt, bbox_inches="tight")
        tmp.replace(path)
        paths[fmt] = path
    return paths


def _save(fig, out_dir: Path, stem: str) -> dict[str, str]:  # noqa: ANN001
    """Paths relative to the session (plots live in <session>/synced/plots)."""
    return {
        fmt: str(path.relative_to(out_dir.parent.parent))
        for fmt, path in save_figure(fig, out_dir, stem).items()
    }
