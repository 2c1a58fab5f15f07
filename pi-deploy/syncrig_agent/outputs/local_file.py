"""The local recording: `raw/<cam>.h264` + `raw/<cam>.pts` + `raw/<cam>.frames.csv`.

The three files are one output so they can never disagree: every frame appends to all three, and
if any write fails all three stop at the same frame. This copy on the Pi is the source of truth.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from syncrig_agent.contract.formats.frame_table import write_frame_header, write_frame_row
from syncrig_agent.contract.formats.pts import PTS_HEADER, format_pts_line
from syncrig_agent.contract.layout import RawFolder
from syncrig_agent.outputs.base import Output


class OutputExists(FileExistsError):
    """A recording file already exists: recordings are never overwritten."""


class LocalFileOutput(Output):
    essential = True

    def __init__(
        self,
        raw_dir: Path | str,
        camera: str,
        t0_ns: int,
        flush_interval_s: float = 0.5,
        min_free_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        super().__init__()
        self.paths = RawFolder(Path(raw_dir)).files(camera)
        self.t0_ns = t0_ns
        self.flush_interval_s = flush_interval_s
        self.min_free_bytes = min_free_bytes
        self.bytes_written = 0
        self._last_flush = time.monotonic()
        self._open_files()

    def _open_files(self) -> None:
        existing = [str(p) for p in self.paths.values() if p.exists()]
        if existing:
            raise OutputExists(f"refusing to overwrite existing recording files: {', '.join(existing)}")
        created: list[Path] = []
        try:
            # 'x' = O_EXCL: even a file appearing between the check above and now is not clobbered.
            self._video = open(self.paths["h264"], "xb")
            created.append(self.paths["h264"])
            self._pts = open(self.paths["pts"], "x", encoding="ascii")
            created.append(self.paths["pts"])
            self._table = open(self.paths["frames"], "x", encoding="ascii", newline="")
            created.append(self.paths["frames"])
        except BaseException:
            for path in created:  # only the empty files we just made ourselves
                path.unlink(missing_ok=True)
            raise
        self._pts.write(PTS_HEADER + "\n")
        write_frame_header(self._table)

    def output_frame(self, frame) -> None:  # type: ignore[override]
        meta = frame.meta
        self._video.write(frame.data)
        self._pts.write(format_pts_line(meta.wall_ns - self.t0_ns) + "\n")
        write_frame_row(self._table, frame.row())
        self.bytes_written += len(frame.data)
        now = time.monotonic()
        if now - self._last_flush >= self.flush_interval_s:
            self._last_flush = now
            self._flush()
            free = shutil.disk_usage(self.paths["h264"].parent).free
            if free < self.min_free_bytes:
                # Stop while the files are still whole rather than die mid-write on a full disk.
                self.fail(f"disk nearly full ({free // (1024 * 1024)} MiB free); recording stopped cleanly")

    def discard_unused(self) -> None:
        """Remove the files again — only possible while no frame has been written (a start that
        failed while arming), so a retry with the same session is not blocked by empty files."""
        if self.frames:
            raise RuntimeError("refusing to discard a recording that has frames")
        self.stop()
        for path in self.paths.values():
            path.unlink(missing_ok=True)

    def _flush(self) -> None:
        for fh in (self._video, self._pts, self._table):
            fh.flush()

    def stop(self) -> None:
        super().stop()
        for fh in (self._video, self._pts, self._table):
            if fh.closed:
                continue
            try:
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fh.close()
