"""I420 frame → small JPEG, with PyAV's `mjpeg` encoder (no imaging library on the Pi).

The frame is downscaled by integer striding first: on a Pi, scaling or encoding the full frame
would cost more than the preview is worth, and striding is a free numpy view."""

from __future__ import annotations

import math
from fractions import Fraction

import av
import numpy as np

DEFAULT_MAX_WIDTH = 640
# JPEG quantiser scale (2 = best .. 31 = worst); 6 is sharp enough to focus a camera by.
DEFAULT_QUALITY = 6
_QP2LAMBDA = 118  # FFmpeg's FF_QP2LAMBDA: global_quality is a quantiser in lambda units


def preview_size(width: int, height: int, max_width: int = DEFAULT_MAX_WIDTH) -> tuple[int, int, int]:
    """(stride, preview width, preview height): the smallest integer stride giving ≤ max_width;
    both sides even (4:2:0 chroma)."""
    stride = max(1, math.ceil(width / max_width))
    return stride, (math.ceil(width / stride) // 2) * 2, (math.ceil(height / stride) // 2) * 2


def i420_planes(image: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of an I420 frame stored as `(H*3/2, W)` (no copies)."""
    y = image[:height, :width]
    chroma = image[height : height * 3 // 2].reshape(-1)
    size = (height // 2) * (width // 2)
    u = chroma[:size].reshape(height // 2, width // 2)
    v = chroma[size : 2 * size].reshape(height // 2, width // 2)
    return y, u, v


class JpegEncoder:
    """Encodes frames of one source size; rebuilt by its owner when the size changes."""

    def __init__(
        self, width: int, height: int, max_width: int = DEFAULT_MAX_WIDTH, quality: int = DEFAULT_QUALITY
    ) -> None:
        self.source_size = (width, height)
        self.stride, self.width, self.height = preview_size(width, height, max_width)
        self._codec = av.CodecContext.create("mjpeg", "w")
        self._codec.width = self.width
        self._codec.height = self.height
        self._codec.pix_fmt = "yuvj420p"  # JPEG is full range
        self._codec.time_base = Fraction(1, 30)
        self._codec.qscale = True
        self._codec.global_quality = quality * _QP2LAMBDA
        self._codec.open()
        self._pts = 0

    def encode(self, image: np.ndarray) -> bytes:
        """JPEG of `image` (I420 of the source size), downscaled by striding."""
        w, h = self.source_size
        s = self.stride
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        for source, plane in zip(i420_planes(image, w, h), frame.planes, strict=True):
            pw, ph = plane.width, plane.height
            dst = np.frombuffer(plane, dtype=np.uint8).reshape(ph, plane.line_size)
            dst[:, :pw] = source[::s, ::s][:ph, :pw]
        frame = frame.reformat(format="yuvj420p")  # limited → full range, on the small frame only
        frame.pts = self._pts
        self._pts += 1
        packets = self._codec.encode(frame)
        if not packets:  # mjpeg is intra-only and never delays; no packet means the codec failed
            raise RuntimeError("mjpeg encoder returned no packet")
        return bytes(packets[0])
