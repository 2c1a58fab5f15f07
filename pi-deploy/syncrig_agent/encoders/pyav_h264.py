"""H.264 through PyAV: libx264 (ultrafast + zerolatency: no B-frames, no lookahead, one packet out
per frame in) or the Pi's V4L2 hardware encoder when present."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from fractions import Fraction

import av

from ..backends.base import CapturedFrame, FrameMeta
from .base import Encoder, EncoderSettings

log = logging.getLogger(__name__)


def pick_h264_codec(requested: str = "auto") -> str:
    """'auto' prefers the Pi 4's V4L2 encoder when its device exists; libx264 otherwise.

    The Pi 5 has no hardware H.264 encoder (and V4L2 empty-buffer issues produced 0-byte files on
    it in SqueakShot), so the device check, not the codec list, decides.
    """
    if requested != "auto":
        av.codec.Codec(requested, "w")  # raises a clear error for an unknown codec
        return requested
    if os.path.exists("/dev/video11"):
        try:
            av.codec.Codec("h264_v4l2m2m", "w")
            return "h264_v4l2m2m"
        except Exception:  # not built into this FFmpeg
            pass
    return "libx264"


class PyAVH264Encoder(Encoder):
    def __init__(self, settings: EncoderSettings) -> None:
        super().__init__(settings)
        self.codec_name = pick_h264_codec(settings.codec)
        self._ctx: av.CodecContext | None = None
        self._pending: dict[int, FrameMeta] = {}
        self._sequence = 0

    def _open(self) -> None:
        s = self.settings
        # PyAV rejects float frame rates; a Fraction keeps 29.97 exact too.
        rate = Fraction(s.fps).limit_denominator(1001)
        ctx = av.CodecContext.create(self.codec_name, "w")
        ctx.width = s.width
        ctx.height = s.height
        ctx.pix_fmt = "yuv420p"
        ctx.framerate = rate
        ctx.time_base = 1 / rate
        ctx.bit_rate = int(s.bitrate)
        ctx.gop_size = int(s.keyframe_interval)
        ctx.max_b_frames = 0
        if s.threads:
            ctx.thread_count = s.threads
        if self.codec_name == "libx264":
            gop = int(s.keyframe_interval)
            ctx.options = {
                "preset": s.preset,
                "tune": "zerolatency",
                # Fixed GOP (no scene-cut IDRs) and SPS/PPS before every IDR, so any keyframe is a
                # place where a segment, a copy or a resumed stream can start on its own.
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:repeat-headers=1",
            }
        ctx.open()
        self._ctx = ctx

    def _packets(self, packets: Iterable[av.Packet]) -> Iterable[tuple[bytes, bool, FrameMeta]]:
        for packet in packets:
            meta = self._pending.pop(int(packet.pts), None)
            if meta is None:
                raise RuntimeError(f"encoder returned a packet with unknown pts {packet.pts}")
            yield bytes(packet), bool(packet.is_keyframe), meta

    def _encode(self, frame: CapturedFrame) -> Iterable[tuple[bytes, bool, FrameMeta]]:
        assert self._ctx is not None
        video = av.VideoFrame.from_ndarray(frame.image, format="yuv420p")
        # Consecutive pts per encoded frame (slots that were dropped never reach the encoder);
        # the packet's pts leads back to the frame's metadata.
        video.pts = self._sequence
        self._pending[self._sequence] = frame.meta
        self._sequence += 1
        return list(self._packets(self._ctx.encode(video)))

    def _flush(self) -> Iterable[tuple[bytes, bool, FrameMeta]]:
        assert self._ctx is not None
        return list(self._packets(self._ctx.encode(None)))

    def _close(self) -> None:
        self._ctx = None
        if self._pending:
            log.warning("%d frames never came out of the encoder", len(self._pending))
