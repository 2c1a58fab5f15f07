"""Encoders: frames in, encoded frames out to every attached output (picamera2's shape)."""

from syncrig_agent.encoders.base import Encoder, EncoderSettings
from syncrig_agent.encoders.pyav_h264 import PyAVH264Encoder, choose_h264_codec, pick_h264_codec

__all__ = [
    "Encoder",
    "EncoderSettings",
    "PyAVH264Encoder",
    "choose_h264_codec",
    "pick_h264_codec",
]
