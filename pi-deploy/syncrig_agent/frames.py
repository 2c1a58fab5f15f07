"""The frames that travel through an agent: captured (backend → encoder) and encoded (encoder → outputs).

They live apart from backends, encoders and outputs so that each of those imports only this
module and never one another (picamera2's shape: an output knows encoded frames, not encoders).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from syncrig_agent.contract.formats.frame_table import FrameRow


@dataclass(frozen=True)
class FrameMeta:
    grid_index: int
    wall_ns: int  # capture time on the shared clock (the camera's disciplined wall clock)
    sensor_ns: int  # the sensor's own timestamp (monotonic domain)
    target_ns: int  # Tn of grid_index
    wake_ns: int  # when the agent's software got to this frame (camera clock): scheduling quality


@dataclass
class CapturedFrame:
    image: np.ndarray  # I420 / yuv420p, shape (H*3//2, W), uint8; owned by the receiver
    meta: FrameMeta


@dataclass(frozen=True)
class EncodedFrame:
    data: bytes  # Annex-B access unit
    keyframe: bool
    meta: FrameMeta
    position: int  # 0-based position in the stream (= line in .pts, row in frames.csv)

    def row(self) -> FrameRow:
        """This frame's line of `frames.csv` (and of the live stream's per-frame header)."""
        meta = self.meta
        return FrameRow(
            frame=self.position,
            grid_index=meta.grid_index,
            wall_ns=meta.wall_ns,
            sensor_ns=meta.sensor_ns,
            target_ns=meta.target_ns,
            keyframe=int(self.keyframe),
            size=len(self.data),
            wake_ns=meta.wake_ns,
        )
