"""One real FFmpeg process that turns a camera's H.264 elementary stream into segments.

FFmpeg reads Annex-B H.264 on its stdin and writes `stream/<cam>_NNN.mkv` with `-c copy` through
the segment muxer (cuts happen at keyframes; the agent's encoder has a fixed GOP). If FFmpeg dies
it is started again with the next free segment number, so the earlier segments stay untouched;
it is fed again from the next keyframe, since a decoder cannot start anywhere else.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
from fractions import Fraction
from pathlib import Path

from syncrig_agent.contract.layout import StreamFolder

log = logging.getLogger(__name__)


def next_segment_number(stream_dir: Path, camera: str) -> int:
    return max(StreamFolder(stream_dir).segments(camera), default=-1) + 1


class SegmentWriter:
    def __init__(
        self, ffmpeg: str, stream_dir: Path, camera: str, fps: float, segment_seconds: float = 2.0
    ) -> None:
        self.ffmpeg = ffmpeg
        self.stream_dir = stream_dir
        self.camera = camera
        self.fps = fps
        self.segment_seconds = segment_seconds
        self.proc: subprocess.Popen | None = None
        self.runs = 0  # FFmpeg processes started (restarts = runs - 1)
        self.need_keyframe = True
        self.frames_fed = 0
        self.log_path = StreamFolder(stream_dir).ffmpeg_log(camera)

    @property
    def restarts(self) -> int:
        return max(0, self.runs - 1)

    def command(self, start_number: int) -> list[str]:
        rate = Fraction(self.fps).limit_denominator(1001)
        return [
            self.ffmpeg,
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "warning",
            # Every stream starts with SPS/PPS + IDR, and -framerate is given: no probing needed.
            # (Probing decodes frames first; eight FFmpegs doing that at once stall the start.)
            "-probesize",
            "32768",
            "-analyzeduration",
            "0",
            "-fflags",
            "+genpts",
            "-f",
            "h264",
            "-framerate",
            f"{rate.numerator}/{rate.denominator}",
            "-i",
            "pipe:0",
            "-map",
            "0:v",
            "-c",
            "copy",
            # The raw H.264 demuxer only sets DTS; without B-frames PTS = DTS.
            "-bsf:v",
            "setts=pts=DTS",
            "-f",
            "segment",
            "-segment_time",
            f"{self.segment_seconds:g}",
            "-segment_format",
            "matroska",
            "-segment_start_number",
            str(start_number),
            "-reset_timestamps",
            "1",
            str(StreamFolder(self.stream_dir).segment_template(self.camera)),
        ]

    def _spawn(self) -> None:
        start = next_segment_number(self.stream_dir, self.camera)
        logfh = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(
                self.command(start), bufsize=0, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=logfh
            )
        finally:
            logfh.close()
        self.runs += 1
        self.need_keyframe = True
        if self.runs > 1:
            log.warning(
                "%s: FFmpeg restarted (run %d), segments continue at %d", self.camera, self.runs, start
            )

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def resync(self) -> None:
        """A new stream connection: the next packet fed must be a keyframe."""
        self.need_keyframe = True

    def ensure_running(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                log.error("%s: FFmpeg exited with %s", self.camera, self.proc.returncode)
            self._spawn()

    def write(self, data: bytes, keyframe: bool) -> bool:
        """Feed one access unit; True if FFmpeg took it (False: skipped until the next keyframe)."""
        self.ensure_running()
        if self.need_keyframe and not keyframe:
            return False
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ValueError, OSError) as exc:
            log.error("%s: FFmpeg pipe broken (%s)", self.camera, exc)
            self._reap()
            self.proc = None
            return False
        self.need_keyframe = False
        self.frames_fed += 1
        return True

    def flush(self) -> None:
        if self.proc is not None and self.proc.stdin is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.proc.stdin.flush()

    def _reap(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def close(self) -> int | None:
        """End of stream: close FFmpeg's input so it finalises the last segment; its exit code."""
        proc = self.proc
        self._reap()
        self.proc = None
        return None if proc is None else proc.returncode
