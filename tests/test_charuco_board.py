"""`syncrig board`: the printable board re-detects with its spec, at exact physical size."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from controller.cli.main import main
from controller.dataset.board.printable import PT_PER_MM, PrintError, write_board
from controller.dataset.board.spec import BoardSpec
from syncrig_agent.sim.charuco_board import board_layout

MM_PER_INCH = 25.4


def detect_all(image: np.ndarray, spec: BoardSpec) -> tuple[np.ndarray, np.ndarray]:
    corners, ids, _mc, _mi = cv2.aruco.CharucoDetector(spec.cv_board()).detectBoard(image)
    assert ids is not None, "board not detected"
    return ids.ravel(), corners.reshape(-1, 2)


def png_dpi(data: bytes) -> float:
    at = data.index(b"pHYs")
    x, y, unit = struct.unpack(">IIB", data[at + 4 : at + 13])
    assert unit == 1 and x == y
    assert zlib.crc32(data[at : at + 13]) & 0xFFFFFFFF == struct.unpack(">I", data[at + 13 : at + 17])[0]
    return x * 0.0254


@pytest.mark.parametrize(
    "spec",
    [BoardSpec(), BoardSpec(8, 6, 25.0, 18.0, "DICT_5X5_100", legacy_pattern=True)],
    ids=["7x5", "8x6-legacy"],
)
def test_png_redetects_every_corner_at_exact_size(tmp_path: Path, spec: BoardSpec) -> None:
    dpi, margin = 150.0, 10.0
    info = write_board(spec, tmp_path / "board.png", dpi=dpi, margin_mm=margin)
    data = (tmp_path / "board.png").read_bytes()
    # pHYs holds whole pixels per metre: within 1e-4 of the DPI, so 100 % prints at size
    assert png_dpi(data) == pytest.approx(dpi, rel=1e-4)
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    ppm = dpi / MM_PER_INCH
    assert image.shape == (info.height_px, info.width_px)
    assert info.width_px == round((spec.squares_x * spec.square_mm + 2 * margin) * ppm)
    ids, xy = detect_all(image, spec)
    assert sorted(ids) == list(range(spec.corner_count))  # every corner, right ids
    # Each corner lies where the spec puts it at this DPI (edges land on the nearest pixel).
    expected = (spec.corner_points_mm()[ids, :2] + margin) * ppm - 0.5
    assert np.abs(xy - expected).max() < 0.75
    assert BoardSpec.load(tmp_path / "board.json") == spec


def _rasterize_pdf(pdf: bytes, dpi: float) -> tuple[np.ndarray, tuple[float, float]]:
    """Fill the PDF's `re f` rectangles (all it draws besides the label) at `dpi`."""
    box = [float(v) for v in re.search(rb"/MediaBox \[([^\]]+)\]", pdf).group(1).split()]
    scale = dpi / 72.0
    width, height = round(box[2] * scale), round(box[3] * scale)
    image = np.full((height, width), 255, np.uint8)
    for x, y, w, h in re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) re f", pdf):
        x0, x1 = float(x) * scale, (float(x) + float(w)) * scale
        y1, y0 = height - float(y) * scale, height - (float(y) + float(h)) * scale
        image[round(y0) : round(y1), round(x0) : round(x1)] = 0
    return image, (box[2] / PT_PER_MM, box[3] / PT_PER_MM)


def test_pdf_is_vector_at_exact_size_on_the_smallest_page(tmp_path: Path) -> None:
    spec = BoardSpec(squares_x=8, squares_y=6, square_mm=30, marker_mm=22, legacy_pattern=True)
    info = write_board(spec, tmp_path / "board.pdf")
    pdf = (tmp_path / "board.pdf").read_bytes()
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    # The cross-reference table points at every object.
    xref = int(re.search(rb"startxref\n(\d+)", pdf).group(1))
    assert pdf[xref:].startswith(b"xref")
    image, (page_w, page_h) = _rasterize_pdf(pdf, 200.0)
    assert (page_w, page_h) == pytest.approx((297.0, 210.0), abs=0.01)  # 240x180 mm + margins: A4 landscape
    assert (info.width_mm, info.height_mm) == pytest.approx((page_w, page_h))
    assert b"8x6, squares 30 mm, markers 22 mm, DICT_4X4_50, legacy pattern" in pdf
    ids, xy = detect_all(image, spec)
    assert sorted(ids) == list(range(spec.corner_count))
    ppm = 200.0 / MM_PER_INCH
    expected = (spec.corner_points_mm()[ids, :2] + np.array(info.board_origin_mm)) * ppm - 0.5
    assert np.abs(xy - expected).max() < 1.0  # this test's own rasterizer rounds every edge
    # Exact in the file: every rectangle is the board's geometry at the board's place, to 0.001 mm.
    rects = (
        np.array(re.findall(rb"([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) re f", pdf), dtype=np.float64) / PT_PER_MM
    )
    ox, oy = info.board_origin_mm
    x0, y1 = rects[:, 0] - ox, page_h - rects[:, 1] - oy
    got = np.column_stack([x0, y1 - rects[:, 3], x0 + rects[:, 2], y1])
    want = board_layout(spec.as_dict()).black_rects_mm
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-3
    # Centred on the page.
    assert info.board_origin_mm[0] == pytest.approx((297.0 - 240.0) / 2)


def test_board_cli_and_bad_requests(tmp_path: Path, capsys) -> None:
    out = tmp_path / "print" / "b.png"
    code = main(
        [
            "board",
            "--squares",
            "5x4",
            "--square-mm",
            "40",
            "--marker-mm",
            "30",
            "--dpi",
            "100",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert BoardSpec.load(out.with_suffix(".json")) == BoardSpec(5, 4, 40.0, 30.0)
    assert "check that a square measures 40 mm" in capsys.readouterr().out
    assert main(["board", "--marker-mm", "45", "--out", str(tmp_path / "x.png")]) == 2  # square: 40 mm
    assert "must be smaller than square_mm" in capsys.readouterr().err
    with pytest.raises(PrintError, match=r"\.png or \.pdf"):
        write_board(BoardSpec(), tmp_path / "board.svg")
    with pytest.raises(PrintError, match="does not fit on A4"):
        write_board(BoardSpec(12, 9, 30.0, 22.0, "DICT_4X4_100"), tmp_path / "big.pdf", page="A4")
