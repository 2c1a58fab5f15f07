"""Ground truth of the simulated calibration scene: cameras on an arc, a ChArUco board in motion.

The one home of the charuco scene's geometry, imported by the simulated agents (which render it)
and by the desktop (which writes `ground_truth.json` and checks calibrations against it).
Plain numpy, JSON-ready dicts; no OpenCV.

World frame (mm): origin at the centre of the capture volume, X to the right and Z up as seen from
the middle of the camera arc, Y away from the cameras (into the volume). Cameras sit on an arc of
radius `distance_mm` around the volume on its −Y side, alternately a little above and below the
centre plane (non-coplanar centres condition the bundle adjustment), each looking at the origin.
Camera models use OpenCV's (and aniposelib's) convention: x_cam = R·X + t, Rodrigues `rotation`,
pinhole `matrix`, `distortions` k1 k2 p1 p2 k3.

The board's pose is a smooth, periodic function of the TRUE capture time (Unix ns): every camera
sees the same board at the same instant, so a sync error shows as a board in different places.
Harmonics of one period move it across the volume (lateral, vertical, depth) while it pitches,
yaws and rolls, so over a period each camera sees it near every part of its image, near and far,
tilted both ways: what a calibration needs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "DEFAULT_BOARD",
    "board_pose",
    "camera_config",
    "rodrigues",
    "rotation_vector",
    "scene_description",
    "validate_scene_config",
]

# The simulated board: 7x5 squares of 40 mm with 30 mm markers (an A3-sized print); sized so the
# markers stay readable (≥ ~3 px per marker cell) at 640x480 across the capture volume.
DEFAULT_BOARD: dict = {
    "squares_x": 7,
    "squares_y": 5,
    "square_mm": 40.0,
    "marker_mm": 30.0,
    "dictionary": "DICT_4X4_50",
    "legacy_pattern": False,
}
DEFAULT_PERIOD_S = 8.0
DEFAULT_NOISE_SIGMA = 2.0  # sensor noise, luma levels (Gaussian sigma)
BOARD_FIELDS = tuple(DEFAULT_BOARD)


def rodrigues(vectors: Sequence[float] | np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) → rotation matrices (..., 3, 3), as cv2.Rodrigues computes them;
    one vector (3,) gives one (3, 3) matrix. The one Rodrigues formula of both packages: the
    simulated agents render with it and the desktop's calibration (bundle adjustment, camera
    models) evaluates it on arrays of poses at once, so it is vectorised and plain numpy."""
    v = np.asarray(vectors, dtype=np.float64)
    lead = v.shape[:-1]
    v = v.reshape(-1, 3)
    theta = np.linalg.norm(v, axis=1)
    small = theta < 1e-12
    k = v / np.where(small, 1.0, theta)[:, None]

    def skew(a: np.ndarray) -> np.ndarray:
        zero = np.zeros(len(a))
        return np.stack(
            [
                np.stack([zero, -a[:, 2], a[:, 1]], 1),
                np.stack([a[:, 2], zero, -a[:, 0]], 1),
                np.stack([-a[:, 1], a[:, 0], zero], 1),
            ],
            1,
        )

    kx = skew(k)
    sin, cos = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    out = np.eye(3) + sin * kx + (1 - cos) * (kx @ kx)
    # Near zero the first-order form I + [v]× keeps finite-difference derivatives smooth (the
    # bundle adjustment's Jacobian) where the axis k is undefined.
    out[small] = np.eye(3) + skew(v[small])
    return out.reshape(*lead, 3, 3)


def rotation_vector(matrix: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix → rotation vector (inverse of `rodrigues`)."""
    r = np.asarray(matrix, dtype=np.float64)
    cos = min(1.0, max(-1.0, (np.trace(r) - 1) / 2))
    theta = math.acos(cos)
    if theta < 1e-12:
        return np.zeros(3)
    if math.pi - theta < 1e-6:  # 180°: axis from the symmetric part
        axis = np.sqrt(np.maximum((np.diag(r) + 1) / 2, 0))
        i = int(np.argmax(axis))
        axis[(i + 1) % 3] = math.copysign(axis[(i + 1) % 3], r[i, (i + 1) % 3])
        axis[(i + 2) % 3] = math.copysign(axis[(i + 2) % 3], r[i, (i + 2) % 3])
        return axis / np.linalg.norm(axis) * theta
    axis = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / (2 * math.sin(theta))
    return axis * theta


def look_at(centre: np.ndarray, target: np.ndarray, up: tuple = (0.0, 0.0, 1.0)) -> np.ndarray:
    """World → camera rotation (OpenCV axes: x right, y down, z forward) of a camera at `centre`
    looking at `target`, image 'up' towards world `up`. The one home of this for every synthetic
    rig (the simulated scene, calibration and pose test rigs)."""
    z = np.asarray(target, float) - np.asarray(centre, float)
    z = z / np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, float))
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def default_distance_mm(board: Mapping) -> float:
    """Camera-to-volume-centre distance at which the board spans ~40% of the image width."""
    return 2.25 * float(board["squares_x"]) * float(board["square_mm"])


def camera_ring(
    count: int, width: int, height: int, board: Mapping, distance_mm: float | None = None
) -> list[dict]:
    """Camera models (JSON-ready dicts: size, matrix, distortions, rotation, translation) of `count`
    cameras on an arc around the capture volume, with slightly different lenses each."""
    if count < 1:
        raise ValueError("need at least one camera")
    distance = float(distance_mm or default_distance_mm(board))
    span = math.radians(min(120.0, 35.0 * (count - 1)))
    cameras = []
    for i in range(count):
        azimuth = 0.0 if count == 1 else -span / 2 + i * span / (count - 1)
        height_mm = 0.0 if count == 1 else 0.12 * distance * (1 if i % 2 else -1)
        centre = np.array([distance * math.sin(azimuth), -distance * math.cos(azimuth), height_mm])
        rot = look_at(centre, np.zeros(3))
        # Deterministic per-camera lens and sensor placement (manufacturing spread).
        rng = np.random.default_rng(1000 + i)
        f = 0.9 * width * (1 + rng.uniform(-0.04, 0.04))
        cx = width / 2 + rng.uniform(-0.015, 0.015) * width
        cy = height / 2 + rng.uniform(-0.015, 0.015) * height
        k1, k2 = rng.uniform(-0.2, -0.08), rng.uniform(0.0, 0.08)
        p1, p2 = rng.uniform(-1e-3, 1e-3, size=2)
        cameras.append(
            {
                "size": [int(width), int(height)],
                "matrix": [[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]],
                "distortions": [k1, k2, p1, p2, 0.0],
                "rotation": rotation_vector(rot).tolist(),
                "translation": (-rot @ centre).tolist(),
            }
        )
    return cameras


def default_trajectory(width: int, height: int, board: Mapping, distance_mm: float | None = None) -> dict:
    """Board motion that sweeps a centre camera's view (board edges reach the image borders)."""
    distance = float(distance_mm or default_distance_mm(board))
    board_w = float(board["squares_x"]) * float(board["square_mm"])
    board_h = float(board["squares_y"]) * float(board["square_mm"])
    half_w = distance * 0.5 / 0.9  # half the view width at the volume centre (f ≈ 0.9·width)
    half_h = half_w * height / width
    return {
        "period_s": DEFAULT_PERIOD_S,
        "centre_mm": [0.0, 0.0, 0.0],
        # Lateral / depth / vertical amplitude of the board centre.
        "amplitude_mm": [
            max(0.0, half_w - 0.25 * board_w),
            0.25 * distance,
            max(0.0, half_h - 0.2 * board_h),
        ],
        "yaw_deg": 22.0,  # turning about the vertical (towards the cameras at the arc's ends)
        "pitch_deg": 28.0,  # tilting top towards / away from the cameras
        "roll_deg": 25.0,  # rotating in its own plane
    }


def board_pose(trajectory: Mapping, true_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """(R, t): board frame → world at true capture time `true_ns` (Unix epoch ns).

    Board frame: origin at the board's top-left corner, x along its columns, y down its rows
    (BoardSpec.corner_points_mm), z into the board; at rest the printed face looks at the cameras."""
    period_ns = int(round(float(trajectory["period_s"]) * 1e9))
    phase = 2 * math.pi * ((int(true_ns) % period_ns) / period_ns)
    ax, ay, az = (float(v) for v in trajectory["amplitude_mm"])
    centre = np.asarray(trajectory["centre_mm"], dtype=np.float64) + np.array(
        [
            ax * (0.7 * math.sin(phase + 0.3) + 0.3 * math.sin(4 * phase + 1.1)),
            ay * math.sin(3 * phase + 0.5),
            az * (0.6 * math.sin(2 * phase + 0.7) + 0.4 * math.sin(5 * phase + 2.0)),
        ]
    )
    yaw = math.radians(float(trajectory["yaw_deg"])) * math.sin(2 * phase + 1.9)
    pitch = math.radians(float(trajectory["pitch_deg"])) * (
        0.7 * math.sin(3 * phase + 2.3) + 0.3 * math.sin(7 * phase)
    )
    roll = math.radians(float(trajectory["roll_deg"])) * math.sin(phase + 0.9)
    # At rest: board x → world +X, board y (down its rows) → world −Z, board z → world +Y.
    rest = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    rot = rodrigues([0.0, 0.0, yaw]) @ rest @ rodrigues([pitch, 0.0, 0.0]) @ rodrigues([0.0, 0.0, roll])
    board_centre = np.array(
        [float(trajectory["board_size_mm"][0]) / 2, float(trajectory["board_size_mm"][1]) / 2, 0.0]
    )
    return rot, centre - rot @ board_centre


def scene_description(
    camera_names: Sequence[str],
    width: int,
    height: int,
    board: Mapping | None = None,
    distance_mm: float | None = None,
    noise_sigma: float = DEFAULT_NOISE_SIGMA,
) -> dict:
    """The whole simulated calibration scene (ground truth): board, trajectory, every camera."""
    board = dict(board or DEFAULT_BOARD)
    trajectory = default_trajectory(width, height, board, distance_mm)
    trajectory["board_size_mm"] = [
        float(board["squares_x"]) * float(board["square_mm"]),
        float(board["squares_y"]) * float(board["square_mm"]),
    ]
    cameras = camera_ring(len(camera_names), width, height, board, distance_mm)
    return {
        "scene": "charuco",
        "board": board,
        "trajectory": trajectory,
        "noise_sigma": float(noise_sigma),
        "cameras": {name: cam for name, cam in zip(camera_names, cameras, strict=True)},
        "conventions": (
            "world mm, origin at the capture volume's centre, Z up; camera: x_cam = R(rotation)·X + "
            "translation, OpenCV pinhole + k1 k2 p1 p2 k3; board pose = "
            "syncrig_agent.sim.charuco_sim.board_pose(trajectory, true capture ns): board frame → world"
        ),
    }


def camera_config(description: Mapping, camera: str) -> dict:
    """What one simulated agent needs to render the scene (its `simulation.charuco` settings)."""
    return {
        "board": dict(description["board"]),
        "trajectory": dict(description["trajectory"]),
        "noise_sigma": float(description["noise_sigma"]),
        "camera": dict(description["cameras"][camera]),
    }


def _numbers(value: object, shape: tuple[int, ...], name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be numbers") from None
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: must be {'x'.join(map(str, shape))} finite numbers, got {value!r}")
    return arr


def validate_scene_config(config: Mapping, width: int, height: int) -> dict:
    """Check one agent's charuco scene settings (camera + board + trajectory); returns a full copy
    (defaults filled in: a lone camera in front of the volume). Raises ValueError naming the field."""
    if not isinstance(config, Mapping):
        raise ValueError("must be an object")
    unknown = set(config) - {"board", "trajectory", "noise_sigma", "camera"}
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(sorted(unknown))}")
    board = dict(config.get("board") or DEFAULT_BOARD)
    if set(board) - set(BOARD_FIELDS):
        raise ValueError(f"board: unknown field(s) {sorted(set(board) - set(BOARD_FIELDS))}")
    board = {**DEFAULT_BOARD, **board}
    for key in ("squares_x", "squares_y"):
        if not isinstance(board[key], int) or not 3 <= board[key] <= 100:
            raise ValueError(f"board.{key}: must be an integer 3..100")
    if not 0 < float(board["marker_mm"]) < float(board["square_mm"]):
        raise ValueError("board: need 0 < marker_mm < square_mm")
    if not str(board["dictionary"]).startswith("DICT_"):
        raise ValueError(f"board.dictionary: not an ArUco dictionary name: {board['dictionary']!r}")
    default = scene_description(["cam"], width, height, board)
    trajectory = {**default["trajectory"], **dict(config.get("trajectory") or {})}
    if not 0.5 <= float(trajectory["period_s"]) <= 3600:
        raise ValueError("trajectory.period_s: must be 0.5..3600 s")
    trajectory["board_size_mm"] = default["trajectory"]["board_size_mm"]  # always the board's own
    for key, shape in (("centre_mm", (3,)), ("amplitude_mm", (3,))):
        _numbers(trajectory[key], shape, f"trajectory.{key}")
    camera = {**default["cameras"]["cam"], **dict(config.get("camera") or {})}
    matrix = _numbers(camera["matrix"], (3, 3), "camera.matrix")
    if matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
        raise ValueError("camera.matrix: focal lengths must be positive")
    _numbers(camera["distortions"], (5,), "camera.distortions")
    _numbers(camera["rotation"], (3,), "camera.rotation")
    _numbers(camera["translation"], (3,), "camera.translation")
    if list(camera["size"]) != [width, height]:
        raise ValueError(f"camera.size: {camera['size']} differs from the frame size {width}x{height}")
    noise = float(config.get("noise_sigma", DEFAULT_NOISE_SIGMA))
    if not 0 <= noise <= 50:
        raise ValueError("noise_sigma: must be 0..50 luma levels")
    return {"board": board, "trajectory": trajectory, "noise_sigma": noise, "camera": camera}
