"""Vectorised rigid transforms and OpenCV's camera models in NumPy: the bundle adjustment evaluates
every observation of every camera in one call, so these work on arrays of poses at once. They
reproduce `cv2.projectPoints` / `cv2.fisheye.projectPoints` exactly (tests compare them)."""

from __future__ import annotations

import numpy as np


def rotation_to_rvec(matrices: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices → (N, 3) rotation vectors."""
    import cv2

    mats = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
    return np.array([cv2.Rodrigues(m)[0].reshape(3) for m in mats])


def compose(r_a: np.ndarray, t_a: np.ndarray, r_b: np.ndarray, t_b: np.ndarray):
    """(R_a, t_a) ∘ (R_b, t_b): x ↦ R_a (R_b x + t_b) + t_a."""
    return r_a @ r_b, r_a @ t_b + t_a


def invert(r: np.ndarray, t: np.ndarray):
    return r.T, -r.T @ t


def distort_pinhole(xy: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """Normalised (M, 2) → distorted normalised (M, 2); dist (M, 5) or (5,): k1 k2 p1 p2 k3."""
    x, y = xy[:, 0], xy[:, 1]
    d = np.broadcast_to(dist, (len(xy), 5)) if dist.ndim == 1 else dist
    k1, k2, p1, p2, k3 = d[:, 0], d[:, 1], d[:, 2], d[:, 3], d[:, 4]
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([xd, yd], 1)


def distort_fisheye(xy: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """OpenCV's fisheye (equidistant) model; dist (M, 4) or (4,): k1..k4."""
    d = np.broadcast_to(dist, (len(xy), 4)) if dist.ndim == 1 else dist
    r = np.linalg.norm(xy, axis=1)
    theta = np.arctan(r)
    t2 = theta * theta
    theta_d = theta * (1 + t2 * (d[:, 0] + t2 * (d[:, 1] + t2 * (d[:, 2] + t2 * d[:, 3]))))
    scale = np.where(r > 1e-12, theta_d / np.where(r > 1e-12, r, 1.0), 1.0)
    return xy * scale[:, None]


def project_camera_points(
    points_cam: np.ndarray,
    fx,
    fy,
    cx,
    cy,
    dist: np.ndarray,
    fisheye: bool,  # noqa: ANN001
) -> np.ndarray:
    """Camera-frame points (M, 3) → pixels (M, 2); intrinsics may be scalars or (M,) arrays."""
    z = points_cam[:, 2]
    z = np.where(np.abs(z) < 1e-9, 1e-9, z)
    xy = points_cam[:, :2] / z[:, None]
    xy = distort_fisheye(xy, dist) if fisheye else distort_pinhole(xy, dist)
    return np.stack([fx * xy[:, 0] + cx, fy * xy[:, 1] + cy], 1)


def umeyama(source: np.ndarray, target: np.ndarray, with_scale: bool = True):
    """Similarity (s, R, t) minimising ||target - (s R source + t)||² (Umeyama 1991). (N, 3) each."""
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    cov = b.T @ a / len(src)
    u, d, vt = np.linalg.svd(cov)
    s_fix = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        s_fix[2, 2] = -1
    rot = u @ s_fix @ vt
    var_s = (a * a).sum() / len(src)
    scale = float(np.trace(np.diag(d) @ s_fix) / var_s) if with_scale else 1.0
    trans = mu_d - scale * rot @ mu_s
    return scale, rot, trans


def rotation_angle_deg(r_a: np.ndarray, r_b: np.ndarray) -> float:
    """Angle of the rotation taking r_b to r_a (degrees)."""
    cos = (np.trace(r_a @ r_b.T) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def average_rotations(mats: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Chordal L2 mean of (N, 3, 3) rotations (quaternion eigenvector method)."""
    from scipy.spatial.transform import Rotation

    quats = Rotation.from_matrix(mats).as_quat()
    w = np.ones(len(quats)) if weights is None else np.asarray(weights, dtype=np.float64)
    m = (quats * w[:, None]).T @ quats
    vals, vecs = np.linalg.eigh(m)
    return Rotation.from_quat(vecs[:, -1]).as_matrix()
