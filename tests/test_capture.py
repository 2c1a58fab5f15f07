"""One camera's capture in-process: backend → encoder → outputs, and what happens when things go
wrong (existing files, a nearly full disk, an encoder that cannot keep up)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from syncrig_agent.backends.synthetic import SyntheticCamera
from syncrig_agent.capture import CameraSession, CaptureOptions
from syncrig_agent.contract.grid import FrameGrid, period_ns_for_fps
from syncrig_agent.encoders.base import EncoderSettings
from syncrig_agent.outputs.base import Output
from syncrig_agent.outputs.local_file import OutputExists
from syncrig_agent.timing import SystemClock

from session_checks import assert_slots_accounted, check_camera

FPS = 50.0
PERIOD = period_ns_for_fps(FPS)


def make_session(
    tmp_path: Path,
    session_id: str = "s1",
    frames: int = 20,
    options: CaptureOptions | None = None,
    extra_outputs: list[Output] | None = None,
    queue_frames: int = 32,
) -> CameraSession:
    backend = SyntheticCamera(320, 240, SystemClock(), camera_name="cam0")
    backend.open()
    grid = FrameGrid(time.time_ns() + 50_000_000, PERIOD)
    session = CameraSession(
        "cam0",
        session_id,
        tmp_path,
        grid,
        backend,
        EncoderSettings(320, 240, FPS, bitrate=1_000_000, keyframe_interval=10, queue_frames=queue_frames),
        options or CaptureOptions(realtime=False),
        extra_outputs=extra_outputs,
    )
    session.arm()
    session.stop_at(grid.target(frames))
    return session


def test_records_exactly_the_planned_slots(tmp_path: Path) -> None:
    session = make_session(tmp_path, frames=25)
    assert session.wait(10)
    frames = assert_slots_accounted(session.summary(), 25)
    cam = check_camera(tmp_path / "s1", "cam0")
    assert cam.decoded == cam.pts_lines == frames and set(cam.grid.tolist()) <= set(range(25))
    assert (tmp_path / "s1" / "cam0.capture.json").exists()


def test_existing_recording_is_never_overwritten(tmp_path: Path) -> None:
    session = make_session(tmp_path, frames=5)
    assert session.wait(10)
    raw = tmp_path / "s1" / "raw"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    with pytest.raises(OutputExists, match="refusing to overwrite"):
        make_session(tmp_path, frames=5)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in raw.iterdir()}
    assert before == after
    # A partial leftover (one file of three) blocks too, and is left as it was.
    (tmp_path / "s2" / "raw").mkdir(parents=True)
    (tmp_path / "s2" / "raw" / "cam0.pts").write_text("precious\n")
    with pytest.raises(OutputExists):
        make_session(tmp_path, session_id="s2")
    assert (tmp_path / "s2" / "raw" / "cam0.pts").read_text() == "precious\n"
    assert not (tmp_path / "s2" / "raw" / "cam0.h264").exists()


def test_nearly_full_disk_stops_cleanly_with_consistent_files(tmp_path: Path) -> None:
    # Demand more free space than any disk has: the output must stop writing at a frame
    # boundary, report why, and leave .h264/.pts/.frames.csv agreeing with each other.
    options = CaptureOptions(realtime=False, flush_interval_s=0.1, min_free_bytes=1 << 62)
    session = make_session(tmp_path, frames=40, options=options)
    assert session.wait(10)
    summary = session.summary()
    assert "disk nearly full" in summary["error"]
    # Capture stopped soon after the failure instead of counting the rest as overflows.
    assert summary["stats"]["queue_overflows"] == 0
    assert summary["stats"]["after_failure"] <= 2
    cam = check_camera(tmp_path / "s1", "cam0")
    assert 0 < cam.decoded == cam.pts_lines == cam.table_rows < 40


class SlowOutput(Output):
    """An output that stalls: the encoder queue fills and frames are discarded, counted."""

    def output_frame(self, frame) -> None:
        time.sleep(0.05)


def test_encoder_overflow_is_counted_and_visible(tmp_path: Path) -> None:
    session = make_session(tmp_path, frames=40, extra_outputs=[SlowOutput()], queue_frames=2)
    assert session.wait(20)
    stats = session.summary()["stats"]
    assert stats["queue_overflows"] > 0
    cam = check_camera(tmp_path / "s1", "cam0")
    assert cam.decoded == cam.pts_lines
    assert cam.decoded + stats["queue_overflows"] + stats["late_skips"] == 40
    missing = set(range(40)) - set(cam.grid.tolist())
    assert len(missing) == stats["queue_overflows"] + stats["late_skips"]


def test_abort_closes_files(tmp_path: Path) -> None:
    session = make_session(tmp_path, frames=10_000)
    time.sleep(0.4)
    session.abort("test")
    assert session.wait(10)
    assert session.summary()["error"] == "aborted: test"
    cam = check_camera(tmp_path / "s1", "cam0")
    assert cam.decoded == cam.pts_lines == cam.table_rows > 5


def test_failed_arm_leaves_nothing_behind_and_can_be_retried(tmp_path: Path) -> None:
    backend = SyntheticCamera(320, 240, SystemClock(), camera_name="cam0")
    grid = FrameGrid(time.time_ns() + 50_000_000, PERIOD)
    broken = CameraSession(
        "cam0",
        "s1",
        tmp_path,
        grid,
        backend,
        EncoderSettings(320, 240, FPS, codec="no-such-codec"),
        CaptureOptions(realtime=False),
    )
    with pytest.raises(Exception, match="no-such-codec"):
        broken.arm()
    assert not (tmp_path / "s1").exists()
    session = make_session(tmp_path, frames=5)  # same session id: not blocked by leftovers
    assert session.wait(10)
    assert_slots_accounted(session.summary(), 5)
