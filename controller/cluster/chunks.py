"""Keyframe-aligned chunks of a video, so that one long camera spreads over many workers.

A chunk is a run of whole GOPs: it starts at a keyframe (PyAV's packet flag) and its packets
decode on their own. The plan is read from the container's packets alone (no decoding). Chunks
are only cut where frames are not reordered (pts rising in decode order: SyncRig's synced
outputs have no B-frames); a video with reordered frames is one chunk.

A chunk's packets (`ChunkPackets`: codec, extradata, packet bytes) are what a worker decodes:
either read by the worker from storage every node sees (`read_chunk`), or read by the driver and
sent through Ray's object store. Both decode with the same code (`decode_chunk`), so the frames are
the same bit for bit wherever they were decoded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


class ChunkError(RuntimeError):
    """A video cannot be planned or a chunk does not decode to the frames its plan promised."""


@dataclass(frozen=True)
class Chunk:
    index: int  # position in the camera's plan
    first_frame: int  # output frame index (decode order = presentation order) of its keyframe
    frames: int
    start_pts: int  # its keyframe's pts (stream time base): where a worker seeks

    @property
    def end_frame(self) -> int:
        return self.first_frame + self.frames


@dataclass(frozen=True)
class ChunkPackets:
    codec: str
    extradata: bytes | None
    packets: list[bytes]

    @property
    def nbytes(self) -> int:
        return sum(len(p) for p in self.packets) + len(self.extradata or b"")


def plan_chunks(video: Path, min_frames: int) -> list[Chunk]:
    """Cut the video at keyframes into chunks of at least `min_frames` frames (the last may be
    shorter; a GOP longer than `min_frames` is one chunk)."""
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            pts, keys = [], []
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None:
                    continue  # the demuxer's flush packet
                pts.append(int(packet.pts))
                keys.append(bool(packet.is_keyframe))
    except (OSError, av.FFmpegError) as exc:
        raise ChunkError(f"cannot read the packets of {video}: {exc}") from None
    if not pts:
        return []
    if not keys[0]:
        raise ChunkError(f"{video}: the first packet is not a keyframe; the video cannot be decoded")
    reordered = bool(np.any(np.diff(np.asarray(pts, np.int64)) <= 0))
    starts = [0] if reordered else [i for i, key in enumerate(keys) if key]
    chunks: list[Chunk] = []
    first = 0
    for i, start in enumerate(starts[1:] + [len(pts)]):
        if start - first >= min_frames or i == len(starts) - 1:
            chunks.append(Chunk(len(chunks), first, start - first, pts[first]))
            first = start
    return chunks


def read_chunk(video: Path, chunk: Chunk) -> ChunkPackets:
    """The chunk's packets, read by seeking to its keyframe."""
    try:
        with av.open(str(video)) as container:
            stream = container.streams.video[0]
            ctx = stream.codec_context
            container.seek(chunk.start_pts, stream=stream, backward=True, any_frame=False)
            packets: list[bytes] = []
            for packet in container.demux(stream):
                if packet.size == 0 or packet.pts is None or packet.pts < chunk.start_pts:
                    continue
                if not packets and not packet.is_keyframe:
                    raise ChunkError(f"{video}: chunk {chunk.index} does not start at a keyframe")
                packets.append(bytes(packet))
                if len(packets) == chunk.frames:
                    break
            codec, extradata = ctx.name, ctx.extradata
    except (OSError, av.FFmpegError) as exc:
        raise ChunkError(f"cannot read chunk {chunk.index} of {video}: {exc}") from None
    if len(packets) != chunk.frames:
        raise ChunkError(f"{video}: chunk {chunk.index} has {len(packets)} packets, planned {chunk.frames}")
    return ChunkPackets(codec, bytes(extradata) if extradata else None, packets)


def decode_chunk(data: ChunkPackets, chunk: Chunk, fmt: str = "rgb24") -> Iterator[tuple[int, np.ndarray]]:
    """(output frame index, picture) of every frame of the chunk, in order."""
    ctx = av.CodecContext.create(data.codec, "r")
    if data.extradata:
        ctx.extradata = data.extradata
    index = chunk.first_frame

    def frames(packet: av.Packet | None) -> Iterator[tuple[int, np.ndarray]]:
        nonlocal index
        for frame in ctx.decode(packet):
            if index >= chunk.end_frame:
                raise ChunkError(f"chunk {chunk.index} decodes to more than its {chunk.frames} frames")
            yield index, frame.to_ndarray(format=fmt)
            index += 1

    try:
        for payload in data.packets:
            yield from frames(av.Packet(payload))
        yield from frames(None)
    except av.FFmpegError as exc:
        raise ChunkError(f"chunk {chunk.index} does not decode: {exc}") from None
    if index != chunk.end_frame:
        raise ChunkError(
            f"chunk {chunk.index} decoded to {index - chunk.first_frame} frames, planned {chunk.frames}"
        )
