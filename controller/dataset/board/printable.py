"""A printable ChArUco board at exact physical size: vector PDF, or PNG at a DPI.

Both come from the board's geometry in millimetres (`syncrig_agent.sim.charuco_board`, the same
geometry the simulated cameras film). The PDF draws every black area as a filled rectangle, so it
is exact at any printer resolution; its page is the smallest ISO A size that holds the board and
its margins (or a page of exactly that size), board centred. The PNG places each edge at the
nearest pixel at the DPI (error ≤ half a pixel) and carries the DPI in its pHYs chunk, so a viewer
printing at 100 % reproduces the size. The spec is printed small in the margin, so a printed board
can always be identified, and a ruler check is suggested (printers scale "to fit" by default).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from controller.dataset.board.spec import BoardSpec
from syncrig_agent.contract.formats.atomic import write_bytes_atomic
from syncrig_agent.sim.charuco_board import board_layout, rasterize

MM_PER_INCH = 25.4
PT_PER_MM = 72.0 / MM_PER_INCH
DEFAULT_MARGIN_MM = 10.0
LABEL_MM = 3.0  # label text height
# ISO 216 portrait sizes (mm), smallest first.
PAGES = {
    "A4": (210.0, 297.0),
    "A3": (297.0, 420.0),
    "A2": (420.0, 594.0),
    "A1": (594.0, 841.0),
    "A0": (841.0, 1189.0),
}
PAGE_CHOICES = ("auto", "fit", *PAGES)


class PrintError(ValueError):
    pass


@dataclass(frozen=True)
class PrintInfo:
    path: Path
    spec_path: Path
    width_mm: float  # page / image size
    height_mm: float
    board_origin_mm: tuple[float, float]  # the board's top-left corner on the page / image
    width_px: int | None = None  # PNG only
    height_px: int | None = None


def label_text(spec: BoardSpec) -> str:
    legacy = ", legacy pattern" if spec.legacy_pattern else ""
    return (
        f"SyncRig ChArUco {spec.squares_x}x{spec.squares_y}, squares {spec.square_mm:g} mm, "
        f"markers {spec.marker_mm:g} mm, {spec.dictionary}{legacy}. Print at 100 % and check a "
        f"square measures {spec.square_mm:g} mm."
    )


def _page_size(spec: BoardSpec, margin_mm: float, page: str) -> tuple[float, float]:
    need_w = spec.squares_x * spec.square_mm + 2 * margin_mm
    need_h = spec.squares_y * spec.square_mm + 2 * margin_mm + 2 * LABEL_MM
    if page == "fit":
        return need_w, need_h
    names = list(PAGES) if page == "auto" else [page]
    for name in names:
        short, long = PAGES[name]
        for w, h in ((short, long), (long, short)):
            if w >= need_w and h >= need_h:
                return w, h
    if page == "auto":
        return need_w, need_h
    raise PrintError(f"a {need_w:g} x {need_h:g} mm board with margins does not fit on {page}")


def write_png(spec: BoardSpec, out: Path, dpi: float, margin_mm: float = DEFAULT_MARGIN_MM) -> PrintInfo:
    if not 50 <= dpi <= 2400:
        raise PrintError(f"dpi must be 50..2400, got {dpi:g}")
    ppm = dpi / MM_PER_INCH
    board_w, board_h = spec.squares_x * spec.square_mm, spec.squares_y * spec.square_mm
    width_mm, height_mm = board_w + 2 * margin_mm, board_h + 2 * margin_mm + 2 * LABEL_MM
    width, height = round(width_mm * ppm), round(height_mm * ppm)
    if width * height > 400_000_000:
        raise PrintError(f"{width}x{height} pixels is too large; lower the DPI")
    layout = board_layout(spec.as_dict())
    coverage = rasterize(layout, ppm, (width, height), (margin_mm * ppm, margin_mm * ppm))
    image = np.where(coverage >= 0.5, 0, 255).astype(np.uint8)
    # The label: in the bottom margin, about LABEL_MM tall, shrunk to fit the width.
    text = label_text(spec)
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = LABEL_MM * ppm / cv2.getTextSize(text, font, 1.0, 1)[0][1]
    text_w = cv2.getTextSize(text, font, scale, 1)[0][0]
    if text_w > width - 2 * margin_mm * ppm:
        scale *= (width - 2 * margin_mm * ppm) / text_w
    thickness = max(1, round(scale * 1.2))
    baseline_y = round((margin_mm + board_h + LABEL_MM + 0.5 * LABEL_MM) * ppm)
    cv2.putText(image, text, (round(margin_mm * ppm), baseline_y), font, scale, 0, thickness, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise PrintError("PNG encoding failed")
    _write_atomic(out, _with_phys(encoded.tobytes(), dpi))
    return PrintInfo(
        out, _save_spec(spec, out), width / ppm, height / ppm, (margin_mm, margin_mm), width, height
    )


def _with_phys(png: bytes, dpi: float) -> bytes:
    """Insert a pHYs chunk (pixels per metre) right after IHDR."""
    ppm = round(dpi / 0.0254)
    body = b"pHYs" + struct.pack(">IIB", ppm, ppm, 1)
    chunk = struct.pack(">I", 9) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, length, type, IHDR data, CRC
    return png[:ihdr_end] + chunk + png[ihdr_end:]


def _pdf_text(text: str) -> str:
    return (
        text.encode("latin-1", "replace")
        .decode("latin-1")
        .replace("\\", "\\\\")
        .replace("(", "\\(")
        .replace(")", "\\)")
    )


def write_pdf(
    spec: BoardSpec, out: Path, page: str = "auto", margin_mm: float = DEFAULT_MARGIN_MM
) -> PrintInfo:
    if page not in PAGE_CHOICES:
        raise PrintError(f"page must be one of {', '.join(PAGE_CHOICES)}, got {page!r}")
    page_w, page_h = _page_size(spec, margin_mm, page)
    board_w, board_h = spec.squares_x * spec.square_mm, spec.squares_y * spec.square_mm
    # Board centred, label below it.
    ox = (page_w - board_w) / 2
    oy = (page_h - board_h - 2 * LABEL_MM) / 2
    layout = board_layout(spec.as_dict())
    ops = ["0 g"]
    for x0, y0, x1, y1 in layout.black_rects_mm:
        # PDF's y axis points up from the page's bottom edge.
        ops.append(
            f"{(ox + x0) * PT_PER_MM:.4f} {(page_h - oy - y1) * PT_PER_MM:.4f} "
            f"{(x1 - x0) * PT_PER_MM:.4f} {(y1 - y0) * PT_PER_MM:.4f} re f"
        )
    text_size = LABEL_MM * 0.8 * PT_PER_MM / 0.72  # Helvetica cap height ≈ 0.72 em
    text = label_text(spec)
    # Shrink the label to the board's width (Helvetica averages about 0.5 em per character).
    text_size = min(text_size, board_w * PT_PER_MM / (0.5 * len(text)))
    ops.append(
        f"BT /F1 {text_size:.2f} Tf {ox * PT_PER_MM:.4f} "
        f"{(page_h - oy - board_h - 1.6 * LABEL_MM) * PT_PER_MM:.4f} Td ({_pdf_text(text)}) Tj ET"
    )
    content = "\n".join(ops).encode("latin-1")
    width_pt, height_pt = page_w * PT_PER_MM, page_h * PT_PER_MM
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width_pt:.4f} {height_pt:.4f}] "
            f"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>"
        ).encode(),
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        f"<< /Title ({_pdf_text(label_text(spec))}) /Producer (SyncRig) >>".encode("latin-1"),
    ]
    pdf = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R /Info 6 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    _write_atomic(out, bytes(pdf))
    return PrintInfo(out, _save_spec(spec, out), page_w, page_h, (ox, oy))


def write_board(
    spec: BoardSpec, out: Path, dpi: float = 300.0, page: str = "auto", margin_mm: float = DEFAULT_MARGIN_MM
) -> PrintInfo:
    """Write `out` (.png or .pdf) and the spec beside it (`<stem>.json`)."""
    spec = spec.validate()
    if spec.is_checkerboard:
        raise PrintError(
            f"`syncrig board` prints ChArUco boards; the {spec.describe()} has no ArUco markers: print a "
            "checkerboard elsewhere (OpenCV's pattern.png) and measure one square"
        )
    out = Path(out)
    if not 0 <= margin_mm <= 200:
        raise PrintError(f"margin must be 0..200 mm, got {margin_mm:g}")
    suffix = out.suffix.lower()
    if suffix == ".png":
        return write_png(spec, out, dpi, margin_mm)
    if suffix == ".pdf":
        return write_pdf(spec, out, page, margin_mm)
    raise PrintError(f"output must end in .png or .pdf, got {out.name!r}")


def _save_spec(spec: BoardSpec, out: Path) -> Path:
    path = out.with_suffix(".json")
    spec.save(path)
    return path


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
