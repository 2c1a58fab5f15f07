"""Calibration from board detections: intrinsics per camera on well-spread views, initial
extrinsics chained through the co-visibility graph, then one bundle adjustment over every camera
and every board pose, and the world frame put on the board in a reference row (units: mm)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field, replace

import numpy as np

from controller.dataset.board.detections import CameraDetections
from controller.dataset.board.spec import BoardSpec
from controller.dataset.calibrate.bundle import CameraParams, Observations, bundle_adjust
from controller.dataset.calibrate.errors import CalibrationError
from controller.dataset.calibrate.extrinsics import ViewPose, board_pose, chain_cameras, initial_board_poses
from controller.dataset.calibrate.geometry import compose, invert, rotation_to_rvec
from controller.dataset.calibrate.intrinsics import Intrinsics, fit_intrinsics
from controller.dataset.calibrate.views import View, camera_views, describe_rejected, select_views
from controller.dataset.cameras import CameraModel, CameraSet
from controller.progress import Progress
from syncrig_agent.sim.charuco_sim import rodrigues


@dataclass
class CalibrationOptions:
    fisheye: bool = False
    reference_row: int | None = None  # world frame = the board in this row (default: seen by most cameras)
    max_views: int = 40  # views per camera for the intrinsics
    min_views: int = 5  # fewer usable views than this: refuse with a clear error
    min_corners: int = 6  # corners for a view to count
    fix_k3: bool = True  # pinhole: k3 held at 0 (k1 k2 p1 p2 also fit Pose2Sim's 4-term model)
    refine_intrinsics: bool = True  # the bundle adjustment also refines focal, centre, distortion
    # Each camera's intrinsics and image size, held fixed (`calibrate --intrinsics FILE`, e.g.
    # from `syncrig intrinsics`): only the extrinsics are solved.
    intrinsics: dict[str, tuple[Intrinsics, tuple[int, int]]] | None = None
    loss: str = "soft_l1"
    loss_scale_px: float = 1.0
    outlier_px: float = 4.0  # after a first adjustment, drop corners off by more (and > 5x median)
    max_pnp_rms_px: float = 10.0  # a view whose own PnP fit is worse is not used to initialise
    # Board poses in the bundle adjustment: beyond this, rows seen by several cameras (they tie
    # the cameras together) are kept first, evenly spread over the session, plus every camera's
    # intrinsics views and the reference row. None: every row.
    max_rows: int | None = 600


@dataclass
class CalibrationResult:
    cameras: CameraSet  # world frame: the board in `reference_row`, mm
    spec: BoardSpec
    options: CalibrationOptions
    reference_row: int
    root_camera: str
    tree: dict  # spanning-tree edges (camera, camera) → shared rows
    board_poses: dict[int, tuple[np.ndarray, np.ndarray]]  # row → board → world
    intrinsics: dict[str, Intrinsics]  # before the bundle adjustment
    views_used: dict[str, list[int]]  # intrinsics views per camera
    per_camera: dict[str, dict]  # reprojection error figures, rows, views
    errors: dict[str, np.ndarray]  # per camera: (n,) final reprojection error of every observation
    points: dict[str, np.ndarray]  # per camera: (n, 2) detected pixel of every observation
    bundle: dict  # solver figures
    seconds: dict = field(default_factory=dict)

    @property
    def mean_error_px(self) -> float:
        errs = np.concatenate([e for e in self.errors.values() if len(e)])
        return float(errs.mean())


def _nothing(fraction: float, label: str) -> None:
    pass


def _stats(err: np.ndarray) -> dict:
    if len(err) == 0:
        return {"mean": None, "median": None, "p95": None, "max": None}
    return {
        "mean": round(float(err.mean()), 4),
        "median": round(float(np.median(err)), 4),
        "p95": round(float(np.percentile(err, 95)), 4),
        "max": round(float(err.max()), 4),
    }


def _intrinsics_for(
    name: str, views: list[View], corners: np.ndarray, size: tuple[int, int], opt: CalibrationOptions
) -> tuple[Intrinsics, list[View], list[tuple[int, str]]]:
    """Two passes: pick views by image coverage, fit; then with those intrinsics every view has
    a board pose, so pick again by coverage *and* tilt/distance diversity, and fit again. Views a
    fit cannot use are left out (fit_intrinsics) and not offered again."""
    first = select_views(views, size, opt.max_views)
    intr, used, dropped = fit_intrinsics(name, first, corners, size, fisheye=opt.fisheye, fix_k3=opt.fix_k3)
    if len(views) <= opt.max_views:
        return intr, used, dropped
    gone = {row for row, _ in dropped}
    candidates = [v for v in views if v.row not in gone]
    poses = {}
    for v in candidates:
        vp = board_pose(v, corners, intr)
        if vp is not None:
            poses[v.row] = (vp.rot, vp.trans)
    chosen = select_views(candidates, size, opt.max_views, poses)
    intr, used, more = fit_intrinsics(name, chosen, corners, size, fisheye=opt.fisheye, fix_k3=opt.fix_k3)
    return intr, used, dropped + more


def _given_intrinsics(
    name: str, size: tuple[int, int], given: dict[str, tuple[Intrinsics, tuple[int, int]]]
) -> Intrinsics:
    if name not in given:
        raise CalibrationError(
            f"the intrinsics file has no camera {name!r} (it has {', '.join(sorted(given)) or 'none'}): "
            "name each camera as the session does (`syncrig intrinsics NAME=PATH`)"
        )
    intr, their_size = given[name]
    if tuple(their_size) != tuple(size):
        raise CalibrationError(
            f"{name}: the intrinsics file's camera is {their_size[0]}x{their_size[1]} px but this session's "
            f"{name} films {size[0]}x{size[1]}: calibrate its intrinsics at the recording's size"
        )
    return intr


def _reference_row(
    opt: CalibrationOptions, view_poses: dict[str, dict[int, ViewPose]], rows: list[int]
) -> int:
    if opt.reference_row is not None:
        if opt.reference_row not in rows:
            near = sorted(rows, key=lambda r: abs(r - opt.reference_row))[:5]
            raise CalibrationError(
                f"reference row {opt.reference_row}: no camera saw the board there; rows that would do: "
                + ", ".join(str(r) for r in sorted(near))
            )
        return opt.reference_row
    seen: dict[int, list[int]] = {}
    for views in view_poses.values():
        for row, vp in views.items():
            seen.setdefault(row, [0, 0])
            seen[row][0] += 1
            seen[row][1] += vp.corners
    return max(seen, key=lambda r: (seen[r][0], seen[r][1], -r))


def _select_rows(
    view_poses: dict[str, dict[int, ViewPose]], max_rows: int | None, keep: set[int]
) -> set[int]:
    """Rows for the bundle adjustment (see CalibrationOptions.max_rows)."""
    seen: dict[int, int] = {}
    for views in view_poses.values():
        for row in views:
            seen[row] = seen.get(row, 0) + 1
    if max_rows is None or len(seen) <= max_rows:
        return set(seen)
    chosen = {r for r in keep if r in seen}

    def spread(candidates: list[int], count: int) -> set[int]:
        if count <= 0 or not candidates:
            return set()
        if count >= len(candidates):
            return set(candidates)
        return {candidates[i] for i in np.linspace(0, len(candidates) - 1, count).round().astype(int)}

    for group in ([r for r in sorted(seen) if seen[r] >= 2], [r for r in sorted(seen) if seen[r] < 2]):
        group = [r for r in group if r not in chosen]
        chosen |= spread(group, max_rows - len(chosen))
    return chosen


def calibrate_cameras(
    detections: dict[str, CameraDetections],
    spec: BoardSpec,
    options: CalibrationOptions | None = None,
    progress: Progress | None = None,
) -> CalibrationResult:
    """All cameras at once from their board detections (camera order = dict order)."""
    opt = options or CalibrationOptions()
    if opt.intrinsics:
        models = {intr.fisheye for intr, _size in opt.intrinsics.values()}
        if len(models) > 1:
            raise CalibrationError("the intrinsics file mixes fisheye and pinhole cameras: give one model")
        opt = replace(opt, fisheye=models.pop())
    progress = progress or _nothing
    corners = spec.corner_points_mm()
    names = list(detections)
    if len(names) < 1:
        raise CalibrationError("no cameras to calibrate")
    timings = {}
    started = time.perf_counter()

    views: dict[str, list[View]] = {}
    rejected: dict[str, Counter] = {}
    for name in names:
        det = detections[name]
        bad = (det.corner_id < 0) | (det.corner_id >= spec.corner_count)
        if bad.any():
            raise CalibrationError(
                f"{name}: detected corner ids up to {int(det.corner_id.max())}, but the "
                f"{spec.squares_x}x{spec.squares_y} board has {spec.corner_count} corners: wrong board spec?"
            )
        rejected[name] = Counter()
        views[name] = camera_views(det, opt.min_corners, corners, rejected[name])
        why = describe_rejected(rejected[name])
        left_out = f"; left out: {why}" if why else ""
        if not views[name]:
            raise CalibrationError(
                f"{name} never saw the board in a usable view ({len(det.row)} corners detected in "
                f"{len(det.rows())} frames{left_out}; a view needs {opt.min_corners} corners spanning "
                "the board): check the board spec and that the board was in this camera's view"
            )
        if len(views[name]) < opt.min_views:
            raise CalibrationError(
                f"{name}: too few board views ({len(views[name])} usable of {len(det.rows())} "
                f"detected{left_out}; need {opt.min_views}): record the board in more positions for "
                "this camera, facing it within 75 deg and filling more of the image"
            )

    intrinsics: dict[str, Intrinsics] = {}
    used: dict[str, list[int]] = {}
    dropped: dict[str, list[tuple[int, str]]] = {}
    for i, name in enumerate(names):
        progress(0.05 + 0.35 * i / len(names), f"intrinsics {name}")
        size = detections[name].image_size
        if opt.intrinsics is not None:
            intrinsics[name], used[name], dropped[name] = (
                _given_intrinsics(name, size, opt.intrinsics),
                [],
                [],
            )
            continue
        intrinsics[name], chosen, dropped[name] = _intrinsics_for(name, views[name], corners, size, opt)
        used[name] = [v.row for v in chosen]
        gone = {row for row, _ in dropped[name]}
        views[name] = [v for v in views[name] if v.row not in gone]
    timings["intrinsics"] = round(time.perf_counter() - started, 3)

    progress(0.4, "board poses")
    view_poses: dict[str, dict[int, ViewPose]] = {}
    for name in names:
        fitted = {}
        for v in views[name]:
            vp = board_pose(v, corners, intrinsics[name])
            if vp is not None:
                fitted[v.row] = vp
        limit = max(opt.max_pnp_rms_px, 5 * float(np.median([vp.rms_px for vp in fitted.values()] or [0])))
        view_poses[name] = {r: vp for r, vp in fitted.items() if vp.rms_px <= limit}
        if not view_poses[name]:
            raise CalibrationError(f"{name}: no board view fits the intrinsics (bad detections or spec?)")
    cam_poses, tree, root = chain_cameras(names, view_poses)
    all_rows = sorted({r for views in view_poses.values() for r in views})
    ref = _reference_row(opt, view_poses, all_rows)  # checked before the long part
    keep = _select_rows(view_poses, opt.max_rows, {ref}.union(*map(set, used.values())))
    view_poses = {n: {r: vp for r, vp in v.items() if r in keep} for n, v in view_poses.items()}
    boards0 = initial_board_poses(cam_poses, view_poses)
    rows = list(boards0)
    row_index = {r: k for k, r in enumerate(rows)}

    cam_idx, row_idx, obj, xy = [], [], [], []
    for c, name in enumerate(names):
        for v in views[name]:
            if v.row in view_poses[name]:
                cam_idx.append(np.full(len(v.ids), c))
                row_idx.append(np.full(len(v.ids), row_index[v.row]))
                obj.append(corners[v.ids])
                xy.append(v.xy)
    obs = Observations(
        np.concatenate(cam_idx), np.concatenate(row_idx), np.concatenate(obj), np.concatenate(xy)
    )
    params = [
        CameraParams(
            cam_poses[n][0], cam_poses[n][1], intrinsics[n].matrix.copy(), intrinsics[n].distortions.copy()
        )
        for n in names
    ]
    boards = np.array([np.r_[rotation_to_rvec(r)[0], t] for r, t in boards0.values()])
    timings["initialisation"] = round(time.perf_counter() - started - timings["intrinsics"], 3)

    progress(0.5, "bundle adjustment")
    ba_kw = dict(
        root=names.index(root),
        fisheye=opt.fisheye,
        refine_intrinsics=opt.refine_intrinsics and opt.intrinsics is None,
        fix_k3=opt.fix_k3,
        loss=opt.loss,
        loss_scale_px=opt.loss_scale_px,
    )
    result = bundle_adjust(params, boards, obs, **ba_kw)
    err = np.linalg.norm(result.residuals, axis=1)
    limit = max(opt.outlier_px, 5 * float(np.median(err)))
    outliers = err > limit
    dropped_per_camera = np.bincount(obs.cam[outliers], minlength=len(names))
    figures = {
        "first_pass": result.figures,
        "outliers_dropped": int(outliers.sum()),
        "outlier_limit_px": limit,
    }
    figures.update(rows_detected=len(all_rows), rows_used=len(rows))
    if outliers.any():
        progress(0.8, "bundle adjustment without outliers")
        obs = obs.subset(~outliers)
        result = bundle_adjust(result.cameras, result.boards, obs, **ba_kw)
        figures["second_pass"] = result.figures
    final = result.figures
    figures.update({k: final[k] for k in ("rms_px_after", "cost_after", "observations", "parameters")})
    figures["cost_before"] = figures["first_pass"]["cost_before"]
    figures["rms_px_before"] = figures["first_pass"]["rms_px_before"]
    figures["iterations"] = figures["first_pass"]["iterations"] + figures.get("second_pass", {}).get(
        "iterations", 0
    )
    figures["seconds"] = round(
        figures["first_pass"]["seconds"] + figures.get("second_pass", {}).get("seconds", 0), 3
    )
    timings["bundle_adjustment"] = figures["seconds"]

    progress(0.9, "world frame")
    board_rot = rodrigues(result.boards[:, :3])
    ref_pose = (board_rot[row_index[ref]], result.boards[row_index[ref], 3:])
    to_world = invert(*ref_pose)  # root frame → world (= the reference board's frame)
    cameras = []
    for name, cp in zip(names, result.cameras, strict=True):
        rot, trans = compose(cp.rot, cp.trans, *ref_pose)  # world → root → camera
        cameras.append(
            CameraModel(
                name=name,
                size=detections[name].image_size,
                matrix=cp.matrix,
                distortions=cp.distortions,
                rotation=rotation_to_rvec(rot)[0],
                translation=trans,
                fisheye=opt.fisheye,
            )
        )
    board_poses = {r: compose(*to_world, board_rot[k], result.boards[k, 3:]) for r, k in row_index.items()}

    # The figures users see are computed through the saved camera model (OpenCV's projection),
    # over every observation including the dropped outliers, so they are what a consumer gets.
    errors, points, per_camera = {}, {}, {}
    for c, name in enumerate(names):
        cam = cameras[c]
        e_all, p_all, rows_seen = [], [], []
        for v in views[name]:
            if v.row not in board_poses:
                continue
            rot, trans = board_poses[v.row]
            px = cam.project(corners[v.ids] @ rot.T + trans)
            e_all.append(np.linalg.norm(px - v.xy, axis=1))
            p_all.append(v.xy)
            rows_seen.append(v.row)
        errors[name] = np.concatenate(e_all) if e_all else np.zeros(0)
        points[name] = np.concatenate(p_all) if p_all else np.zeros((0, 2))
        per_camera[name] = {
            "reprojection_px": _stats(errors[name]),
            "observations": int(len(errors[name])),
            "rows": len(rows_seen),
            "views_detected": len(views[name]),
            "views_intrinsics": len(used[name]),
            "intrinsics_rms_px": round(intrinsics[name].rms_px, 4),
            "outliers_dropped": int(dropped_per_camera[c]),
            "views_rejected": dict(rejected[name]),  # by geometry, before any fit
            "views_dropped": len(dropped[name]),  # by the intrinsics fit
            "views_dropped_why": {str(row): why for row, why in dropped[name]},
        }
    timings["total"] = round(time.perf_counter() - started, 3)
    progress(1.0, "done")
    return CalibrationResult(
        cameras=CameraSet(cameras),
        spec=spec,
        options=opt,
        reference_row=ref,
        root_camera=root,
        tree=tree,
        board_poses=board_poses,
        intrinsics=intrinsics,
        views_used=used,
        per_camera=per_camera,
        errors=errors,
        points=points,
        bundle=figures,
        seconds=timings,
    )
