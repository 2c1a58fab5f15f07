"""`ttl/<cam>.out.csv` and `ttl/<cam>.in.csv`: every TTL edge a camera's agent sent or saw.

out: `edge,role,line,level,target_ns,wall_ns` — edge = running number in the file, role one of
contract.ttl.TTL_ROLES, line the GPIO line offset, level 1 (rising) or 0 (falling), target_ns when
it was scheduled and wall_ns when the line was set (read right after), both Unix ns on the shared
clock.
in: `edge,name,line,level,wall_ns` — name = the input's configured name, wall_ns the kernel's edge
timestamp mapped onto the shared clock.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import numpy as np

TTL_OUT_COLUMNS = ("edge", "role", "line", "level", "target_ns", "wall_ns")
TTL_IN_COLUMNS = ("edge", "name", "line", "level", "wall_ns")


class TtlTableError(ValueError):
    pass


def write_header(fh: TextIO, columns: tuple[str, ...]) -> None:
    fh.write(",".join(columns) + "\n")


def format_out_row(edge: int, role: str, line: int, level: int, target_ns: int, wall_ns: int) -> str:
    return f"{edge},{role},{line},{level},{target_ns},{wall_ns}\n"


def format_in_row(edge: int, name: str, line: int, level: int, wall_ns: int) -> str:
    return f"{edge},{name},{line},{level},{wall_ns}\n"


def _read(path: Path | str, columns: tuple[str, ...], text_columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with open(path, newline="", encoding="ascii") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            rows = [r for r in reader if r]
    except (OSError, UnicodeDecodeError) as exc:
        raise TtlTableError(f"{path}: cannot read: {exc}") from None
    if header is None:
        raise TtlTableError(f"{path}: empty file, expected the header {','.join(columns)}")
    missing = [c for c in columns if c not in header]
    if missing:
        raise TtlTableError(f"{path}: missing column(s) {', '.join(missing)} (expected {','.join(columns)})")
    out: dict[str, np.ndarray] = {}
    for name in columns:
        i = header.index(name)
        values = [r[i] if i < len(r) else "" for r in rows]
        if name in text_columns:
            out[name] = np.asarray(values, dtype=str)
            continue
        try:
            out[name] = np.asarray([int(v) for v in values], dtype=np.int64)
        except ValueError:
            bad = next(n for n, v in enumerate(values) if not v.lstrip("-").isdigit())
            raise TtlTableError(
                f"{path}: row {bad + 2}, column {name}: expected an integer, got {values[bad]!r}"
            ) from None
    return out


def read_ttl_out(path: Path | str) -> dict[str, np.ndarray]:
    """Columns of an out table (role as str, the rest int64)."""
    return _read(path, TTL_OUT_COLUMNS, ("role",))


def read_ttl_in(path: Path | str) -> dict[str, np.ndarray]:
    """Columns of an in table (name as str, the rest int64)."""
    return _read(path, TTL_IN_COLUMNS, ("name",))
