"""3D keypoints of a session: 2D keypoints of every camera + calibration → `pose3d/points.npz`
and `pose3d/report.json` (quality + the sample-count summary). `syncrig triangulate` runs this.

`points.npz`, one entry per match row (synced instant), keypoints in keypoints.py order:
- `points` (R, K, 3) float32 world coordinates in the calibration's units (mm), NaN where not
  triangulated; `error_px` (R, K) mean reprojection error over the cameras used; `ncams` (R, K);
  `score` (R, K) lowest 2D confidence among the cameras used (anipose's `_score`); `inliers`
  (R, K) uint32, bit c set = camera c (in `cameras` order) was used;
- `rows` (R,), `time_ns` (R,) the row's time on the session's shared clock (ns since T0: median
  capture time of the cameras that have a frame in it; rows no camera recorded are interpolated);
- `names`, `cameras`, `meta` (JSON: units, calibration file, method, parameters, smoothing);
- `cause` (R, K) int8: 0 = triangulated, else why not (sequence.CAUSES); absent in older files.
`report.json` adds quality per joint, bone and camera (pose/quality.py) and `plots` (pose3d/plots/).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.dataset.cameras import CalibrationFileError, CameraSet
from controller.dataset.imports.calibration import load_any_calibration
from controller.dataset.pose.keypoints import group_of, skeleton_of
from controller.dataset.pose.methods import triangulate_frames, triangulate_sequence_rows
from controller.dataset.pose.pose2d import Pose2D, Pose2DError
from controller.dataset.pose.quality import quality_report, write_plots
from controller.dataset.pose.triangulate import (
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_MIN_RAY_ANGLE_DEG,
    DEFAULT_OUTLIER_PX,
    smooth_points_report,
)
from controller.dataset.pose.views import DEFAULT_IDENTITY_PX, Subject, subject_text
from controller.pipeline.matching import read_match_csv
from controller.progress import Progress
from controller.session.synced import NotSynced, synced_cameras
from syncrig_agent.contract.formats import read_manifest
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.layout import SessionLayout

METHODS = ("sequence", "frame")
DEFAULT_MIN_VALID_FRACTION = 0.8


class TriangulationError(ValueError):
    """The session cannot be triangulated; the message says why and what to run."""


@dataclass
class Pose3D:
    points: np.ndarray  # (R, K, 3) float32
    error_px: np.ndarray  # (R, K) float32
    ncams: np.ndarray  # (R, K) int8
    score: np.ndarray  # (R, K) float32
    inliers: np.ndarray  # (R, K) uint32 bit mask over `cameras`
    rows: np.ndarray  # (R,) int64
    time_ns: np.ndarray  # (R,) int64
    names: tuple[str, ...]
    cameras: tuple[str, ...]
    meta: dict = field(default_factory=dict)
    cause: np.ndarray | None = None  # (R, K) int8: 0 = triangulated, else why not (sequence.CAUSES)

    @property
    def valid(self) -> np.ndarray:
        return np.isfinite(self.points).all(axis=-1)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez_compressed(
            tmp,
            points=self.points.astype(np.float32),
            error_px=self.error_px.astype(np.float32),
            ncams=self.ncams.astype(np.int8),
            score=self.score.astype(np.float32),
            inliers=self.inliers.astype(np.uint32),
            rows=self.rows.astype(np.int64),
            time_ns=self.time_ns.astype(np.int64),
            names=np.array(self.names),
            cameras=np.array(self.cameras),
            meta=np.array(json.dumps(self.meta)),
            **({} if self.cause is None else {"cause": self.cause.astype(np.int8)}),
        )
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Pose3D:
        try:
            with np.load(Path(path), allow_pickle=False) as d:
                return cls(
                    points=d["points"],
                    error_px=d["error_px"],
                    ncams=d["ncams"],
                    score=d["score"],
                    inliers=d["inliers"],
                    rows=d["rows"],
                    time_ns=d["time_ns"],
                    names=tuple(d["names"].tolist()),
                    cameras=tuple(d["cameras"].tolist()),
                    meta=json.loads(str(d["meta"])),
                    cause=d["cause"] if "cause" in d.files else None,
                )
        except (OSError, KeyError, ValueError) as exc:
            raise TriangulationError(f"cannot read 3D keypoints {path}: {exc}") from None


def load_pose3d(session: Path) -> Pose3D:
    path = SessionLayout(session).pose3d_file
    if not path.is_file():
        raise TriangulationError(f"{session}: no 3D keypoints ({path}); run `syncrig triangulate {session}`")
    return Pose3D.load(path)


def _load_inputs(
    session: Path, calibration: Path | None, units: str | None = None
) -> tuple[CameraSet, list[Pose2D], int, dict]:
    """The calibrated cameras that have 2D keypoints (in that order), their keypoints, the match
    table's row count and what the report says about the calibration used."""
    session = Path(session)
    layout = SessionLayout(session)
    try:
        match_cameras = synced_cameras(session)
    except NotSynced as exc:
        raise TriangulationError(str(exc)) from None
    match = layout.synced.match_csv
    _names, cells = read_match_csv(match)
    calib_path = Path(calibration) if calibration else layout.calibration_toml
    if not calib_path.is_file():
        raise TriangulationError(
            f"no calibration at {calib_path}: run `syncrig calibrate` on a calibration session and pass "
            "its calibration.toml with --calibration FILE"
        )
    try:
        if calibration:  # any format the import reads, converted to mm and fitted to the videos
            sizes = {c["name"]: (c["width"], c["height"]) for c in read_manifest(session).cameras}
            calibration = load_any_calibration(calib_path, units, sizes, f"session {session.name}")
        else:
            calibration = CameraSet.load(calib_path)
    except CalibrationFileError as exc:
        raise TriangulationError(str(exc)) from None
    files = {cam: layout.pose2d_file(cam) for cam in match_cameras}
    present = [cam for cam, f in files.items() if f.is_file()]
    if not present:
        raise TriangulationError(
            f"{session}: no 2D keypoints in {layout.pose2d_dir}; run `syncrig pose {session}`"
        )
    unknown = [cam for cam in present if cam not in calibration]
    if unknown:
        raise TriangulationError(
            f"camera(s) {', '.join(unknown)} have 2D keypoints but are not in the calibration {calib_path} "
            f"(it has {', '.join(calibration.names)}): calibrate them, or use the calibration made for "
            "this rig"
        )
    try:
        poses = [Pose2D.load(files[cam]) for cam in present]
    except Pose2DError as exc:
        raise TriangulationError(str(exc)) from None
    if len(poses) < 2:
        raise TriangulationError(
            f"{session}: 2D keypoints of only {present}; triangulation needs two cameras or more"
        )
    names = poses[0].names
    for p in poses:
        if p.names != names:
            raise TriangulationError(
                f"{p.camera}: keypoint names differ from {poses[0].camera}'s (different pose model?)"
            )
        cam = calibration[p.camera]
        if tuple(p.image_size) != tuple(cam.size):
            raise TriangulationError(
                f"{p.camera}: 2D keypoints are for {p.image_size[0]}x{p.image_size[1]} images but the "
                f"calibration is for {cam.size[0]}x{cam.size[1]}"
            )
        if len(p.rows) and (p.rows.max() >= len(cells) or p.rows.min() < 0):
            raise TriangulationError(
                f"{p.camera}: 2D keypoints refer to match rows beyond {match} (re-run pose)"
            )
    used = calibration.subset(p.camera for p in poses)
    return used, poses, len(cells), {"calibration": str(calib_path), "calibration_metadata": used.metadata}


def _row_times(poses: list[Pose2D], rows: int, period_ns: int) -> np.ndarray:
    stack = np.full((rows, len(poses)), np.nan)
    for i, p in enumerate(poses):
        stack[p.rows, i] = p.capture_ns
    have = np.isfinite(stack).any(axis=1)
    times = np.full(rows, np.nan)
    if have.any():
        times[have] = np.nanmedian(stack[have], axis=1)
    idx = np.arange(rows)
    if have.sum() >= 2:
        times[~have] = np.interp(idx[~have], idx[have], times[have])
        # Beyond the ends: continue at the period.
        first, last = np.flatnonzero(have)[[0, -1]]
        times[:first] = times[first] - (first - idx[:first]) * period_ns
        times[last + 1 :] = times[last] + (idx[last + 1 :] - last) * period_ns
    elif have.sum() == 1:
        k = int(np.flatnonzero(have)[0])
        times = times[k] + (idx - k) * period_ns
    else:
        times = idx * float(period_ns)
    return np.round(times).astype(np.int64)


def triangulate_session(
    session: Path,
    calibration: Path | None = None,
    smooth: bool = False,
    cutoff_hz: float = 6.0,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    outlier_px: float = DEFAULT_OUTLIER_PX,
    min_ray_angle_deg: float = DEFAULT_MIN_RAY_ANGLE_DEG,
    min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION,
    progress: Progress | None = None,
    units: str | None = None,  # of a --calibration file whose format does not state them
    method: str = "sequence",
    subject: Subject | None = None,
    identity_px: float = DEFAULT_IDENTITY_PX,
) -> dict:
    """Triangulate every match row; write pose3d/points.npz, report.json and plots; return the
    report. method "sequence" (default): the whole sequence at once (sequence.py); "frame": each
    row on its own with outlier voting (triangulate.py)."""
    if method not in METHODS:
        raise TriangulationError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    session = Path(session)
    cameras, poses, rows, info = _load_inputs(session, calibration, units)
    manifest = read_manifest(session)
    fps = float(manifest.fps)
    if method == "frame":
        out, extra = triangulate_frames(
            cameras, poses, rows, min_confidence, outlier_px, min_ray_angle_deg, progress
        )
        params = {
            "min_confidence": min_confidence,
            "outlier_px": outlier_px,
            "min_ray_angle_deg": min_ray_angle_deg,
        }
    else:
        out, extra = triangulate_sequence_rows(
            cameras, poses, rows, fps, min_confidence, subject, identity_px, progress
        )
        params = {
            "min_confidence": min_confidence,
            "identity_px": identity_px,
            "subject": subject_text(subject),
        }
    meta = {
        "units": "mm",
        **info,
        "method": method,
        **params,
        "smoothing": None,
        "fps": fps,
        "pose_model": poses[0].meta.get("model"),
        "pose_model_version": poses[0].meta.get("model_version"),
        "skeleton": poses[0].meta.get("skeleton", []),  # imported keypoint sets: edges by name
        "unavailable_groups": sorted({g for p in poses for g in p.meta.get("unavailable_groups", [])}),
    }
    if smooth:
        smoothed, smoothing = smooth_points_report(out["points"], fps, cutoff_hz)
        out["points"] = smoothed.astype(np.float32)
        meta["smoothing"] = smoothing
    result = Pose3D(
        out["points"],
        out["error_px"],
        out["ncams"],
        out["score"],
        out["inliers"],
        np.arange(rows),
        _row_times(poses, rows, manifest.period_ns),
        poses[0].names,
        cameras.names,
        meta,
        out["cause"],
    )
    layout = SessionLayout(session)
    result.save(layout.pose3d_file)
    report = build_report(
        result,
        extra["observed"],
        extra["rejected"],
        extra["ambiguous"],
        manifest.period_ns,
        min_valid_fraction,
    )
    report.update(quality_report(result, extra, skeleton_of(poses[0].names, poses[0].meta)))
    if progress is not None:
        progress(0.97, "plots")
    report["plots"] = write_plots(
        result, extra, skeleton_of(poses[0].names, poses[0].meta), layout.pose3d_plots
    )
    write_json_atomic(layout.pose3d_report, report)
    return report


def _pct(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values.size else None


def sample_summary(
    pose: Pose3D, period_ns: int, min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION
) -> dict:
    """Labelled samples per keypoint group: a row is a labelled sample of a group when at least
    ceil(min_valid_fraction · group size) of its keypoints were triangulated; per hour of recording
    (rows × frame period)."""
    valid = pose.valid
    hours = len(pose.rows) * period_ns / 3.6e12
    groups = {}
    all_groups = np.ones(len(pose.rows), bool)
    for name, idx in group_of(pose.names).items():
        need = max(1, math.ceil(min_valid_fraction * len(idx)))
        labelled = valid[:, idx].sum(axis=1) >= need
        # A group the model could not run, or that no camera ever saw, says nothing about the
        # others: "all groups" means all the groups that were seen.
        never_seen = not valid[:, idx].any()
        if name not in pose.meta.get("unavailable_groups", []) and not never_seen:
            all_groups &= labelled
        groups[name] = {
            "keypoints": len(idx),
            "min_valid": need,
            "never_seen": bool(not valid[:, idx].any()),
            "labelled_rows": int(labelled.sum()),
            "per_hour": round(labelled.sum() / hours, 1) if hours > 0 else None,
        }
    return {
        "rows": len(pose.rows),
        "recording_hours": round(hours, 6),
        "min_valid_fraction": min_valid_fraction,
        "groups": groups,
        "all_groups": {
            "labelled_rows": int(all_groups.sum()),
            "per_hour": round(all_groups.sum() / hours, 1) if hours > 0 else None,
        },
    }


def build_report(
    pose: Pose3D,
    observed: np.ndarray,
    rejected: np.ndarray,
    ambiguous: int,
    period_ns: int,
    min_valid_fraction: float,
) -> dict:
    valid = pose.valid
    groups = {}
    for name, idx in group_of(pose.names).items():
        v = valid[:, idx]
        err = pose.error_px[:, idx][v]
        err = err[np.isfinite(err)]
        groups[name] = {
            "triangulated_fraction": round(float(v.mean()), 4) if v.size else 0.0,
            "reprojection_px": {
                "p50": _pct(err, 50),
                "p95": _pct(err, 95),
                "mean": round(float(err.mean()), 3) if err.size else None,
            },
            "cameras_used_mean": round(float(pose.ncams[:, idx][v].mean()), 3) if v.any() else None,
        }
    return {
        "units": pose.meta.get("units", "mm"),
        "rows": len(pose.rows),
        "keypoints": len(pose.names),
        "cameras": {
            cam: {
                "observations": int(observed[i]),
                "rejected_as_outliers": int(rejected[i]),
                "outlier_rate": round(float(rejected[i] / observed[i]), 4) if observed[i] else None,
            }
            for i, cam in enumerate(pose.cameras)
        },
        "ambiguous_points_dropped": ambiguous,
        "groups": groups,
        "samples": sample_summary(pose, period_ns, min_valid_fraction),
        "parameters": {
            k: pose.meta.get(k)
            for k in ("method", "min_confidence", "outlier_px", "min_ray_angle_deg", "identity_px", "subject")
            if k in pose.meta
        },
        "smoothing": pose.meta.get("smoothing"),
        "calibration": pose.meta.get("calibration"),
        "unavailable_groups": pose.meta.get("unavailable_groups", []),
    }


def format_samples(report: dict) -> str:
    """The sample-count summary as printed lines."""
    s = report["samples"]
    lines = [
        f"labelled samples ({s['rows']} rows, {s['recording_hours'] * 60:.2f} min of recording; "
        f"a sample = a row "
        f"with >= {s['min_valid_fraction']:.0%} of a group's keypoints in 3D):"
    ]
    for name, g in s["groups"].items():
        lines.append(
            f"  {name:<11} {g['labelled_rows']:>8} rows  {g['per_hour']} / hour  "
            f"(>= {g['min_valid']}/{g['keypoints']} keypoints)"
        )
    a = s["all_groups"]
    seen = [n for n, g in s["groups"].items() if not g.get("never_seen")]
    lines.append(
        f"  {'all groups':<11} {a['labelled_rows']:>8} rows  {a['per_hour']} / hour  "
        f"(the groups seen: {', '.join(seen)})"
    )
    return "\n".join(lines)
