"""The burned-in capture timecode and the synthetic scene that carries it.

The timecode is how recordings from synthetic cameras are checked end to end, so the
tests that matter most are the ones through a real (and deliberately stingy) H.264
encoder, and the ones showing that a damaged or absent code reads as None rather than as
some other time.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from syncrig_agent.sim.scene import SyntheticScene
from syncrig_agent.sim.timecode import (
    BLACK,
    COLS,
    ROWS,
    WHITE,
    draw_timecode,
    read_timecode,
    timecode_region,
)

SIZES = [(160, 120), (320, 240), (640, 360), (1536, 864), (1920, 1080)]
VALUES = [
    0,
    1,
    2**63 - 1,
    2**63,
    2**64 - 1,
    1_790_000_000_123_456_789,
    1_700_000_000_000_000_000,
    0xA5A5_5A5A_0F0F_F0F0,
]
T0 = 1_790_000_000_123_456_789


def _luma(width: int, height: int, level: int = 128) -> np.ndarray:
    return np.full((height, width), level, dtype=np.uint8)


def _cell_size(width: int, height: int) -> int:
    _, _, w, h = timecode_region(width, height)
    assert w % COLS == 0 and h % ROWS == 0 and w // COLS == h // ROWS
    return w // COLS


# --- layout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"), [*SIZES, (1280, 720), (2560, 1440), (3840, 2160), (162, 122), (641, 361)]
)
def test_region_fits_top_left_on_block_grid(width: int, height: int) -> None:
    x, y, w, h = timecode_region(width, height)
    assert (x, y) == (0, 0)
    assert 0 < w <= width and 0 < h <= height
    cell = _cell_size(width, height)
    assert cell % 8 == 0
    if width >= 640 and height >= 360:
        assert cell % 16 == 0, "large frames must put cells on macroblock boundaries"
    # A band, not a takeover: the scene keeps most of the frame.
    assert w * h <= 0.4 * width * height


def test_region_rejects_frames_too_small() -> None:
    with pytest.raises(ValueError):
        timecode_region(120, 120)
    with pytest.raises(ValueError):
        timecode_region(160, 40)


# --- raw round trip -----------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
@pytest.mark.parametrize("value", VALUES)
def test_round_trip_raw(width: int, height: int, value: int) -> None:
    luma = _luma(width, height)
    draw_timecode(luma, value)
    assert read_timecode(luma) == value


def test_round_trip_random_values() -> None:
    rng = np.random.default_rng(1)
    luma = _luma(640, 360)
    for value in rng.integers(0, 2**63, size=200, dtype=np.uint64).tolist():
        value = value * 2 + int(rng.integers(0, 2))  # cover the top bit too
        draw_timecode(luma, value)
        assert read_timecode(luma) == value


def test_draw_writes_through_a_view_of_an_i420_buffer() -> None:
    width, height = 640, 360
    buf = np.random.default_rng(2).integers(0, 256, size=(height * 3 // 2, width), dtype=np.uint8)
    before = buf.copy()
    draw_timecode(buf[:height], T0)
    assert read_timecode(buf[:height]) == T0
    x, y, w, h = timecode_region(width, height)
    changed = np.argwhere(buf != before)
    assert changed.size
    assert changed[:, 0].max() < y + h and changed[:, 1].max() < x + w, "drew outside its region"
    # The drawn cells use limited-range levels only.
    assert set(np.unique(buf[y : y + h, x : x + w]).tolist()) == {BLACK, WHITE}


def test_draw_on_a_strided_view() -> None:
    # Every other column of a wider array: writes must land in the parent, not a copy.
    parent = _luma(1280, 360)
    view = parent[:, ::2]
    draw_timecode(view, T0)
    assert read_timecode(view) == T0
    assert read_timecode(np.ascontiguousarray(parent[:, ::2])) == T0


@pytest.mark.parametrize("value", [-1, 2**64, 2**70])
def test_draw_rejects_values_outside_64_bits(value: int) -> None:
    with pytest.raises(ValueError):
        draw_timecode(_luma(320, 240), value)


def test_draw_rejects_wrong_arrays() -> None:
    with pytest.raises(TypeError):
        draw_timecode(np.zeros((240, 320), dtype=np.float32), 1)
    with pytest.raises(TypeError):
        draw_timecode(np.zeros((240, 320, 3), dtype=np.uint8), 1)
    with pytest.raises(ValueError):
        draw_timecode(np.zeros((40, 100), dtype=np.uint8), 1)


# --- rejection ----------------------------------------------------------------------


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_frames_without_a_code_read_none(width: int, height: int) -> None:
    rng = np.random.default_rng(width)
    assert read_timecode(rng.integers(0, 256, size=(height, width), dtype=np.uint8)) is None
    assert read_timecode(_luma(width, height, 128)) is None
    assert read_timecode(_luma(width, height, 0)) is None
    assert read_timecode(_luma(width, height, 255)) is None
    # Random black/white cells on the code's own grid: the hardest kind of impostor.
    cell = _cell_size(width, height)
    for _ in range(50):
        cells = rng.choice([BLACK, WHITE], size=(ROWS, COLS)).astype(np.uint8)
        luma = _luma(width, height)
        luma[: ROWS * cell, : COLS * cell] = np.kron(cells, np.ones((cell, cell), dtype=np.uint8))
        assert read_timecode(luma) is None


def test_too_small_frame_reads_none() -> None:
    assert read_timecode(np.zeros((50, 100), dtype=np.uint8)) is None


def _cell_slices(width: int, height: int, index: int) -> tuple[slice, slice]:
    cell = _cell_size(width, height)
    row, col = divmod(index, COLS)
    return slice(row * cell, (row + 1) * cell), slice(col * cell, (col + 1) * cell)


@pytest.mark.parametrize(("width", "height"), [(160, 120), (640, 360), (1536, 864)])
@pytest.mark.parametrize("index", [16, 17, 40, 79, 80, 95, 111])
def test_one_flipped_data_or_crc_cell_reads_none(width: int, height: int, index: int) -> None:
    luma = _luma(width, height)
    draw_timecode(luma, T0)
    rows, cols = _cell_slices(width, height, index)
    luma[rows, cols] = BLACK + WHITE - luma[rows, cols]
    assert read_timecode(luma) is None


@pytest.mark.parametrize("index", [0, 1, 7, 15])
def test_one_flipped_sync_cell_reads_none(index: int) -> None:
    luma = _luma(640, 360)
    draw_timecode(luma, T0)
    rows, cols = _cell_slices(640, 360, index)
    luma[rows, cols] = BLACK + WHITE - luma[rows, cols]
    assert read_timecode(luma) is None


def test_every_single_bit_error_is_caught() -> None:
    luma = _luma(320, 240)
    for value in (0, T0, 2**64 - 1):
        draw_timecode(luma, value)
        for index in range(16, ROWS * COLS):
            damaged = luma.copy()
            rows, cols = _cell_slices(320, 240, index)
            damaged[rows, cols] = BLACK + WHITE - damaged[rows, cols]
            assert read_timecode(damaged) is None, f"bit {index} flipped went unnoticed"


def test_a_grey_smudged_data_cell_reads_none() -> None:
    luma = _luma(640, 360)
    draw_timecode(luma, T0)
    rows, cols = _cell_slices(640, 360, 50)
    luma[rows, cols] = (BLACK + WHITE) // 2
    assert read_timecode(luma) is None


@pytest.mark.parametrize("tear_row", [2, 3, 5, 6])
def test_torn_frame_reads_none(tear_row: int) -> None:
    # Top of one frame over the bottom of another, as a tearing capture would deliver.
    # The two values differ in every 16-bit quarter, so every tear row mixes codewords.
    width, height = 640, 360
    first, second = _luma(width, height), _luma(width, height)
    draw_timecode(first, T0)
    draw_timecode(second, T0 + 2**62 + 2**40 + 16_666_667)
    cell = _cell_size(width, height)
    torn = np.vstack([first[: tear_row * cell], second[tear_row * cell :]])
    assert read_timecode(torn) is None


def test_inverted_code_reads_none() -> None:
    luma = _luma(640, 360)
    draw_timecode(luma, T0)
    assert read_timecode(255 - luma) is None


# --- level changes ------------------------------------------------------------------


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(lambda y: (y - 16.0) * 255.0 / 219.0, id="limited-to-full-range"),
        pytest.param(lambda y: 16.0 + y * 219.0 / 255.0, id="full-to-limited-range"),
        pytest.param(lambda y: y + 40.0, id="brighter"),
        pytest.param(lambda y: y - 40.0, id="darker"),
        pytest.param(lambda y: 100.0 + (y - 100.0) * 0.35, id="low-contrast"),
        pytest.param(lambda y: 255.0 * (y / 255.0) ** 0.5, id="gamma"),
    ],
)
def test_reads_through_level_changes(transform) -> None:
    width, height = 640, 360
    luma = _luma(width, height)
    draw_timecode(luma, T0)
    noise = np.random.default_rng(3).normal(0.0, 6.0, size=luma.shape)
    changed = np.clip(np.rint(transform(luma.astype(np.float64)) + noise), 0, 255).astype(np.uint8)
    assert read_timecode(changed) == T0


def test_reads_other_integer_dtypes() -> None:
    # A 10-bit pipeline hands over uint16 luma; the reader only compares levels.
    luma = _luma(640, 360)
    draw_timecode(luma, T0)
    assert read_timecode(luma.astype(np.uint16) * 4) == T0


# --- through H.264 ------------------------------------------------------------------


def _encode_decode(
    frames: list[np.ndarray], width: int, height: int, bit_rate: int, gray: bool
) -> list[np.ndarray]:
    """Encode I420 frames with libx264 the way the cameras do, decode, return the lumas."""
    encoder = av.CodecContext.create("libx264", "w")
    encoder.width = width
    encoder.height = height
    encoder.pix_fmt = "yuv420p"
    encoder.bit_rate = bit_rate
    encoder.time_base = Fraction(1, 30)
    encoder.framerate = Fraction(30, 1)
    encoder.max_b_frames = 0
    encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
    decoder = av.CodecContext.create("h264", "r")

    decoded: list[np.ndarray] = []

    def take(packets) -> None:
        for packet in packets:
            for frame in decoder.decode(packet):
                # "gray" goes through swscale, which may expand limited range to full;
                # the raw Y plane does not. The reader has to cope with both.
                luma = frame.to_ndarray(format="gray") if gray else frame.to_ndarray()[:height]
                decoded.append(luma.copy())

    for index, array in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(array, format="yuv420p")
        frame.pts = index
        take(encoder.encode(frame))
    take(encoder.encode(None))
    for frame in decoder.decode(None):
        decoded.append(frame.to_ndarray(format="gray") if gray else frame.to_ndarray()[:height])
    return decoded


@pytest.mark.parametrize(
    ("width", "height", "bit_rate", "gray"),
    [
        (640, 360, 1_000_000, False),
        (640, 360, 1_000_000, True),
        (1536, 864, 4_000_000, False),
        (320, 240, 250_000, True),
        (160, 120, 100_000, False),
    ],
)
def test_survives_h264(width: int, height: int, bit_rate: int, gray: bool) -> None:
    scene = SyntheticScene(width, height, "cam-h264")
    # 56 fps spacing with some jitter, so every frame carries a genuinely different value.
    rng = np.random.default_rng(width)
    values = [T0 + i * 17_857_143 + int(rng.integers(-500_000, 500_000)) for i in range(30)]
    frames = [scene.render(value, index).copy() for index, value in enumerate(values)]
    decoded = _encode_decode(frames, width, height, bit_rate, gray)
    assert len(decoded) == len(values)
    assert [read_timecode(luma) for luma in decoded] == values


# --- scene --------------------------------------------------------------------------


def test_scene_output_is_i420() -> None:
    scene = SyntheticScene(640, 360, "cam0")
    frame = scene.render(T0, 0)
    assert frame.shape == (360 * 3 // 2, 640)
    assert frame.dtype == np.uint8
    assert read_timecode(frame[:360]) == T0
    av_frame = av.VideoFrame.from_ndarray(frame, format="yuv420p")
    assert (av_frame.width, av_frame.height) == (640, 360)
    np.testing.assert_array_equal(av_frame.to_ndarray(), frame)


@pytest.mark.parametrize(("width", "height"), [(640, 360), (322, 242)])
def test_scene_chroma_planes_are_where_av_expects_them(width: int, height: int) -> None:
    # 242 rows give 121 chroma rows: U then ends mid-row of the (H*3//2, W) array, which
    # row slicing would get wrong. The code area has neutral chroma, so in RGB it must be
    # grey, while the rest of the frame carries the camera's tint.
    frame = SyntheticScene(width, height, "cam0").render(T0, 0)
    rgb = av.VideoFrame.from_ndarray(frame, format="yuv420p").to_ndarray(format="rgb24").astype(int)
    _, _, w, h = timecode_region(width, height)
    code = rgb[:h, :w]
    assert np.abs(code - code.mean(axis=2, keepdims=True)).max() <= 3
    rest = rgb[h + 16 :, w + 16 :]
    assert np.abs(rest - rest.mean(axis=2, keepdims=True)).mean() > 5


@pytest.mark.parametrize(("width", "height"), [(160, 120), (322, 242), (1536, 864)])
def test_scene_carries_its_timecode(width: int, height: int) -> None:
    scene = SyntheticScene(width, height, "cam0")
    for index in range(5):
        value = T0 + index * 16_666_667
        assert read_timecode(scene.render(value, index)[:height]) == value


def test_cameras_look_different() -> None:
    a = SyntheticScene(640, 360, "cam0").render(T0, 0)
    b = SyntheticScene(640, 360, "cam1").render(T0, 0)
    c = SyntheticScene(640, 360, "cam0", seed=1).render(T0, 0)
    again = SyntheticScene(640, 360, "cam0").render(T0, 0)
    assert np.mean(a[:360] != b[:360]) > 0.3
    assert np.mean(a[360:] != b[360:]) > 0.3, "chroma tint should differ too"
    assert np.mean(a != c) > 0.3
    np.testing.assert_array_equal(a, again)


def test_moving_content_moves_and_avoids_the_code() -> None:
    width, height = 640, 360
    scene = SyntheticScene(width, height, "cam0")
    x, y, w, h = timecode_region(width, height)
    # The code is drawn last, so it would hide motion inside its own rectangle; what must
    # stay still is the rectangle plus a one-cell guard band, where motion would still
    # sway the encoder's decisions (and ringing) for the outer cells.
    guard = _cell_size(width, height)
    near = (slice(0, y + h + guard), slice(0, x + w + guard))
    first = scene.render(T0, 0).copy()
    for step in range(1, 40):
        later = scene.render(T0 + step * 150_000_000, step).copy()
        elsewhere = later[:height].copy()
        elsewhere[near] = first[near]
        assert np.count_nonzero(elsewhere != first[:height]) > 1000, "nothing moved"
        # Put the earlier code back: if only the code differed, the area is identical.
        draw_timecode(later[:height], T0)
        np.testing.assert_array_equal(later[near], first[near])


def test_scene_hands_out_a_ring_of_buffers() -> None:
    scene = SyntheticScene(320, 240, "cam0")
    frames = [scene.render(T0 + i, i) for i in range(3)]
    assert len({id(f) for f in frames}) == 3
    assert [read_timecode(f[:240]) for f in frames] == [T0, T0 + 1, T0 + 2]


@pytest.mark.parametrize(("width", "height"), [(641, 360), (640, 361), (161, 121)])
def test_scene_rejects_odd_sizes(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="even"):
        SyntheticScene(width, height, "cam0")


@pytest.mark.parametrize(("width", "height"), [(158, 120), (160, 118), (64, 64)])
def test_scene_rejects_tiny_sizes(width: int, height: int) -> None:
    with pytest.raises(ValueError, match="minimum"):
        SyntheticScene(width, height, "cam0")
