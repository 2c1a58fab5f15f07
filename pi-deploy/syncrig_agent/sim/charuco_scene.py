"""The synthetic camera's calibration picture: a ChArUco board moving through the capture volume,
filmed through a known lens (intrinsics, distortion) from a known place (extrinsics).

Geometry and ground truth live in `charuco_sim` (shared with the desktop); this renders it. The
board's pose is a function of the TRUE capture time, so all cameras film the same board at the
same instant and a sync error shows as a displaced board.

Rendering, per output pixel, is exact inverse mapping: the pixel's undistorted viewing ray
(precomputed once per camera by inverting the lens model) is intersected with the board plane (one
homography per frame) and the board's texture is sampled there. The texture is the printed
board's exact area-coverage raster (`charuco_board`) at about the output's own resolution, so edges
are anti-aliased without moving the corners: the projected ground-truth corners are where the
pixels put them. Only the board's bounding box (its outline projected through the lens) is
computed. On top: brightness falling with obliquity, Gaussian sensor noise (a bank of precomputed
frames), and the scene's usual timecode and frame-index stamps, drawn last (tests decode them; a
board passing under them is hidden there, as behind any occluder).

Simulation only: OpenCV is imported lazily here, which is fine because simulated agents run on the
desktop, never on a Pi (the Pi agent never imports this module).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from syncrig_agent.sim.charuco_board import board_layout, rasterize
from syncrig_agent.sim.charuco_sim import board_pose, rodrigues, validate_scene_config
from syncrig_agent.sim.scene import _QUIET_LEVEL, SyntheticScene

__all__ = ["CharucoScene"]

PAPER = 215.0  # luma of the board's white paper at normal incidence
INK = 28.0  # luma of its black print
BACK = 120.0  # the board's unprinted back
_NOISE_FRAMES = 4
_OUTLINE_SAMPLES = 24  # points per board edge when projecting its outline (distortion bends edges)


class CharucoScene(SyntheticScene):
    """A SyntheticScene whose moving content is the ChArUco board (same ring-buffer contract)."""

    def __init__(self, width: int, height: int, camera_name: str, config: Mapping, seed: int = 0) -> None:
        import cv2

        super().__init__(width, height, camera_name, seed=seed)
        self.config = validate_scene_config(config, self.width, self.height)
        cam = self.config["camera"]
        self.matrix = np.asarray(cam["matrix"], dtype=np.float64)
        self.distortions = np.asarray(cam["distortions"], dtype=np.float64)
        self.rotation = rodrigues(cam["rotation"])  # world → camera
        self.translation = np.asarray(cam["translation"], dtype=np.float64)
        self.trajectory = self.config["trajectory"]

        # Undistorted normalised ray of every output pixel centre: the lens model inverted once.
        ys, xs = np.mgrid[0 : self.height, 0 : self.width].astype(np.float64)
        pixels = np.stack([xs.ravel(), ys.ravel()], axis=1).reshape(-1, 1, 2)
        criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
        rays = cv2.undistortPointsIter(pixels, self.matrix, self.distortions, None, None, criteria)
        # float32 is ample (1e-4 px at these focal lengths) and lets OpenCV map whole regions.
        self._rays = rays.reshape(self.height, self.width, 2).astype(np.float32)

        # Texture at about the output's resolution where the board is nearest (oversampling
        # much more would alias under bilinear sampling; the raster is area-exact).
        board = self.config["board"]
        layout = board_layout(board)
        distance = float(np.linalg.norm(self.translation)) or 1000.0
        near = max(distance - float(self.trajectory["amplitude_mm"][1]), 0.25 * distance)
        self._ppm = float(self.matrix[0, 0]) / near
        self._margin_mm = 0.5 * float(board["square_mm"])  # white paper around the printed board
        tex_w = int(np.ceil((layout.width_mm + 2 * self._margin_mm) * self._ppm))
        tex_h = int(np.ceil((layout.height_mm + 2 * self._margin_mm) * self._ppm))
        origin = (self._margin_mm * self._ppm, self._margin_mm * self._ppm)
        coverage = rasterize(layout, self._ppm, (tex_w, tex_h), origin)
        self._texture = (PAPER - (PAPER - INK) * coverage).astype(np.float32)
        self._tex_size = (tex_w, tex_h)
        self._outline = self._outline_points(layout.width_mm, layout.height_mm)

        rng = self._rng()  # deterministic per camera, in every process
        sigma = float(self.config["noise_sigma"])
        self._noise = [
            np.round(rng.normal(0.0, sigma, (self.height, self.width))).astype(np.int16)
            for _ in range(_NOISE_FRAMES if sigma > 0 else 0)
        ]

    def _outline_points(self, width_mm: float, height_mm: float) -> np.ndarray:
        m = self._margin_mm
        t = np.linspace(0.0, 1.0, _OUTLINE_SAMPLES)
        x0, x1, y0, y1 = -m, width_mm + m, -m, height_mm + m
        xs = np.concatenate(
            [x0 + (x1 - x0) * t, np.full_like(t, x1), x1 - (x1 - x0) * t, np.full_like(t, x0)]
        )
        ys = np.concatenate(
            [np.full_like(t, y0), y0 + (y1 - y0) * t, np.full_like(t, y1), y1 - (y1 - y0) * t]
        )
        return np.stack([xs, ys, np.zeros_like(xs)], axis=1)

    def board_to_camera(self, true_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """(R, t): board frame → this camera's frame at true capture time `true_ns`."""
        rot_bw, t_bw = board_pose(self.trajectory, true_ns)
        return self.rotation @ rot_bw, self.rotation @ t_bw + self.translation

    def _distort(self, normalised: np.ndarray) -> np.ndarray:
        """Normalised undistorted coordinates (N, 2) → pixels (N, 2), OpenCV's pinhole model."""
        k1, k2, p1, p2, k3 = self.distortions
        x, y = normalised[:, 0], normalised[:, 1]
        r2 = x * x + y * y
        radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
        xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        m = self.matrix
        return np.stack([m[0, 0] * xd + m[0, 1] * yd + m[0, 2], m[1, 1] * yd + m[1, 2]], axis=1)

    def _board_box(self, rot: np.ndarray, trans: np.ndarray) -> tuple[int, int, int, int] | None:
        """Pixel bounding box (x0, y0, x1, y1) of the board's projected outline, or None if unseen.
        The whole frame when the board straddles the camera plane (its outline has no image)."""
        cam = self._outline @ rot.T + trans
        if np.all(cam[:, 2] <= 1.0):
            return None
        if np.any(cam[:, 2] <= 1.0):
            return 0, 0, self.width, self.height
        px = self._distort(cam[:, :2] / cam[:, 2:3])
        # A very wide-angle distortion model folds back far outside the image; clamp generously.
        x0, y0 = np.floor(px.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(px.max(axis=0)).astype(int) + 3
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(self.width, x1), min(self.height, y1)
        if x1 <= x0 or y1 <= y0:
            return None
        return int(x0), int(y0), int(x1), int(y1)

    def _draw_board(self, luma: np.ndarray, chroma: tuple[np.ndarray, np.ndarray], true_ns: int) -> None:
        import cv2

        rot, trans = self.board_to_camera(true_ns)
        box = self._board_box(rot, trans)
        if box is None:
            return
        x0, y0, x1, y1 = box
        rays = self._rays[y0:y1, x0:x1]
        # Board (X, Y, 1)·s = H⁻¹·(x, y, 1) with H = [r1 r2 t]; then board mm → texture
        # coordinates (texel i spans [i, i+1), so its centre sits at i + 0.5).
        inv = np.linalg.inv(np.column_stack([rot[:, 0], rot[:, 1], trans]))
        offset = self._margin_mm * self._ppm - 0.5
        to_texture = np.array([[self._ppm, 0.0, offset], [0.0, self._ppm, offset], [0.0, 0.0, 1.0]]) @ inv
        uv = cv2.perspectiveTransform(np.ascontiguousarray(rays), to_texture)
        u, v = uv[..., 0], uv[..., 1]
        tex_w, tex_h = self._tex_size
        inside = (u >= -0.5) & (u <= tex_w - 0.5) & (v >= -0.5) & (v <= tex_h - 0.5)
        if box == (0, 0, self.width, self.height):
            # Possibly straddling the camera plane: rays meeting the plane behind the camera
            # (s < 0) project to mirrored board points; drop them.
            inside &= inv[2, 0] * rays[..., 0] + inv[2, 1] * rays[..., 1] + inv[2, 2] > 0
        if not inside.any():
            return
        # The printed face is seen when the camera is on the board's −z side.
        front = float(rot[:, 2] @ trans) > 0
        if front:
            sampled = cv2.remap(self._texture, uv, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            # Lambertian-ish falloff with obliquity (light from the camera's direction).
            cos = abs(float(rot[:, 2] @ trans)) / float(np.linalg.norm(trans))
            sampled *= 0.7 + 0.3 * cos
        else:
            sampled = np.full(inside.shape, BACK, dtype=np.float32)
        region = luma[y0:y1, x0:x1]
        region[inside] = np.clip(sampled[inside], 0, 255).astype(np.uint8)
        # Neutral chroma on the (grey) board; chroma is subsampled 2x2.
        cy0, cx0 = y0 // 2, x0 // 2
        sub = inside[(cy0 * 2 - y0) % 2 :: 2, (cx0 * 2 - x0) % 2 :: 2]
        for plane in chroma:
            target = plane[cy0 : cy0 + sub.shape[0], cx0 : cx0 + sub.shape[1]]
            target[sub[: target.shape[0], : target.shape[1]]] = 128

    def render(self, true_capture_ns: int, frame_index: int) -> np.ndarray:
        ns = int(true_capture_ns)
        frame = self._ring[self._next]
        self._next = (self._next + 1) % len(self._ring)
        np.copyto(frame, self._background)
        luma = frame[: self.height]
        flat = frame.reshape(-1)
        size = self.height * self.width
        chroma_size = (self.height // 2) * (self.width // 2)
        shape = (self.height // 2, self.width // 2)
        u_plane = flat[size : size + chroma_size].reshape(shape)
        v_plane = flat[size + chroma_size :].reshape(shape)
        self._draw_board(luma, (u_plane, v_plane), ns)
        if self._noise:
            noisy = luma.astype(np.int16) + self._noise[int(frame_index) % len(self._noise)]
            np.clip(noisy, 0, 255, out=noisy)
            luma[...] = noisy
        # The stamps go on top, in their flat quiet band, exactly as in the default scene.
        luma[: self._keepout_h, : self._keepout_w] = _QUIET_LEVEL
        self._draw_stamps(luma, ns, frame_index)
        return frame
