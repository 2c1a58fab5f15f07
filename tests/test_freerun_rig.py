"""Free-running simulated sensors in real agent processes: every camera phase-locks during the
START lead, all cameras record the same grid slots, and the true capture times read back from the
pixels agree across cameras; with a short lead the frames before lock are counted, not written."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from controller.rig.recording import RecordingRequest, record
from controller.rig.simulated import SimCamera

from session_checks import check_session

FPS = 30.0
SECONDS = 2.0
EXPECTED = round(FPS * SECONDS)
PERIOD = round(1e9 / FPS)


def freerun_cameras(crystals: list[float]) -> list[SimCamera]:
    return [
        SimCamera(f"cam{i}", trigger="freerun", crystal_ppm=ppm, jitter_us=2.0)
        for i, ppm in enumerate(crystals)
    ]


def record_session(rig, root: Path) -> Path:
    with rig.link() as link:
        return record(link, root, rig.camera_infos(), RecordingRequest(fps=FPS, seconds=SECONDS))


def test_freerun_cameras_lock_before_t0_and_share_the_grid(make_rig, tmp_path: Path) -> None:
    rig = make_rig(cameras=freerun_cameras([-48.0, 0.0, 47.0]))
    with rig.link() as link:
        status = link.status()
    assert status["server"]["phase_lock"]["state"] == "idle"
    assert all(c["status"]["phase_lock"]["lock_lead_ns"] > 0 for c in status["clients"].values())
    session = record_session(rig, tmp_path / "sessions")
    manifest, cams = check_session(session)
    assert manifest.start["lead_ns"] >= 1_000_000_000, "cam0 lengthens the lead for free-running sensors"
    grids = {}
    for entry in manifest.cameras:
        lock = entry["phase_lock"]
        assert lock["state"] == "locked" and lock["error"] is None, (entry["name"], lock)
        assert lock["locked_at_ns"] < manifest.t0_ns and lock["locked_at_index"] < 0, "locked during the lead"
        assert lock["since_lock"]["p99_us"] <= 50.0, lock
        assert entry["drops"]["before_lock"] == 0
        assert entry["frames"] == EXPECTED and entry["error"] is None, entry
        assert entry["backend"]["sensor"]["model"] == "simulated free-running"
        cam = cams[entry["name"]]
        assert cam.decoded == cam.pts_lines == cam.table_rows == EXPECTED
        # The metadata's capture time is the true one the pixels show, and it sits on the grid.
        targets = manifest.t0_ns + cam.grid * PERIOD
        assert np.abs(cam.wall_ns - cam.pixel_ns).max() < 20_000
        assert np.percentile(np.abs(cam.pixel_ns - targets), 99) <= 50_000
        grids[entry["name"]] = cam
    first = grids["cam0"].grid
    for cam in grids.values():
        assert np.array_equal(cam.grid, first), "every camera records the same grid slots"
    truth = np.stack([c.pixel_ns for c in grids.values()])
    spread = truth.max(axis=0) - truth.min(axis=0)
    assert np.percentile(spread, 99) <= 60_000 and spread.max() <= 100_000, spread
    with rig.link() as link:
        status = link.status()
    assert status["server"]["phase_lock"]["locked_at_ns"] == manifest.cameras[0]["phase_lock"]["locked_at_ns"]


def test_frames_before_lock_are_counted_not_written(make_rig, tmp_path: Path) -> None:
    # No extra lead: the sensors start when the session arms (~0.2 s before T0) and lock after T0.
    rig = make_rig(cameras=freerun_cameras([30.0, -30.0]), extra_args=["--lock-lead-ms", "0"])
    session = record_session(rig, tmp_path / "sessions")
    manifest, cams = check_session(session)
    for entry in manifest.cameras:
        lock = entry["phase_lock"]
        cam = cams[entry["name"]]
        held = entry["drops"]["before_lock"]
        assert lock["state"] == "locked" and lock["locked_at_index"] >= 0, lock
        assert held > 0 and entry["frames"] + held == EXPECTED, entry
        assert int(cam.grid[0]) == held == lock["locked_at_index"], (cam.grid[:3], lock)
        assert np.array_equal(cam.grid, np.arange(held, EXPECTED)), "written from the lock on, no gaps"
        targets = manifest.t0_ns + cam.grid * PERIOD
        assert np.abs(cam.pixel_ns - targets).max() <= 50_000, "no unlocked frame was written"


def test_a_camera_that_cannot_lock_in_time_records_flagged(make_rig, tmp_path: Path) -> None:
    # A 1 µs threshold is below the sensor's line granularity: it never locks.
    rig = make_rig(
        cameras=freerun_cameras([10.0]),
        extra_args=["--lock-threshold-us", "1", "--lock-timeout-s", "0.5"],
    )
    session = record_session(rig, tmp_path / "sessions")
    manifest, cams = check_session(session)
    entry = manifest.cameras[0]
    lock = entry["phase_lock"]
    assert lock["state"] == "locking" and lock["locked_at_ns"] is None
    assert "not phase-locked 0.5 s after T0" in lock["error"]
    held = entry["drops"]["before_lock"]
    assert abs(held - 0.5 * FPS) <= 2 and entry["frames"] + held == EXPECTED, entry
