"""External media tools the desktop uses, found the same way everywhere."""

from __future__ import annotations

import os
import shutil


def ffmpeg_exe() -> str:
    """The FFmpeg binary: $SYNCRIG_FFMPEG, else `ffmpeg` on PATH, else the one imageio-ffmpeg ships
    (a pip dependency, so a fresh machine needs nothing installed by hand)."""
    explicit = os.environ.get("SYNCRIG_FFMPEG")
    if explicit:
        return explicit
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()
