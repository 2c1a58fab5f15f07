"""Encoded frames of a recorded camera, in stream order, without decoding them.

`raw/<cam>.h264` is Annex-B with one access unit per frame; `frames.csv` gives each frame's size,
so the packets are cut straight out of a memory map. Without a frame table (imported recordings)
FFmpeg's H.264 parser splits the stream instead, and the count is checked against the `.pts`.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass

import av
import numpy as np

from controller.pipeline.sources import CameraTrack, SessionError


@dataclass
class SourcePacket:
    index: int  # position in the camera's stream (= line of its .pts)
    data: bytes
    keyframe: bool


def iter_packets(track: CameraTrack, stop: int | None = None) -> Iterator[SourcePacket]:
    """Packets 0..stop-1 (default all) of the camera's raw stream."""
    count = len(track) if stop is None else min(stop, len(track))
    if count <= 0:
        return
    if track.sizes is not None and track.keyframe is not None:
        yield from _packets_by_size(track, count)
    else:
        yield from _packets_by_parser(track, count)


def _packets_by_size(track: CameraTrack, count: int) -> Iterator[SourcePacket]:
    sizes = np.asarray(track.sizes, dtype=np.int64)
    ends = np.cumsum(sizes)
    file_size = track.video.stat().st_size
    if ends.size and int(ends[-1]) != file_size:
        raise SessionError(
            f"camera {track.name}: frames.csv sizes add up to {int(ends[-1])} bytes but "
            f"{track.video.name} has {file_size}"
        )
    starts = ends - sizes
    keys = track.keyframe
    with open(track.video, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        for i in range(count):
            yield SourcePacket(i, mm[int(starts[i]) : int(ends[i])], bool(keys[i]))


def _packets_by_parser(track: CameraTrack, count: int) -> Iterator[SourcePacket]:
    index = 0
    with av.open(str(track.video), format="h264") as container:
        for packet in container.demux(video=0):
            if packet.size == 0:
                continue
            if index >= count:
                return
            yield SourcePacket(index, bytes(packet), bool(packet.is_keyframe))
            index += 1
    if index < count:
        raise SessionError(
            f"camera {track.name}: {track.video.name} holds {index} frames but its .pts has {len(track)}"
        )


def packet_index(track: CameraTrack) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start offsets, sizes, keyframe flags) of every frame, for random access (previews)."""
    if track.sizes is not None and track.keyframe is not None:
        sizes = np.asarray(track.sizes, dtype=np.int64)
        return np.cumsum(sizes) - sizes, sizes, np.asarray(track.keyframe, dtype=bool)
    sizes, keys = [], []
    for packet in _packets_by_parser(track, len(track)):
        sizes.append(len(packet.data))
        keys.append(packet.keyframe)
    # The parser's packets are the file's bytes in order, so offsets follow from the sizes.
    size_arr = np.asarray(sizes, dtype=np.int64)
    return np.cumsum(size_arr) - size_arr, size_arr, np.asarray(keys, dtype=bool)


# --- NAL units, to check that a copied frame is bit-identical to the recorded one after the MP4
# muxer rewrote Annex-B start codes as length prefixes.


def annexb_nal_units(data: bytes) -> list[bytes]:
    """Split Annex-B bytes at start codes (3- or 4-byte); C-speed `bytes.find`, no byte loop."""
    units = []
    pos = data.find(b"\x00\x00\x01")
    while pos >= 0:
        start = pos + 3
        nxt = data.find(b"\x00\x00\x01", start)
        # A NAL unit ends in its rbsp stop bit (never 0x00); zeros before the next start code are
        # that code's leading zero byte or trailing_zero_8bits.
        units.append(data[start:].rstrip(b"\x00") if nxt < 0 else data[start:nxt].rstrip(b"\x00"))
        pos = nxt
    return units


def length_prefixed_nal_units(data: bytes, length_size: int = 4) -> list[bytes]:
    units, i = [], 0
    while i + length_size <= len(data):
        size = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        units.append(data[i : i + size])
        i += size
    if i != len(data):
        raise ValueError("truncated length-prefixed sample")
    return units
