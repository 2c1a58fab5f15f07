"""Triangulation accuracy and throughput (issue 7 measurement).

Synthetic ground truth: a moving 553-keypoint skeleton (keypoints.py) seen by C known cameras on a
ring (controller.dataset.pose.synthetic), 1 px Gaussian noise on every observation, and 20 % of
observations replaced by outliers (25–200 px away in a random direction).
- bound: plain unweighted DLT over every camera on the same noisy observations WITHOUT outliers;
- oracle bound: plain DLT over exactly the inlier observations (the outliers removed, as if an
  oracle had flagged them): the best any outlier rejection can do with the cameras that remain;
- robust: `triangulate_robust` on the observations WITH outliers (threshold --outlier-px);
  accuracy = mean 3D error over the points it triangulated, divided by the bound's mean error on
  those same points (acceptance: ≤ 1.5); precision / recall of its outlier flags; completeness;
- sequence: `triangulate_sequence` (pose/sequence.py) on the same contaminated body keypoints
  (no edge declared rigid: the synthetic keypoints wobble on their own), its mean error against
  the bound's on the same points, completeness, and frames/s;
- throughput: points/s of the vectorised robust and plain DLT, against a per-point loop (one SVD
  per point over its cameras, the way aniposelib's triangulate_simple is called) timed on a sample
  in the same run.

    .venv/bin/python benchmarks/triangulation.py [--frames 60 --cameras 4 6 8 --outlier-px 8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from controller.dataset.pose.keypoints import BODY, Skeleton, skeleton_of
from controller.dataset.pose.sequence import triangulate_sequence
from controller.dataset.pose.synthetic import observe, ring_cameras, skeleton_motion
from controller.dataset.pose.triangulate import camera_arrays, triangulate_dlt, triangulate_robust


def normalised(cams, pixels):
    return np.stack([c.normalise(pixels[:, i]) for i, c in enumerate(cams)], axis=-2)


def per_point_loop(proj: np.ndarray, xy: np.ndarray) -> np.ndarray:
    out = np.empty((len(xy), 3))
    for i, obs in enumerate(xy):
        a = []
        for p, (x, y) in zip(proj, obs, strict=True):
            a.append(x * p[2] - p[0])
            a.append(y * p[2] - p[1])
        h = np.linalg.svd(np.array(a))[2][-1]
        out[i] = h[:3] / h[3]
    return out


def run(cameras: int, frames: int, outlier_px: float, seed: int = 3) -> None:
    cams = ring_cameras(cameras, seed=seed)
    truth = skeleton_motion(frames, 30.0, seed=seed)
    obs = observe(cams, truth, noise_px=1.0, outlier_frac=0.2, seed=seed)
    xy_clean, xy = normalised(cams, obs.noisy_pixels), normalised(cams, obs.pixels)
    n = xy.shape[0] * xy.shape[1]
    t = time.perf_counter()
    bound = triangulate_dlt(cams, xy_clean, weighted=False)
    t_dlt = time.perf_counter() - t
    t = time.perf_counter()
    robust = triangulate_robust(cams, xy, outlier_px=outlier_px)
    t_rob = time.perf_counter() - t
    out_obs = obs.outlier.transpose(0, 2, 1)  # (frames, keypoints, cameras)
    oracle = triangulate_dlt(cams, np.where(out_obs[..., None], np.nan, xy), weighted=False)
    eo = np.linalg.norm(oracle.points - truth, axis=-1)
    eb = np.linalg.norm(bound.points - truth, axis=-1)
    er = np.linalg.norm(robust.points - truth, axis=-1)
    ok = np.isfinite(er) & np.isfinite(eo)
    out = obs.outlier.transpose(0, 2, 1)
    flagged = robust.outliers
    precision = (flagged & out).sum() / max(flagged.sum(), 1)
    recall = (out & ~robust.inliers).sum() / out.sum()
    plain = np.linalg.norm(triangulate_dlt(cams, xy, weighted=False).points - truth, axis=-1).mean()
    proj, _ = camera_arrays(cams)
    sample = xy_clean.reshape(-1, cameras, 2)[:2000] * 1.0
    scaled = proj.copy()
    t = time.perf_counter()
    per_point_loop(scaled, sample)
    t_loop = (time.perf_counter() - t) / len(sample) * n
    print(
        f"{cameras} cameras, {frames} frames x {xy.shape[1]} keypoints = {n} points:\n"
        f"  bound (plain DLT, no outliers) {eb[ok].mean():.2f} mm | robust with 20% outliers "
        f"{er[ok].mean():.2f} mm -> ratio {er[ok].mean() / eb[ok].mean():.2f} (<= 1.5) | median ratio "
        f"{np.median(er[ok]) / np.median(eb[ok]):.2f} | plain DLT with outliers {plain:.1f} mm\n"
        f"  oracle bound (DLT on the inlier observations only) {eo[ok].mean():.2f} mm -> ratio "
        f"{er[ok].mean() / eo[ok].mean():.2f} (<= 1.5)\n"
        f"  outlier flags: precision {precision:.4f}, recall {recall:.4f} | triangulated {ok.mean():.4f}"
        f" (ambiguous dropped {robust.ambiguous.mean():.4f})\n"
        f"  throughput: robust {n / t_rob:,.0f} points/s, weighted DLT {n / t_dlt:,.0f} points/s, "
        f"per-point loop {n / t_loop:,.0f} points/s "
        f"(robust x{t_loop / t_rob:.1f}, DLT x{t_loop / t_dlt:.1f} vs loop)"
    )
    k = len(BODY)
    t = time.perf_counter()
    seq = triangulate_sequence(
        cams,
        obs.pixels[:, :, :k].transpose(0, 2, 1, 3),
        obs.confidence[:, :, :k].transpose(0, 2, 1),
        BODY,
        Skeleton(skeleton_of(BODY).edges, ()),
        30.0,
    )
    t_seq = time.perf_counter() - t
    es = np.linalg.norm(seq.points - truth[:, :k], axis=-1)
    both = np.isfinite(es) & np.isfinite(eb[:, :k])
    seq_mm, bound_mm = es[both].mean(), eb[:, :k][both].mean()
    print(
        f"  sequence (body, {k} keypoints): {seq_mm:.2f} mm vs bound {bound_mm:.2f} mm "
        f"-> ratio {seq_mm / bound_mm:.2f} | triangulated {np.isfinite(es).mean():.4f} "
        f"| {frames / t_seq:,.0f} frames/s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--cameras", type=int, nargs="+", default=[4, 6, 8])
    ap.add_argument("--outlier-px", type=float, default=8.0)
    args = ap.parse_args()
    for c in args.cameras:
        run(c, args.frames, args.outlier_px)


if __name__ == "__main__":
    main()
