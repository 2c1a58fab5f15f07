"""Ground truth for triangulation and exports, no model needed: known cameras around a moving
3D skeleton (the keypoints.py set), its projections as 2D keypoints with noise, missing points and
outliers, and a synced session around them (manifest, match table, small synced videos that show
the projected points, their .pts and map files), so every stage after 2D pose runs on it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from controller.dataset.cameras import CameraModel, save_calibration_toml
from controller.dataset.pose.keypoints import GROUPS, KEYPOINT_NAMES, group_slices
from controller.dataset.pose.pose2d import Pose2D
from syncrig_agent.contract.formats import SessionManifest, write_manifest, write_pts
from syncrig_agent.contract.layout import SessionLayout
from syncrig_agent.sim.charuco_sim import look_at


def ring_cameras(
    count: int,
    radius_mm: float = 3000.0,
    height_mm: float = 1600.0,
    size: tuple[int, int] = (1280, 720),
    focal_px: float = 1000.0,
    target_mm: tuple[float, float, float] = (0.0, 0.0, 1000.0),
    seed: int = 0,
) -> list[CameraModel]:
    """Cameras on a ring around the origin (z up, mm), looking at `target_mm`, mild distortion."""
    import cv2

    rng = np.random.default_rng(seed)
    cams = []
    for i in range(count):
        angle = 2 * np.pi * i / count + rng.uniform(-0.1, 0.1)
        centre = np.array(
            [radius_mm * np.cos(angle), radius_mm * np.sin(angle), height_mm + rng.uniform(-300, 300)]
        )
        rot = look_at(centre, np.asarray(target_mm, float))
        fx = focal_px * rng.uniform(0.95, 1.05)
        matrix = np.array(
            [
                [fx, 0, size[0] / 2 + rng.uniform(-10, 10)],
                [0, fx, size[1] / 2 + rng.uniform(-10, 10)],
                [0, 0, 1],
            ]
        )
        dist = np.array([rng.uniform(-0.05, 0.05), rng.uniform(-0.02, 0.02), 0.0, 0.0, 0.0])
        rvec = cv2.Rodrigues(rot)[0].reshape(3)
        cams.append(CameraModel(f"cam{i}", size, matrix, dist, rvec, -rot @ centre))
    return cams


def skeleton_template() -> np.ndarray:
    """(K, 3) a standing person (mm, z up, facing +x) for the keypoints.py set."""
    body = {
        "nose": (90, 0, 1650), "left_eye_inner": (80, 15, 1670), "left_eye": (78, 30, 1672),
        "left_eye_outer": (74, 42, 1670), "right_eye_inner": (80, -15, 1670), "right_eye": (78, -30, 1672),
        "right_eye_outer": (74, -42, 1670), "left_ear": (0, 75, 1650), "right_ear": (0, -75, 1650),
        "mouth_left": (80, 25, 1610), "mouth_right": (80, -25, 1610), "left_shoulder": (0, 180, 1420),
        "right_shoulder": (0, -180, 1420), "left_elbow": (0, 200, 1130), "right_elbow": (0, -200, 1130),
        "left_wrist": (60, 210, 880), "right_wrist": (60, -210, 880), "left_pinky": (80, 220, 800),
        "right_pinky": (80, -220, 800), "left_index": (95, 205, 795), "right_index": (95, -205, 795),
        "left_thumb": (95, 190, 830), "right_thumb": (95, -190, 830), "left_hip": (0, 100, 950),
        "right_hip": (0, -100, 950), "left_knee": (20, 105, 520), "right_knee": (20, -105, 520),
        "left_ankle": (0, 105, 90), "right_ankle": (0, -105, 90), "left_heel": (-40, 105, 50),
        "right_heel": (-40, -105, 50), "left_foot_index": (150, 110, 20), "right_foot_index": (150, -110, 20),
    }  # fmt: skip
    slices = group_slices()
    out = np.zeros((len(KEYPOINT_NAMES), 3))
    out[slices["body"]] = [body[n] for n in GROUPS[0].names]
    rng = np.random.default_rng(1)
    for side, sign in (("left_hand", 1), ("right_hand", -1)):
        wrist = np.array(body[f"{side.split('_')[0]}_wrist"], float)
        # Fingers fan out downwards from the wrist, 0–180 mm long.
        k = np.arange(21)
        finger = np.maximum(k - 1, 0) // 4
        joint = np.where(k == 0, 0, (k - 1) % 4 + 1)
        offs = np.stack([20.0 * finger + 40, sign * (10.0 * finger), -35.0 * joint - 10 * (k > 0)], axis=1)
        out[slices[side]] = wrist + offs + rng.normal(0, 2, (21, 3))
    head = np.array([40.0, 0.0, 1640.0])
    d = rng.normal(size=(478, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    d[:, 0] = np.abs(d[:, 0])  # the face's front half
    out[slices["face"]] = head + d * np.array([90.0, 75.0, 110.0])
    return out


def skeleton_motion(frames: int, fps: float, seed: int = 0) -> np.ndarray:
    """(T, K, 3) the template walking slowly on a circle, turning, with each keypoint wobbling."""
    t = np.arange(frames) / fps
    tpl = skeleton_template()
    rng = np.random.default_rng(seed)
    heading = 0.4 * t
    cos, sin = np.cos(heading), np.sin(heading)
    rot = np.zeros((frames, 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = cos, -sin, sin, cos, 1
    centre = np.stack([400 * np.sin(0.3 * t), 400 * np.cos(0.3 * t) - 400, np.zeros(frames)], axis=1)
    phase = rng.uniform(0, 2 * np.pi, (1, len(tpl), 3))
    wobble = 25.0 * np.sin(2 * np.pi * 0.8 * t[:, None, None] + phase)
    return np.einsum("tij,kj->tki", rot, tpl) + centre[:, None, :] + wobble


@dataclass
class SyntheticObservations:
    pixels: np.ndarray  # (T, C, K, 2) observed pixels (noise, outliers; NaN where missing)
    confidence: np.ndarray  # (T, C, K)
    outlier: np.ndarray  # (T, C, K) bool: replaced by an outlier
    true_pixels: np.ndarray  # (T, C, K, 2) noise-free projections
    noisy_pixels: np.ndarray  # (T, C, K, 2) noise only (no outliers, nothing missing)


def observe(
    cameras: list[CameraModel],
    points: np.ndarray,
    noise_px: float = 1.0,
    outlier_frac: float = 0.0,
    missing_frac: float = 0.0,
    outlier_px: tuple[float, float] = (25.0, 200.0),
    seed: int = 0,
) -> SyntheticObservations:
    """Project points (T, K, 3) through every camera with Gaussian noise (σ per axis), replace a
    fraction by outliers (displaced 25–200 px in a random direction) and drop a fraction."""
    rng = np.random.default_rng(seed)
    true = np.stack([c.project(points) for c in cameras], axis=1)  # (T, C, K, 2)
    noisy = true + rng.normal(0, noise_px, true.shape)
    obs = noisy.copy()
    outlier = rng.random(true.shape[:-1]) < outlier_frac
    dist = rng.uniform(*outlier_px, outlier.sum())
    ang = rng.uniform(0, 2 * np.pi, outlier.sum())
    obs[outlier] += np.stack([dist * np.cos(ang), dist * np.sin(ang)], axis=1)
    conf = rng.uniform(0.6, 1.0, true.shape[:-1])
    missing = rng.random(true.shape[:-1]) < missing_frac
    obs[missing] = np.nan
    conf[missing] = 0.0
    outlier &= ~missing
    return SyntheticObservations(obs, conf, outlier, true, noisy)


def write_synthetic_session(
    session: Path,
    cameras: list[CameraModel],
    points: np.ndarray,
    fps: float = 30.0,
    noise_px: float = 1.0,
    outlier_frac: float = 0.05,
    missing_frac: float = 0.1,
    drop_prob: float = 0.03,
    video_scale: float = 0.25,
    seed: int = 0,
) -> SyntheticObservations:
    """A synced session with 2D keypoints and calibration, as if `sync`, `calibrate` and `pose` had
    run: session.json, synced/match.csv (+ dropped frames), synced/<cam>.mp4 (points drawn at
    `video_scale` of the camera's size, which the manifest states) + .pts + .map.csv,
    pose2d/<cam>.npz and calibration/calibration.toml."""
    import av

    from controller.pipeline.matching import EMPTY, MatchTable, write_match_csv
    from controller.pipeline.outputs import write_map_csv

    session = Path(session)
    layout = SessionLayout(session)
    synced = layout.synced
    rng = np.random.default_rng(seed + 7)
    frames = points.shape[0]
    period_ns = round(1e9 / fps)
    obs = observe(cameras, points, noise_px, outlier_frac, missing_frac, seed=seed)
    present = rng.random((frames, len(cameras))) >= drop_prob
    synced.path.mkdir(parents=True, exist_ok=True)
    manifest = SessionManifest(
        id=session.name,
        subject="synthetic",
        project="synthetic",
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        fps=fps,
        period_ns=period_ns,
        t0_ns=1_750_000_000_000_000_000,
        cameras=[
            {
                "name": c.name,
                "host": "sim",
                "role": "server" if i == 0 else "client",
                "width": c.size[0],
                "height": c.size[1],
                "frames": int(present[:, i].sum()),
                "expected_frames": frames,
                "dropped": int((~present[:, i]).sum()),
            }
            for i, c in enumerate(cameras)
        ],  # fmt: skip
        notes=["synthetic pose session (controller.dataset.pose.synthetic)"],
    )
    write_manifest(session, manifest)
    cells = np.where(present, np.cumsum(present, axis=0) - 1, EMPTY)
    write_match_csv(synced.match_csv, MatchTable.on_grid([c.name for c in cameras], cells, period_ns))
    jitter = rng.integers(-200_000, 200_000, (frames, len(cameras)))
    for ci, cam in enumerate(cameras):
        rows = np.flatnonzero(present[:, ci])
        capture = rows * period_ns + jitter[rows, ci]
        write_pts(synced.pts(cam.name), capture)
        table = np.stack(
            [np.arange(rows.size), rows, rows, capture, capture, np.zeros_like(rows), np.zeros_like(rows)],
            axis=1,
        )
        write_map_csv(synced.map(cam.name), table)
        w, h = (int(round(s * video_scale / 2)) * 2 for s in cam.size)
        with av.open(str(synced.video(cam.name)), "w") as out:
            stream = out.add_stream("libx264", rate=Fraction(round(fps * 1000), 1000))
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.time_base = Fraction(1, 1_000_000)
            stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
            for k, r in enumerate(rows):
                img = np.zeros((h, w, 3), np.uint8)
                px = np.round(obs.true_pixels[r, ci] * video_scale).astype(int)
                ok = (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
                img[px[ok, 1], px[ok, 0]] = 255
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts, frame.time_base = int(capture[k] // 1000), Fraction(1, 1_000_000)
                for packet in stream.encode(frame):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        kp = np.concatenate([obs.pixels[rows, ci], obs.confidence[rows, ci][..., None]], axis=-1)
        Pose2D(
            cam.name,
            kp,
            rows,
            capture,
            KEYPOINT_NAMES,
            cam.size,
            meta={"model": "synthetic ground truth", "model_version": "1", "noise_px": noise_px},
        ).save(layout.pose2d_file(cam.name))
    save_calibration_toml(layout.calibration_toml, cameras, {"source": "synthetic_pose"})
    return obs
