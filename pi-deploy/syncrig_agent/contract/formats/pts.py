"""`.pts` timestamp sidecars.

SyncRig writes mkvmerge's "timestamp format v2": a header line, then one line per frame in stream
order, milliseconds since the session's T0 as a decimal. T0 is shared by every camera, so the
values are comparable across cameras. We write 6 fraction digits (ns) from integer arithmetic, so
no float rounding ever moves a frame.

Older SqueakShot recordings (`<cam>_<rec>.pts`: integer µs since that camera's own first frame,
no header) are read too, and flagged as not absolute.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PTS_HEADER = "# timestamp format v2"
PTS_SUFFIX = ".pts"


def format_pts_line(ns_since_t0: int) -> str:
    """Exact decimal milliseconds, 6 fraction digits, without a trailing newline."""
    sign = "-" if ns_since_t0 < 0 else ""
    whole, frac = divmod(abs(int(ns_since_t0)), 1_000_000)
    return f"{sign}{whole}.{frac:06d}"


def parse_pts_value(text: str) -> int:
    """Inverse of format_pts_line for any number of fraction digits (truncated below 1 ns)."""
    text = text.strip()
    negative = text.startswith("-")
    if negative or text.startswith("+"):
        text = text[1:]
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        raise ValueError(f"not a decimal millisecond value: {text!r}")
    ns = int(whole) * 1_000_000 + int((frac + "000000")[:6])
    return -ns if negative else ns


@dataclass
class PtsTimes:
    times_ns: np.ndarray  # int64, per frame in stream order, relative to `origin`
    absolute: bool  # True: relative to the session's shared T0; False: each camera's own first frame
    source_format: str  # "v2" or "squeakshot-us"

    def __len__(self) -> int:
        return len(self.times_ns)


def write_pts(path: Path | str, ns_since_t0: list[int] | np.ndarray) -> None:
    with open(path, "x", encoding="ascii") as fh:
        fh.write(PTS_HEADER + "\n")
        for value in ns_since_t0:
            fh.write(format_pts_line(int(value)) + "\n")


def read_pts(path: Path | str) -> PtsTimes:
    """Read a v2 `.pts` (absolute, ms since T0) or a SqueakShot one (integer µs, relative)."""
    lines = Path(path).read_text(encoding="ascii").splitlines()
    body = [ln.strip() for ln in lines if ln.strip()]
    if body and body[0].startswith("#"):
        header = body[0]
        if "v2" not in header:
            raise ValueError(f"{path}: unsupported timestamp format header {header!r}")
        values = [parse_pts_value(ln) for ln in body[1:] if not ln.startswith("#")]
        return PtsTimes(np.asarray(values, dtype=np.int64), True, "v2")
    try:
        values = [int(ln) * 1000 for ln in body]
    except ValueError as exc:
        raise ValueError(f"{path}: neither a v2 .pts nor integer microseconds: {exc}") from None
    return PtsTimes(np.asarray(values, dtype=np.int64), False, "squeakshot-us")
