"""3D on real footage (issue 14): SyncRig's sequence triangulation against its per-frame robust
triangulation and aniposelib's `triangulate_optim` with limb-length constraints, on the same 2D
and the same calibration, in the same run.

Input: Pose2Sim's real demo trials (4 cameras, 100 frames at 60 fps, Qualisys calibration),
2D keypoints from SyncRig's own pose model (MediaPipe Holistic), computed once and cached
(benchmarks/_real_footage.py). Figures over the 12 main joints (shoulders, elbows, wrists, hips,
knees, ankles), all computed here the same way for every method:
- coverage: share of frame × joint with a 3D point;
- bone CV: per rigid edge between main joints, std / mean of its length over the frames; median;
- steps > 10 cm between consecutive frames;
- reprojection p50/p90 (px): every confident (≥ 0.3) 2D observation of a point that has 3D,
  against the point's projection through the full camera model (distortion included);
- time (s) of the triangulation call; aniposelib's twice (the first includes JAX's compilation).
On Demo_MultiPerson the report also names the cameras SyncRig flags as following another person.
aniposelib needs JAX (`pip install jax`; the `compare` extra).

    .venv/bin/python benchmarks/real_footage_3d.py [--demos Demo_SinglePerson Demo_MultiPerson]
        [--sessions /tmp/sessions] [--no-aniposelib]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _real_footage import CACHE, FPS, demo_pose2d, demo_session  # noqa: E402

from controller.dataset.pose.keypoints import BODY, MAIN_JOINTS, mirror_pairs, skeleton_of  # noqa: E402
from controller.dataset.pose.sequence import triangulate_sequence  # noqa: E402

MIN_CONFIDENCE = 0.3


def figures(cams, points, pixels, conf, names, seconds, views_kept=None) -> dict:
    """The figures of one method's 3D (see the module docstring). views_kept (T, C): the views
    the reprojection figures are restricted to (None: all)."""
    main = [names.index(n) for n in MAIN_JOINTS]
    sk = skeleton_of(names)
    edges = [(a, b) for a, b in sk.rigid if a in main and b in main]
    p = points[:, main]
    valid = np.isfinite(p).all(-1)
    steps = np.linalg.norm(np.diff(p, axis=0), axis=-1)
    lengths = np.linalg.norm(points[:, [a for a, _ in edges]] - points[:, [b for _, b in edges]], axis=-1)
    with np.errstate(invalid="ignore"):
        cv = np.nanstd(lengths, axis=0) / np.nanmean(lengths, axis=0)
    proj = cams.project(np.where(np.isfinite(points), points, 0.0)[:, main])  # (T, 12, C, 2)
    err = np.linalg.norm(proj - pixels[:, main], axis=-1)
    # Left/right-agnostic: the error to the keypoint's own 2D or to its mirror's, whichever is
    # nearer (a view whose model swapped left and right still saw the limb where the 3D is).
    mirror = {a: b for a, b in mirror_pairs(names)} | {b: a for a, b in mirror_pairs(names)}
    mirrored = pixels[:, [mirror.get(j, j) for j in main]]
    err_lr = np.fmin(err, np.linalg.norm(proj - mirrored, axis=-1))
    use = (conf[:, main] >= MIN_CONFIDENCE) & valid[..., None] & np.isfinite(err)
    if views_kept is not None:
        use &= views_kept[:, None, :]
    e, e_lr = err[use], err_lr[use]

    def pct(values, q):
        return round(float(np.percentile(values, q)), 2) if values.size else None

    return {
        "coverage": round(float(valid.mean()), 4),
        "bone_cv_median": round(float(np.nanmedian(cv)), 4),
        "bone_cv_range": [round(float(np.nanmin(cv)), 4), round(float(np.nanmax(cv)), 4)],
        "steps_over_10cm": int(np.nansum(steps > 100)),
        "reprojection_p50_px": pct(e, 50),
        "reprojection_p90_px": pct(e, 90),
        "reprojection_lr_p90_px": pct(e_lr, 90),
        "seconds": round(seconds, 3),
    }


def aniposelib_group(cams):
    from aniposelib.cameras import Camera, CameraGroup

    return CameraGroup(
        [
            Camera(
                matrix=c.matrix,
                dist=np.resize(c.distortions, 5),
                size=c.size,
                rvec=c.rotation,
                tvec=c.translation,
                name=c.name,
            )
            for c in cams
        ]
    )


def run_demo(demo: str, cache: Path, anipose: bool = True) -> dict:
    cams, poses = demo_pose2d(demo, cache)
    names = BODY
    k = len(names)
    pixels = np.stack([p.keypoints[:, :k, :2] for p in poses], axis=2).astype(np.float64)
    conf = np.nan_to_num(np.stack([p.keypoints[:, :k, 2] for p in poses], axis=2).astype(np.float64))
    out: dict = {"demo": demo, "frames": int(pixels.shape[0]), "cameras": list(cams.names)}
    results: dict[str, tuple[np.ndarray, float]] = {}

    t = time.perf_counter()
    old = cams.triangulate(pixels, conf, min_confidence=MIN_CONFIDENCE)
    results["syncrig-frame (old)"] = (old.points, time.perf_counter() - t)
    t = time.perf_counter()
    new = triangulate_sequence(list(cams), pixels, conf, names, skeleton_of(names), FPS, MIN_CONFIDENCE)
    results["syncrig-sequence (new)"] = (new.points, time.perf_counter() - t)
    out["syncrig_views"] = {
        cam: {
            "frames_excluded": int(new.checks.inconsistent[:, i].sum()),
            "frames_swapped": int(new.checks.swapped_view[:, i].sum()),
            "pairs_swapped": int(new.checks.swapped_pairs[:, :, i].sum()),
        }
        for i, cam in enumerate(cams.names)
    }
    if anipose:
        try:
            group = aniposelib_group(cams)
            pts2d = np.where((conf >= MIN_CONFIDENCE)[..., None], pixels, np.nan).transpose(2, 0, 1, 3)
            rigid = [list(e) for e in skeleton_of(names).rigid]
            for attempt in ("aniposelib (first call)", "aniposelib"):
                t = time.perf_counter()
                p3 = group.triangulate_optim(pts2d, constraints=rigid, verbose=False)
                results[attempt] = (p3, time.perf_counter() - t)
        except ImportError as exc:
            out["aniposelib_skipped"] = f"aniposelib or JAX unavailable: {exc}"
    kept = ~new.checks.inconsistent
    out["methods"] = {m: figures(cams, p, pixels, conf, names, sec) for m, (p, sec) in results.items()}
    out["methods_on_views_kept"] = {
        m: figures(cams, p, pixels, conf, names, sec, kept) for m, (p, sec) in results.items()
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demos", nargs="+", default=["Demo_SinglePerson", "Demo_MultiPerson"])
    ap.add_argument("--cache", type=Path, default=CACHE, help="where the 2D keypoints are cached")
    ap.add_argument("--json", type=Path, default=Path("real_footage_3d.json"))
    ap.add_argument("--no-aniposelib", action="store_true", help="leave the aniposelib comparison out")
    ap.add_argument(
        "--sessions",
        type=Path,
        help="also build a SyncRig session per demo here and run `syncrig triangulate` + `export` on it "
        "(all 553 keypoints; prints the CLI's summary)",
    )
    args = ap.parse_args()
    results = [run_demo(d, args.cache, not args.no_aniposelib) for d in args.demos]
    cols = (
        "coverage",
        "bone_cv_median",
        "steps_over_10cm",
        "reprojection_p50_px",
        "reprojection_p90_px",
        "reprojection_lr_p90_px",
        "seconds",
    )
    for r in results:
        print(f"\n{r['demo']}: {r['frames']} frames, cameras {', '.join(r['cameras'])} (12 main joints)")
        if "aniposelib_skipped" in r:
            print(f"  aniposelib: {r['aniposelib_skipped']}")
        for title, key in (
            ("all confident observations", "methods"),
            (
                "the views SyncRig kept (its excluded frames left out, for every method)",
                "methods_on_views_kept",
            ),
        ):
            print(f"  reprojection over {title}:")
            print(f"  {'method':<26}" + "".join(f"{c:>24}" for c in cols))
            for method, f in r[key].items():
                print(f"  {method:<26}" + "".join(f"{f[c]!s:>24}" for c in cols))
        for cam, v in r["syncrig_views"].items():
            print(f"  syncrig {cam}: {v}")
    if args.sessions:
        from controller.cli.main import main as syncrig

        for demo in args.demos:
            session = demo_session(demo, args.sessions / demo, args.cache)
            print(f"\n$ syncrig triangulate {session}")
            syncrig(["triangulate", str(session), "--quiet"])
            syncrig(["export", str(session), "--format", "c3d", "--quiet"])
    args.json.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
