"""Independent checks of a recorded session: decode every frame, read the capture time drawn into
its pixels, and compare with what the sidecar files claim. Used by the tests; deliberately does
not reuse the writer's code paths except the format readers."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from syncrig_agent.contract.formats import read_frame_table, read_manifest, read_pts
from syncrig_agent.sim.timecode import read_timecode


@dataclass
class CameraCheck:
    name: str
    decoded: int
    pts_lines: int
    table_rows: int
    grid: np.ndarray
    pts_ns: np.ndarray  # ns since T0 from the .pts
    pixel_ns: np.ndarray  # true capture time read from the pixels (absolute ns)
    wall_ns: np.ndarray
    wake_ns: np.ndarray


def decode_luma_timecodes(h264: Path) -> list[int | None]:
    values = []
    with av.open(str(h264), format="h264") as container:
        for frame in container.decode(video=0):
            y = frame.to_ndarray(format="gray")
            values.append(read_timecode(y))
    return values


def ffmpeg_frame_count(h264: Path) -> int:
    """Count frames with a real FFmpeg process (independent of PyAV's demuxer)."""
    from controller.media import ffmpeg_exe

    exe = ffmpeg_exe()
    out = subprocess.run(
        [exe, "-hide_banner", "-nostats", "-f", "h264", "-i", str(h264), "-map", "0:v", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    counts = re.findall(r"frame=\s*(\d+)", out)
    assert counts, out
    return int(counts[-1])


def check_camera(session_dir: Path, name: str) -> CameraCheck:
    raw = session_dir / "raw"
    codes = decode_luma_timecodes(raw / f"{name}.h264")
    pts = read_pts(raw / f"{name}.pts")
    table = read_frame_table(raw / f"{name}.frames.csv")
    assert all(c is not None for c in codes), f"{name}: a decoded frame has no readable timecode"
    return CameraCheck(
        name=name,
        decoded=len(codes),
        pts_lines=len(pts),
        table_rows=len(table["frame"]),
        grid=table["grid_index"],
        pts_ns=pts.times_ns,
        pixel_ns=np.asarray(codes, dtype=np.int64),
        wall_ns=table["wall_ns"],
        wake_ns=table["wake_ns"],
    )


def check_session(session_dir: Path) -> tuple[object, dict[str, CameraCheck]]:
    manifest = read_manifest(session_dir)
    return manifest, {name: check_camera(session_dir, name) for name in manifest.camera_names}


def assert_slots_accounted(summary: dict, expected: int, max_late: int = 2) -> int:
    """A capture summary: every grid slot is a frame or a counted late wake; nothing else lost.

    The simulated sensor exposes on its own clock, so a host stall longer than half a period
    (rare, but real on a busy 2-vCPU CI machine) costs a slot, counted as `late_skips`, never a
    silent gap. Returns the number of frames."""
    stats = summary["stats"]
    assert summary["error"] is None, summary
    assert stats["sensor_drops"] == 0 and stats["queue_overflows"] == 0 and stats["after_failure"] == 0, stats
    assert stats["late_skips"] <= max_late, stats
    assert summary["frames"] + stats["late_skips"] == expected, (summary["frames"], expected, stats)
    return int(summary["frames"])


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):  # noqa: ANN001, ANN201
    """Poll `predicate` every `interval` s until it returns something truthy (returned); fail
    naming `what` and the last value seen."""
    import time

    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {value!r}")
