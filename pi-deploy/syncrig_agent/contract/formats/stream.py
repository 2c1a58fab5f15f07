"""The live stream: what an agent sends to a desktop receiver, frame by frame.

After the shared-secret handshake (protocol.auth, agent = connector) the agent sends one control
message (protocol.framing: length-prefixed JSON) describing the stream:

    {"type": "stream", "camera": "cam1", "session_id": "...", "t0_ns": ..., "period_ns": ...,
     "resumed": false}

then binary frame records, each a fixed header followed by the Annex-B access unit:

    magic "SF" | flags u8 | reserved u8 | frame u64 | grid_index i64 | wall_ns i64 | sensor_ns i64
    | target_ns i64 | wake_ns i64 | size u32 | <size bytes>

`frame` is the position in the agent's local `.h264` (the row in its frames.csv), so the desktop
knows exactly which frames it has and which it must fill from the Pi's copy. A record with the END
flag (and no payload) means the recording is over: the receiver closes its files. The first seed
sent `{u64 ts}{u32 size}{packet}`; this carries the whole frame-table row instead.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from syncrig_agent.contract.formats.frame_table import FrameRow

STREAM_MESSAGE = "stream"
MAGIC = b"SF"
FLAG_KEYFRAME = 0x01
FLAG_END = 0x02
FRAME_HEADER = struct.Struct("!2sBxQqqqqqI")
# One access unit at 25 Mbit/s is ~60 KiB; an IDR of a busy 4K frame stays well below this.
MAX_PACKET_BYTES = 32 * 1024 * 1024


class StreamFormatError(ValueError):
    """Bytes on a stream connection that are not a frame record."""


@dataclass(frozen=True)
class StreamFrame:
    row: FrameRow  # frame, grid_index, wall_ns, sensor_ns, target_ns, keyframe, size, wake_ns
    data: bytes

    @property
    def keyframe(self) -> bool:
        return bool(self.row.keyframe)


def encode_frame_header(row: FrameRow) -> bytes:
    flags = FLAG_KEYFRAME if row.keyframe else 0
    return FRAME_HEADER.pack(
        MAGIC,
        flags,
        row.frame,
        row.grid_index,
        row.wall_ns,
        row.sensor_ns,
        row.target_ns,
        row.wake_ns,
        row.size,
    )


def encode_end() -> bytes:
    return FRAME_HEADER.pack(MAGIC, FLAG_END, 0, 0, 0, 0, 0, 0, 0)


def decode_frame_header(header: bytes) -> tuple[FrameRow | None, int]:
    """(row, payload size) — row is None for the END record. Raises StreamFormatError."""
    if len(header) != FRAME_HEADER.size:
        raise StreamFormatError(f"short frame header ({len(header)} bytes)")
    magic, flags, frame, grid, wall, sensor, target, wake, size = FRAME_HEADER.unpack(header)
    if magic != MAGIC:
        raise StreamFormatError(f"bad frame magic {magic!r}: not a SyncRig stream (or out of sync)")
    if flags & ~(FLAG_KEYFRAME | FLAG_END):
        raise StreamFormatError(f"unknown frame flags {flags:#x}")
    if flags & FLAG_END:
        return None, 0
    if size == 0 or size > MAX_PACKET_BYTES:
        raise StreamFormatError(f"frame {frame}: packet size {size} out of range")
    row = FrameRow(
        frame=frame,
        grid_index=grid,
        wall_ns=wall,
        sensor_ns=sensor,
        target_ns=target,
        keyframe=int(bool(flags & FLAG_KEYFRAME)),
        size=size,
        wake_ns=wake,
    )
    return row, size


def stream_hello(camera: str, session_id: str, t0_ns: int, period_ns: int, resumed: bool) -> dict:
    return {
        "type": STREAM_MESSAGE,
        "camera": camera,
        "session_id": session_id,
        "t0_ns": int(t0_ns),
        "period_ns": int(period_ns),
        "resumed": bool(resumed),
    }
