"""H.264 through PyAV: libx264 (ultrafast + zerolatency: no B-frames, no lookahead, one packet out
per frame in) or the Pi's V4L2 hardware encoder when present."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from fractions import Fraction

import av

from syncrig_agent.encoders.base import Encoder, EncoderSettings
from syncrig_agent.frames import CapturedFrame, FrameMeta

log = logging.getLogger(__name__)


V4L2_ENCODER_DEVICE = "/dev/video11"  # the Pi 4's bcm2835-codec H.264 encoder
DEVICE_TREE_MODEL = "/proc/device-tree/model"
H264_CODECS = ("auto", "libx264", "h264_v4l2m2m")


def pi_model(path: str = DEVICE_TREE_MODEL) -> str | None:
    """The board name the firmware reports ("Raspberry Pi 4 Model B Rev 1.4"), None off a Pi."""
    try:
        with open(path, "rb") as fh:
            return fh.read().rstrip(b"\0\n").decode("ascii", "replace") or None
    except OSError:
        return None


def choose_h264_codec(
    requested: str = "auto", model_path: str = DEVICE_TREE_MODEL, device: str = V4L2_ENCODER_DEVICE
) -> tuple[str, str]:
    """(codec, why). 'auto' picks by Pi model: the Pi 4 (and 3, CM4) has the V4L2 M2M hardware
    encoder; the Pi 5 has none (and V4L2 empty-buffer issues produced 0-byte files on it in
    SqueakShot), so it gets libx264, as does anything that is not a Pi. A V4L2 choice also needs
    the device node and FFmpeg's wrapper; failing either, libx264 with the reason."""
    if requested not in H264_CODECS:
        raise ValueError(f"codec: must be one of {', '.join(H264_CODECS)}, got {requested!r}")
    if requested != "auto":
        av.codec.Codec(requested, "w")  # raises a clear error when this FFmpeg lacks it
        return requested, "configured"
    model = pi_model(model_path)
    if model is None:
        return "libx264", "not a Raspberry Pi (no device-tree model)"
    if "Raspberry Pi 5" in model or "Compute Module 5" in model:
        return "libx264", f"{model}: no hardware H.264 encoder"
    if not os.path.exists(device):
        return "libx264", f"{model}: V4L2 encoder {device} missing (fallback)"
    try:
        av.codec.Codec("h264_v4l2m2m", "w")
    except Exception as exc:  # not built into this FFmpeg
        return "libx264", f"{model}: h264_v4l2m2m unavailable in FFmpeg ({exc}) (fallback)"
    return "h264_v4l2m2m", f"{model}: V4L2 M2M hardware encoder"


def pick_h264_codec(requested: str = "auto") -> str:
    codec, why = choose_h264_codec(requested)
    if requested == "auto":
        log.info("H.264 encoder: %s (%s)", codec, why)
    return codec


class PyAVH264Encoder(Encoder):
    def __init__(self, settings: EncoderSettings) -> None:
        super().__init__(settings)
        self.codec_name, self.codec_reason = choose_h264_codec(settings.codec)
        log.info("H.264 encoder: %s (%s)", self.codec_name, self.codec_reason)
        self._ctx: av.CodecContext | None = None
        self._pending: dict[int, FrameMeta] = {}
        self._sequence = 0

    def _open(self) -> None:
        try:
            self._open_codec()
        except Exception as exc:
            if self.settings.codec != "auto" or self.codec_name == "libx264":
                raise
            # The hardware encoder exists but would not open (busy, driver): record on libx264.
            log.warning("H.264 encoder %s failed to open (%s): falling back to libx264", self.codec_name, exc)
            self.codec_reason = f"{self.codec_name} failed to open: {exc} (fallback)"
            self.codec_name = "libx264"
            self._open_codec()

    def _open_codec(self) -> None:
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
