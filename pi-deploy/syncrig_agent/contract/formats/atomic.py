"""Writing a file so that a reader (or a crash) never sees half of it: a temporary file in the same
directory, then a rename. The one home of this for both sides."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


def write_bytes_atomic(path: Path | str, data: bytes, *, fsync: bool = False) -> Path:
    """Replace `path` with `data` in one rename. `fsync` also flushes the bytes to disk first, for
    files that must survive a power cut (manifests, the rig config). The temporary name carries
    the process and thread, so concurrent writers of one file never share it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only left when the write or the rename failed
    return path


def write_text_atomic(path: Path | str, text: str, *, fsync: bool = False) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), fsync=fsync)


def write_json_atomic(path: Path | str, data: object, *, fsync: bool = False) -> Path:
    """`data` as indented JSON with a final newline."""
    return write_text_atomic(path, json.dumps(data, indent=2) + "\n", fsync=fsync)
