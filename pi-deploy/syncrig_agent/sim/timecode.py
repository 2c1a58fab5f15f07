"""A capture timestamp burned into the picture, readable after lossy H.264.

The synthetic camera stamps every frame with the time it claims to have captured it, so
that the recordings can be checked end to end: whatever the encoder, transport, muxer
and desktop-side decoder do to a frame, the value read back out of the decoded picture
says exactly which capture instant it shows. The pixels are the one piece of metadata
that no stage of the pipeline can drop, reorder or re-time.

Layout (all sizes in pixels, origin at the frame's top-left corner)::

    +--------------------------- COLS x cell ---------------------------+
    | row 0: 16 sync cells, pattern SYNC_BITS (8 black, 8 white)        |
    | rows 1-4: the 64 value bits, most significant first               |
    | rows 5-6: CRC-32 (zlib) of the value's 8 big-endian bytes         |
    +-------------------------------------------------------------------+

16 columns x 7 rows = 112 square cells, each one bit: black (luma 16) for 0, white
(luma 235) for 1. The cell side is 8 px in small frames, 16 px (one H.264 macroblock)
from 512x288 up (the code then takes at most half the width and 40% of the height), and
32 px at 2560x1440 and above; see ``_cell_size``. The code always starts at (0, 0), so
every cell sits on the encoder's block grid.

Reading decides each bit from the mean of the cell's inner half (deblocking and ringing
live at cell borders) against the midpoint of the sync row's black and white means, so it
needs no knowledge of the decoder's output range or of brightness shifts on the way. A
frame is accepted only if the sync row has enough contrast and every sync cell lands
clearly on its expected side, and the CRC-32 over the value matches: a damaged or absent
code yields ``None``, never a wrong number.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

__all__ = [
    "BLACK",
    "COLS",
    "ROWS",
    "WHITE",
    "draw_timecode",
    "read_timecode",
    "timecode_region",
]

# Limited-range ("video") black and white: a later conversion to limited range, or a
# full-range source read as limited, cannot clip them, so both levels stay distinct.
BLACK = 16
WHITE = 235

COLS = 16
ROWS = 7
SYNC_BITS = (1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1)
VALUE_BITS = 64
CRC_BITS = 32
assert len(SYNC_BITS) + VALUE_BITS + CRC_BITS == COLS * ROWS
assert sum(SYNC_BITS) * 2 == len(SYNC_BITS)  # equal counts give both reference levels

# The weakest sync-row contrast (white mean minus black mean, in input levels) still
# taken as a code. Drawn codes give 219 (255 after a range expansion); heavy quantisation
# loses a few tens. Noise, flat grey or black frames give far less.
MIN_CONTRAST = 48.0
# How far (as a fraction of the contrast) a sync cell may stray from its reference level
# before the frame is considered not to carry a code.
SYNC_TOLERANCE = 0.3
# Data cells whose level falls this close to the threshold (as a fraction of the
# contrast) mark the frame as unreadable instead of being guessed; the CRC would catch a
# wrong guess too, this just keeps the CRC as a second line of defence, not the only one.
DEAD_ZONE = 0.1

_SYNC = np.array(SYNC_BITS, dtype=bool)
_LEVELS = np.array([BLACK, WHITE], dtype=np.uint8)  # indexed by bit
_SYNC_ROW = 0
_DATA_START = len(SYNC_BITS)


@dataclass(frozen=True)
class _Layout:
    cell: int
    margin: int  # rows/columns skipped on every side of a cell when reading it

    @property
    def width(self) -> int:
        return COLS * self.cell

    @property
    def height(self) -> int:
        return ROWS * self.cell


def _cell_size(width: int, height: int) -> int:
    """The cell side for a frame: as coarse as the frame affords, on the encoder's grid.

    Bigger cells survive harsher quantisation (a 16 px cell is a whole macroblock that
    the encoder can code as one flat DC level), but the code must stay a small band in
    the corner so the scene keeps most of the frame.
    """
    if width >= 2560 and height >= 1440:
        return 32  # at 1440p+ the encoder spends fewer bits per pixel; 16 px cells shrink
    if width >= 2 * COLS * 16 and height >= 288:
        return 16
    return 8


@functools.lru_cache(maxsize=32)
def _layout(height: int, width: int) -> _Layout:
    cell = _cell_size(width, height)
    if width < COLS * cell or height < ROWS * cell:
        raise ValueError(
            f"frame {width}x{height} is too small for the timecode; it needs at least "
            f"{COLS * 8}x{ROWS * 8} pixels"
        )
    return _Layout(cell=cell, margin=cell // 4)


def timecode_region(width: int, height: int) -> tuple[int, int, int, int]:
    """Return (x, y, w, h) of the rectangle the code covers in a ``width`` x ``height`` frame.

    Scene generators use it to keep moving content off the code: motion next to the
    cells would otherwise change the encoder's decisions for them from frame to frame.
    Raises ValueError for frames too small to carry the code.
    """
    layout = _layout(int(height), int(width))
    return 0, 0, layout.width, layout.height


def _cells_view(luma: np.ndarray, layout: _Layout) -> np.ndarray:
    """A (ROWS, cell, COLS, cell) view of the code region, sharing ``luma``'s memory.

    Built with explicit strides rather than ``reshape`` so that writes through it always
    land in the caller's array, whatever that array's strides (``reshape`` could silently
    return a copy). Splitting each axis into (cells, pixels) is always expressible as a
    view, so this is safe for any 2-D array covering the region.
    """
    s0, s1 = luma.strides
    return as_strided(
        luma,
        shape=(ROWS, layout.cell, COLS, layout.cell),
        strides=(layout.cell * s0, s0, layout.cell * s1, s1),
        writeable=luma.flags.writeable,
    )


def _value_bits(value: int) -> np.ndarray:
    payload = value.to_bytes(8, "big")
    crc = zlib.crc32(payload).to_bytes(4, "big")
    return np.unpackbits(np.frombuffer(payload + crc, dtype=np.uint8))


def draw_timecode(luma: np.ndarray, value: int) -> None:
    """Draw ``value`` (an unsigned 64-bit integer) into the top-left of ``luma``, in place.

    ``luma`` is a 2-D uint8 luma plane of shape (H, W); pass only the Y part of a planar
    buffer (for I420 of shape (H*3//2, W) that is ``buf[:H]``), as the layout depends on
    the frame's height. Runs on the camera's per-frame path, so it is a handful of numpy
    operations over a cached layout: the bits become a (ROWS, COLS) array of levels that
    is broadcast over the cells in one assignment.
    """
    if not isinstance(luma, np.ndarray) or luma.ndim != 2 or luma.dtype != np.uint8:
        raise TypeError("luma must be a 2-D uint8 numpy array")
    value = int(value)
    if not 0 <= value < 1 << VALUE_BITS:
        raise ValueError(f"timecode value {value} does not fit in 64 unsigned bits")
    layout = _layout(*luma.shape)
    bits = np.empty(COLS * ROWS, dtype=np.uint8)
    bits[:_DATA_START] = _SYNC
    bits[_DATA_START:] = _value_bits(value)
    levels = _LEVELS[bits].reshape(ROWS, 1, COLS, 1)
    _cells_view(luma, layout)[...] = levels


def _cell_means(luma: np.ndarray, layout: _Layout) -> np.ndarray:
    m = layout.margin
    inner = _cells_view(luma, layout)[:, m : layout.cell - m, :, m : layout.cell - m]
    return inner.mean(axis=(1, 3), dtype=np.float64).reshape(-1)


def read_timecode(luma: np.ndarray) -> int | None:
    """Read back a value drawn by ``draw_timecode`` from a (possibly decoded) luma plane.

    Returns None when the frame carries no code, or a code too damaged to trust: a
    missing or low-contrast sync row, a sync cell on the wrong side, a data cell too close
    to the threshold to call, or a CRC mismatch. Works on full- or limited-range luma and
    under brightness/contrast changes, because the black and white levels are measured
    from the sync row of this very frame.
    """
    if not isinstance(luma, np.ndarray) or luma.ndim != 2:
        raise TypeError("luma must be a 2-D numpy array")
    try:
        layout = _layout(*luma.shape)
    except ValueError:
        return None  # a frame too small for the code cannot carry one
    means = _cell_means(luma, layout)
    sync = means[:_DATA_START]
    black = float(sync[~_SYNC].mean())
    white = float(sync[_SYNC].mean())
    contrast = white - black
    if contrast < MIN_CONTRAST:
        return None
    levels = (means - black) / contrast  # 0 = reference black, 1 = reference white
    if np.any(np.abs(levels[:_DATA_START] - _SYNC) > SYNC_TOLERANCE):
        return None
    data = levels[_DATA_START:]
    if np.any(np.abs(data - 0.5) < DEAD_ZONE):
        return None
    raw = np.packbits(data > 0.5).tobytes()
    payload, crc = raw[:8], raw[8:]
    if zlib.crc32(payload) != int.from_bytes(crc, "big"):
        return None
    return int.from_bytes(payload, "big")
