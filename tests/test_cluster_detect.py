"""Chunked board detection (`syncrig process --steps detect`): chunk scans merged in chunk order
write exactly what `syncrig detect` writes, filled frames skipped, on rendered ChArUco footage
with a keyframe every 4 frames (the serial backend: the same units of work Ray runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

from controller.cluster.process import ProcessOptions, process
from controller.dataset.board.detect import detect_session
from controller.dataset.board.spec import BoardSpec
from controller.dataset.synthetic_session import write_synced_session
from syncrig_agent.contract.layout import SessionLayout
from syncrig_agent.sim.charuco_scene import CharucoScene
from syncrig_agent.sim.charuco_sim import camera_config, scene_description

from cluster_support import npz_members

WIDTH, HEIGHT = 640, 480
T_BASE = 1_790_000_000_000_000_000
CAMERAS = ["cam0", "cam1"]


def test_chunked_detection_writes_what_detect_writes(tmp_path: Path) -> None:
    description = scene_description(CAMERAS, WIDTH, HEIGHT)
    spec = BoardSpec(**description["board"])
    pictures = {}
    for cam in CAMERAS:
        scene = CharucoScene(WIDTH, HEIGHT, cam, camera_config(description, cam))
        pictures[cam] = [scene.render(T_BASE + k * 250_000_000, k).copy() for k in range(14)]
    session = tmp_path / "serial" / "board"
    write_synced_session(session, pictures, gop=4)
    map_csv = SessionLayout(session).synced.map("cam1")
    lines = map_csv.read_text().splitlines()
    for k in (5, 6):  # repeats standing in for dropped instants (`--fill repeat`): not detected
        cells = lines[1 + k].split(",")
        cells[5] = "1"
        lines[1 + k] = ",".join(cells)
    map_csv.write_text("\n".join(lines) + "\n")
    chunked = tmp_path / "chunked"
    shutil.copytree(tmp_path / "serial", chunked, copy_function=shutil.copy2)
    spec.save(SessionLayout(chunked / "board").board_file)

    reference = detect_session(session, spec)
    report = process([chunked], ProcessOptions(steps=["detect"], serial=True, chunk_frames=4))
    assert report["computed"] == 2 * 4  # 14 frames: chunks of 4, 4, 4, 2 per camera
    assert 5 not in reference["cam1"].rows() and len(reference["cam0"].rows()) >= 10
    for cam in CAMERAS:
        ours = SessionLayout(chunked / "board").detections_file(cam)
        assert npz_members(ours) == npz_members(SessionLayout(session).detections_file(cam)), cam
    again = process([chunked], ProcessOptions(steps=["detect"], serial=True, chunk_frames=4))
    assert again["computed"] == 0 and again["reused"] == 8


def test_process_runs_as_a_job_for_the_job_panel(tmp_path: Path) -> None:
    from calibration_support import rigless_runtime
    from web_support import app_client

    rt = rigless_runtime(tmp_path)
    try:
        api = app_client(rt)
        base = "/api/sessions/calsession/process"
        for body, field in (
            ({"steps": ["bogus"]}, "steps"),
            ({"workers": 0}, "workers"),
            ({"serial": 1}, "serial"),
        ):
            resp = api.post(base, body)
            assert resp.status_code == 400 and resp.get_json()["field"] == field, body
        job = api.wait_job(
            api.post(base, {"steps": ["calibrate"], "serial": True}).get_json()["job_id"], timeout=120
        )
        assert job["state"] == "done", job
        assert job["result"]["computed"] == 1 and job["result"]["reruns"] == []
        assert job["progress"] == 1.0
        assert SessionLayout(tmp_path / "sessions" / "calsession").calibration_toml.is_file()
    finally:
        rt.close()
