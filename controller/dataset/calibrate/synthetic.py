"""Synthetic calibration data with ground truth: a ring of known cameras looks at a ChArUco board
moving through the scene; each camera "detects" the corners it can see (front side only, inside
the image, not too oblique, sometimes partly occluded) with Gaussian pixel noise. The tests and
`benchmarks/calibration.py` feed these detections to the calibration and compare with the truth.
(Rendering the board into frames, for the detector, is the simulated camera's job.)"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from controller.dataset.board.detections import CameraDetections
from controller.dataset.board.spec import BoardSpec
from controller.dataset.calibrate.geometry import rotation_angle_deg, rotation_to_rvec, umeyama
from controller.dataset.cameras import CameraModel, CameraSet
from syncrig_agent.sim.charuco_sim import look_at


def ring_cameras(
    count: int,
    *,
    radius_mm: float = 1600.0,
    height_mm: float = 700.0,
    size: tuple[int, int] = (1280, 720),
    focal_px: float = 1000.0,
    fisheye: bool = False,
    rng: np.random.Generator | None = None,
) -> CameraSet:
    """`count` cameras evenly on a circle around the origin, looking at it, each with slightly
    different intrinsics and a realistic lens distortion."""
    rng = rng or np.random.default_rng(0)
    cams = []
    for i in range(count):
        angle = 2 * np.pi * i / count + rng.uniform(-0.1, 0.1)
        centre = np.array([radius_mm * np.cos(angle), radius_mm * np.sin(angle), height_mm])
        centre += rng.normal(0, 50, 3)
        rot = look_at(centre, rng.normal(0, 40, 3))
        f = focal_px * rng.uniform(0.95, 1.05)
        w, h = size
        k = np.array(
            [
                [f, 0, w / 2 + rng.uniform(-15, 15)],
                [0, f * rng.uniform(0.995, 1.005), h / 2 + rng.uniform(-10, 10)],
                [0, 0, 1],
            ]
        )
        if fisheye:
            dist = np.array([0.05, -0.01, 0.005, -0.001]) * rng.uniform(0.8, 1.2)
        else:
            dist = np.array(
                [-0.12 * rng.uniform(0.8, 1.2), 0.05 * rng.uniform(0.8, 1.2), 0.0005, -0.0004, 0.0]
            )
        cams.append(
            CameraModel(
                name=f"cam{i}",
                size=size,
                matrix=k,
                distortions=dist,
                rotation=rotation_to_rvec(rot)[0],
                translation=-rot @ centre,
                fisheye=fisheye,
            )
        )
    return CameraSet(cams)


@dataclass
class SyntheticCalibration:
    cameras: CameraSet  # the truth (world frame: mm, z up)
    spec: BoardSpec
    board_poses: dict[int, tuple[np.ndarray, np.ndarray]]  # row → (R, t): board → world
    detections: dict[str, CameraDetections]


def random_board_poses(
    cameras: CameraSet,
    spec: BoardSpec,
    rows: int,
    rng: np.random.Generator,
    spread_mm: float = 450.0,
    tilt_deg: float = 60.0,
    near_fraction: float = 0.3,
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Board poses near the origin, each facing roughly towards a random camera (the way a person
    waves a board at the cameras), with random tilt and in-plane rotation."""
    from scipy.spatial.transform import Rotation

    centres = np.array([c.centre for c in cameras])
    board_centre = np.array([spec.squares_x * spec.square_mm / 2, spec.squares_y * spec.square_mm / 2, 0.0])
    poses = {}
    for row in range(rows):
        position = rng.uniform(-spread_mm, spread_mm, 3) * np.array([1.0, 1.0, 0.6])
        target = centres[rng.integers(len(centres))]
        facing = target - position
        if rng.random() < near_fraction:  # brought close to one camera to fill its image
            position = position + facing * rng.uniform(0.3, 0.55)
            position += rng.uniform(-0.6, 0.6, 3) * spread_mm  # anywhere in that camera's view
        elif rng.random() < 0.5:  # between two cameras: seen by both
            facing = facing / np.linalg.norm(facing)
            other = centres[rng.integers(len(centres))] - position
            facing = facing + other / np.linalg.norm(other)
        facing /= np.linalg.norm(facing)
        tilt = Rotation.from_rotvec(rng.normal(size=3) * np.radians(tilt_deg) / 2).as_matrix()
        normal = tilt @ facing  # the board's printed side faces along `normal` (its -z axis)
        z = -normal
        helper = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
        x = np.cross(helper, z)
        x /= np.linalg.norm(x)
        y = np.cross(z, x)
        spin = Rotation.from_rotvec(z * rng.uniform(-np.pi, np.pi)).as_matrix()
        rot = spin @ np.stack([x, y, z], 1)
        poses[row] = (rot, position - rot @ board_centre)
    return poses


def observe(
    cameras: CameraSet,
    spec: BoardSpec,
    board_poses: dict[int, tuple[np.ndarray, np.ndarray]],
    rng: np.random.Generator,
    noise_px: float = 0.4,
    max_obliquity_deg: float = 70.0,
    occlusion_prob: float = 0.2,
    min_corners: int = 6,
    margin_px: float = 4.0,
) -> dict[str, CameraDetections]:
    """Each camera's detections of the board poses (see module doc for what is culled)."""
    corners = spec.corner_points_mm()
    ids = np.arange(len(corners))
    out = {}
    for cam in cameras:
        rows, cids, xys = [], [], []
        w, h = cam.size
        for row, (rot, trans) in board_poses.items():
            world = corners @ rot.T + trans
            normal = -rot[:, 2]  # printed side
            to_cam = cam.centre - world.mean(0)
            cos = normal @ to_cam / np.linalg.norm(to_cam)
            if cos <= np.cos(np.radians(max_obliquity_deg)):
                continue  # back-facing or too oblique to detect
            cam_pts = world @ cam.rotation_matrix.T + cam.translation
            if (cam_pts[:, 2] <= 10).any():
                continue
            px = cam.project(world)
            keep = (px[:, 0] >= margin_px) & (px[:, 0] < w - margin_px)
            keep &= (px[:, 1] >= margin_px) & (px[:, 1] < h - margin_px)
            if rng.random() < occlusion_prob:  # something in front of part of the board
                direction = rng.normal(size=2)
                local = corners[:, :2] - corners[:, :2].mean(0)
                keep &= local @ direction < rng.uniform(0.0, 0.6) * np.abs(local @ direction).max()
            if keep.sum() < min_corners:
                continue
            noisy = px[keep] + rng.normal(0, noise_px, (int(keep.sum()), 2))
            rows.append(np.full(int(keep.sum()), row))
            cids.append(ids[keep])
            xys.append(noisy)
        out[cam.name] = CameraDetections(
            camera=cam.name,
            image_size=cam.size,
            row=np.concatenate(rows) if rows else np.zeros(0),
            corner_id=np.concatenate(cids) if cids else np.zeros(0),
            xy=np.concatenate(xys) if xys else np.zeros((0, 2)),
        )
    return out


def synthetic_calibration(
    cameras: int = 4,
    rows: int = 150,
    noise_px: float = 0.4,
    spec: BoardSpec | None = None,
    fisheye: bool = False,
    seed: int = 7,
    **camera_kw,
) -> SyntheticCalibration:
    rng = np.random.default_rng(seed)
    spec = spec or BoardSpec(squares_x=10, squares_y=7, square_mm=60.0, marker_mm=45.0)
    cams = ring_cameras(cameras, fisheye=fisheye, rng=rng, **camera_kw)
    poses = random_board_poses(cams, spec, rows, rng)
    return SyntheticCalibration(cams, spec, poses, observe(cams, spec, poses, rng, noise_px=noise_px))


def compare_to_truth(est: CameraSet, truth: CameraSet) -> dict[str, dict]:
    """Per camera: relative focal-length and principal-point errors, and the centre (mm) and
    orientation (degrees) errors after the similarity (Umeyama) alignment of the estimated
    camera centres onto the true ones (the two world frames differ by a similarity). Two cameras
    (or centres on one line) leave the roll about their baseline free: then each camera's axes,
    drawn from its centre as long as the mean baseline, join the alignment."""
    src, dst = np.array([c.centre for c in est]), np.array([c.centre for c in truth])
    spread = np.linalg.svd(dst - dst.mean(0), compute_uv=False)
    if len(dst) < 3 or spread[1] < 1e-3 * spread[0]:
        src = _with_axes(src, [c.rotation_matrix for c in est])
        dst = _with_axes(dst, [c.rotation_matrix for c in truth])
    scale, rot, trans = umeyama(src, dst)
    out = {}
    for e, t in zip(est, truth, strict=True):
        out[e.name] = {
            "focal_rel": float(np.max(np.abs(np.diag(e.matrix)[:2] / np.diag(t.matrix)[:2] - 1))),
            "principal_rel": float(np.max(np.abs(e.matrix[:2, 2] / t.matrix[:2, 2] - 1))),
            "centre_mm": float(np.linalg.norm(scale * rot @ e.centre + trans - t.centre)),
            "orientation_deg": rotation_angle_deg(e.rotation_matrix @ rot.T, t.rotation_matrix),
        }
    return out


def _with_axes(centres: np.ndarray, rotations: list[np.ndarray]) -> np.ndarray:
    """The centres, then each camera's x, y, z axis end points at the mean baseline's length."""
    length = float(np.mean(np.linalg.norm(centres - centres.mean(0), axis=1))) or 1.0
    ends = [c + length * r[k] for c, r in zip(centres, rotations, strict=True) for k in range(3)]
    return np.vstack([centres, np.array(ends)])
