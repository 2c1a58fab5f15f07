"""The synthetic camera's test picture.

Each frame shows three things, chosen so that a recording made from synthetic cameras
can be checked by eye and by machine:

* a static, camera-specific background (block pattern and colour tint derived from the
  camera's name and seed), so streams cannot be mixed up unnoticed;
* moving bars whose positions are functions of the claimed capture time, so the encoder
  sees real motion (rate control and motion search behave as with a live scene) and
  frames from different cameras at the same instant visibly line up;
* the capture time itself as a machine-readable code (``syncrig_agent.sim.timecode``), plus
  the frame index's low 8 bits as a row of squares in the bottom-right corner.

Rendering is on the camera's realtime path (up to 56 fps at 1536x864), so everything
static is built once in the constructor; a frame is one buffer copy plus a few slice
assignments.
"""

from __future__ import annotations

import hashlib

import numpy as np

from syncrig_agent.sim.timecode import BLACK, ROWS, WHITE, draw_timecode, timecode_region

__all__ = ["SyntheticScene"]

MIN_WIDTH = 160
MIN_HEIGHT = 120
# Periods of the moving bars; different and not multiples of each other so the pair of
# positions only repeats after a long time (6 s), rather than every sweep.
_VERTICAL_BAR_PERIOD_NS = 2_000_000_000
_HORIZONTAL_BAR_PERIOD_NS = 3_000_000_000
# Output buffers handed out in turn: the caller's encoder copies a frame before the next
# render in normal operation, and a ring of three tolerates being a frame or two behind.
_RING_SIZE = 3
_NEUTRAL_CHROMA = 128
_QUIET_LEVEL = 128  # the static band around the code, kept flat and mid-grey
_INDEX_SHIFTS = np.arange(7, -1, -1)
_INDEX_LEVELS = np.array([BLACK, WHITE], dtype=np.uint8)


class SyntheticScene:
    """Renders I420 frames for one synthetic camera.

    Not thread-safe: one scene belongs to one capture loop. The array returned by
    ``render`` is one of a ring of three preallocated buffers: it stays valid through the
    next two calls and is overwritten by the third, so copy it if you need it longer.
    """

    def __init__(self, width: int, height: int, camera_name: str, seed: int = 0) -> None:
        width, height = int(width), int(height)
        if width % 2 or height % 2:
            raise ValueError(
                f"scene size {width}x{height} must be even in both dimensions "
                "(I420 subsamples chroma by 2 each way)"
            )
        if width < MIN_WIDTH or height < MIN_HEIGHT:
            raise ValueError(f"scene size {width}x{height} is below the minimum {MIN_WIDTH}x{MIN_HEIGHT}")
        self.width = width
        self.height = height
        self.camera_name = camera_name
        self.seed = seed

        code_x, code_y, code_w, code_h = timecode_region(width, height)
        self.timecode_region = (code_x, code_y, code_w, code_h)
        # The code's cell size, reused as the scale of the other elements so that they
        # also fall on the encoder's block grid.
        unit = code_h // ROWS
        # A flat gap around the code keeps the moving bars' edges (and the encoder's
        # ringing around them) a full cell away from the code's outer cells.
        self._keepout_w = min(width, code_x + code_w + unit)
        self._keepout_h = min(height, code_y + code_h + unit)
        self._unit = unit

        self._vbar_w = max(8, (width // 40) & ~1)
        self._vbar_travel = width - self._vbar_w
        self._hbar_h = max(8, (height // 30) & ~1)
        self._hbar_travel = height - self._hbar_h
        self._index_x = width - 8 * unit
        self._index_y = height - unit

        background = self._build_background()
        self._background = background
        self._ring = [background.copy() for _ in range(_RING_SIZE)]
        self._next = 0

    @property
    def stamp_region(self) -> tuple[int, int, int, int]:
        """What the stamps hide of the moving content, as an occluder: (x0, y0, x1, y1) pixels."""
        return (0, 0, self._keepout_w, self._keepout_h)

    def _rng(self) -> np.random.Generator:
        # hashlib rather than hash(): Python salts str hashes per process, and a camera's
        # look must be the same in every process and on every run.
        digest = hashlib.blake2b(f"{self.camera_name}\0{self.seed}".encode(), digest_size=16).digest()
        return np.random.default_rng(int.from_bytes(digest, "little"))

    def _build_background(self) -> np.ndarray:
        width, height, unit = self.width, self.height, self._unit
        rng = self._rng()
        frame = np.empty((height * 3 // 2, width), dtype=np.uint8)
        luma = frame[:height]
        chroma_h, chroma_w = height // 2, width // 2
        # Chroma planes through the flat buffer: when H/2 is odd a plane does not end on a
        # row boundary of the (H*3//2, W) array, so row slicing would misplace it.
        flat = frame.reshape(-1)
        chroma_size = chroma_h * chroma_w
        u_plane = flat[height * width : height * width + chroma_size].reshape(chroma_h, chroma_w)
        v_plane = flat[height * width + chroma_size :].reshape(chroma_h, chroma_w)

        # Smooth diagonal ramp plus a coarse random block pattern: textured enough that
        # the encoder has real work, and the pattern identifies the camera at a glance.
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        ramp = 60.0 + 80.0 * (xx / width + yy / height) / 2.0
        block = 4 * unit
        blocks_y, blocks_x = -(-height // block), -(-width // block)
        pattern = rng.integers(-40, 41, size=(blocks_y, blocks_x)).astype(np.float32)
        pattern = np.repeat(np.repeat(pattern, block, axis=0), block, axis=1)[:height, :width]
        luma[...] = np.clip(ramp + pattern, 24, 224).astype(np.uint8)

        # Whole-frame tint unique to the camera, with a per-block variation on top.
        tint_u, tint_v = rng.integers(128 - 40, 128 + 41, size=2)
        chroma_block = block // 2
        cy, cx = -(-chroma_h // chroma_block), -(-chroma_w // chroma_block)
        for plane, tint in ((u_plane, tint_u), (v_plane, tint_v)):
            var = rng.integers(-16, 17, size=(cy, cx))
            var = np.repeat(np.repeat(var, chroma_block, axis=0), chroma_block, axis=1)
            plane[...] = np.clip(tint + var[:chroma_h, :chroma_w], 16, 240).astype(np.uint8)

        # Code and its quiet band: neutral chroma so the code reads as black/white in a
        # viewer, flat luma so nothing around it changes from frame to frame.
        luma[: self._keepout_h, : self._keepout_w] = _QUIET_LEVEL
        u_plane[: self._keepout_h // 2, : self._keepout_w // 2] = _NEUTRAL_CHROMA
        v_plane[: self._keepout_h // 2, : self._keepout_w // 2] = _NEUTRAL_CHROMA
        return frame

    def render(self, true_capture_ns: int, frame_index: int) -> np.ndarray:
        """Return the I420 frame for capture time ``true_capture_ns`` (Unix epoch ns).

        The result has shape (H*3//2, W), dtype uint8: the Y plane followed by U then V,
        as ``av.VideoFrame.from_ndarray(arr, format="yuv420p")`` expects. It is a reused
        buffer; see the class docstring for how long it stays valid.
        """
        ns = int(true_capture_ns)
        frame = self._ring[self._next]
        self._next = (self._next + 1) % _RING_SIZE
        np.copyto(frame, self._background)
        luma = frame[: self.height]

        # A bright bar sweeping left to right below the code band...
        x = (ns % _VERTICAL_BAR_PERIOD_NS) * self._vbar_travel // _VERTICAL_BAR_PERIOD_NS
        luma[self._keepout_h :, x : x + self._vbar_w] = WHITE - 10
        # ...and a dark one sweeping top to bottom to the right of it.
        y = (ns % _HORIZONTAL_BAR_PERIOD_NS) * self._hbar_travel // _HORIZONTAL_BAR_PERIOD_NS
        luma[y : y + self._hbar_h, self._keepout_w :] = BLACK + 10

        self._draw_stamps(luma, ns, frame_index)
        return frame

    def _draw_stamps(self, luma: np.ndarray, ns: int, frame_index: int) -> None:
        """The frame index, least significant bit on the right (dropped or repeated frames show
        up when stepping through a recording), and the capture-time code."""
        unit = self._unit
        index_levels = _INDEX_LEVELS[(int(frame_index) & 0xFF) >> _INDEX_SHIFTS & 1]
        luma[self._index_y : self._index_y + unit, self._index_x : self._index_x + 8 * unit] = np.repeat(
            index_levels, unit
        )
        draw_timecode(luma, ns)
