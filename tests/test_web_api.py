"""The controller's HTTP API over a real simulated rig (agents as processes, real sockets), driven
through Flask's test client."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from controller.rig.simulated import SimCamera

from session_checks import check_session
from web_support import ApiClient, all_online, app_client, assert_complete, controller_for


@pytest.fixture
def controller(make_rig, tmp_path: Path):
    runtimes = []

    def factory(n: int = 3, cameras: list[SimCamera] | None = None, **kw):
        rig = make_rig(n, cameras=cameras)
        rt = controller_for(rig, tmp_path / f"ctl{len(runtimes)}", **kw)
        runtimes.append(rt)
        api = app_client(rt)
        api.wait_status(all_online)
        return rig, rt, api

    yield factory
    for rt in runtimes:
        rt.close()


def test_record_fixed_duration_produces_a_complete_session(controller) -> None:
    rig, rt, api = controller()
    resp = api.post("/api/recording/start", {"subject": "mouse-17", "project": "gait.v2", "seconds": 1.5})
    assert resp.status_code == 202, resp.get_json()
    job = api.wait_job(resp.get_json()["job_id"])
    assert job["state"] == "done", job
    session_id = job["result"]["session_id"]
    assert session_id.endswith("gait.v2_mouse-17")
    session_dir = rt.sessions_root / session_id
    manifest, checks = check_session(session_dir)
    assert manifest.subject == "mouse-17"
    for cam in manifest.cameras:
        assert_complete(cam, expected=30)
        assert checks[cam["name"]].decoded == cam["frames"]
    listed = api.get("/api/sessions").get_json()["sessions"]
    assert [s["id"] for s in listed] == [session_id]
    details = api.get(f"/api/sessions/{session_id}").get_json()
    assert details["safe_on_desktop"] is True
    assert all(c["ok"] for c in details["desktop_copy"])
    # the page renders
    assert api.get(f"/sessions/{session_id}").status_code == 200


def test_open_ended_recording_stops_on_request(controller) -> None:
    rig, rt, api = controller(2)
    job_id = api.post("/api/recording/start", {"subject": "m2"}).get_json()["job_id"]
    status = api.wait_status(
        lambda s: s["recording"]["state"] == "recording" and (s["cameras"][0]["frames"] or 0) > 10
    )
    assert status["recording"]["session_id"]
    # a second start while recording is refused
    again = api.post("/api/recording/start", {"subject": "m3"})
    assert again.status_code == 409
    assert api.post("/api/recording/stop").status_code == 202
    job = api.wait_job(job_id)
    assert job["state"] == "done", job
    manifest, checks = check_session(rt.sessions_root / job["result"]["session_id"])
    # every camera stopped on the same grid boundary; a frame lost to a host hiccup is a counted drop
    expected = {c["expected_frames"] for c in manifest.cameras}
    assert len(expected) == 1 and min(expected) > 10, manifest.cameras
    for cam in manifest.cameras:
        assert_complete(cam)
        assert checks[cam["name"]].decoded == cam["frames"]
    assert api.post("/api/recording/stop").status_code == 409  # nothing left to stop


def test_preflight_refuses_a_camera_off_the_clock_unless_overridden(controller) -> None:
    cams = [SimCamera("cam0"), SimCamera("cam1", clock_offset_us=5000.0)]
    rig, rt, api = controller(cameras=cams)
    pre = api.wait_job(api.post("/api/preflight", {"seconds": 10}).get_json()["job_id"])
    assert pre["state"] == "done"
    result = pre["result"]
    assert result["ok"] is False
    failed = [(c["camera"], c["check"]) for c in result["checks"] if c["blocking"] and not c["ok"]]
    # measured over the network, and as the camera's own (simulated) clock discipline reports it
    assert failed == [("cam1", "clock_offset"), ("cam1", "clock_sync")], result["checks"]
    assert "cam1" in result["reason"] and "clock offset" in result["reason"]
    # recording is refused with that reason, and leaves no session behind
    job = api.wait_job(api.post("/api/recording/start", {"seconds": 1}).get_json()["job_id"])
    assert job["state"] == "failed" and "pre-flight failed" in job["error"] and "cam1" in job["error"]
    assert api.get("/api/sessions").get_json()["sessions"] == []
    # an explicit override records, and the manifest says so
    job = api.wait_job(
        api.post("/api/recording/start", {"seconds": 1, "override": True}).get_json()["job_id"]
    )
    assert job["state"] == "done", job
    manifest = json.loads((rt.sessions_root / job["result"]["session_id"] / "session.json").read_text())
    assert any("pre-flight overridden" in n for n in manifest["notes"])


def test_bad_input_is_refused_with_the_field_named(controller) -> None:
    rig, rt, api = controller(1)
    for body, field in [
        ({"subject": "../../etc"}, "subject"),
        ({"project": "a b"}, "project"),
        ({"seconds": "ten"}, "seconds"),
        ({"seconds": -1}, "seconds"),
        ({"override": "yes"}, "override"),
    ]:
        resp = api.post("/api/recording/start", body)
        assert resp.status_code == 400, (body, resp.get_json())
        assert resp.get_json()["field"] == field
    assert (
        api.client.post(
            "/api/recording/start", data="not json", headers={"X-CSRF-Token": api.csrf}
        ).status_code
        == 400
    )
    assert api.get("/api/sessions/..%2F..%2Fetc").status_code == 404
    assert api.get("/api/sessions/no-such-session").status_code == 404
    assert api.get("/sessions/no-such-session").status_code == 404
    assert api.get("/api/logs/cam9").status_code == 404
    assert api.get("/api/jobs/nope").status_code == 404
    assert not list(rt.sessions_root.glob("*/"))  # nothing was created by any of it


def test_state_changing_requests_need_the_csrf_token_and_a_local_host(controller) -> None:
    rig, rt, api = controller(1)
    assert api.post("/api/recording/start", {}, csrf=False).status_code == 403
    resp = api.client.post("/api/recording/start", json={}, headers={"X-CSRF-Token": "forged"})
    assert resp.status_code == 403
    # a fresh browser (no session cookie) cannot reuse someone's token
    other = app_client(rt)
    other.client.delete_cookie("session")
    assert (
        other.client.post("/api/recording/stop", json={}, headers={"X-CSRF-Token": api.csrf}).status_code
        == 403
    )
    # DNS rebinding: a foreign Host name is refused even from loopback
    assert api.get("/api/status", headers={"Host": "evil.example:5000"}).status_code == 400
    # a non-loopback client is refused outright when no access token is configured
    far = api.get("/api/status", environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert far.status_code == 403
    assert rt.rig.recording_state == "idle"


def test_remote_clients_need_the_access_token(controller) -> None:
    rig, rt, _ = controller(1)
    api = ApiClient.__new__(ApiClient)
    from controller.web import create_app

    app = create_app(rt, access_token="s3cret-token", allowed_hosts=None)
    client = app.test_client()
    far = {"REMOTE_ADDR": "192.0.2.7"}
    assert client.get("/api/status", environ_base=far).status_code == 403
    assert client.get("/api/status?token=wrong", environ_base=far).status_code == 403
    assert client.get("/?token=s3cret-token", environ_base=far).status_code == 200
    # the cookie set on that visit carries the token from then on
    assert client.get("/api/status", environ_base=far).status_code == 200
    del api


def test_settings_are_validated_and_saved_atomically(controller) -> None:
    rig, rt, api = controller(2)
    before = rt.config_path.read_text()
    for body, field in [
        ({"fps": 0}, "fps"),
        ({"width": 641}, "width"),
        ({"bitrate": "fast"}, "bitrate"),
        ({"cameras": [{"name": "cam 0", "host": "127.0.0.1", "role": "server"}]}, "cameras[0].name"),
        ({"cameras": [{"name": "cam0", "host": "x;rm -rf /", "role": "server"}]}, "cameras[0].host"),
        ({"cameras": [{"name": "cam0", "host": "127.0.0.1", "role": "client"}]}, "cameras"),
        ({"pi_data_dir": "../../etc"}, "pi_data_dir"),
        ({"secret_file": "/tmp/x"}, "secret_file"),
    ]:
        resp = api.post("/api/settings", body)
        assert resp.status_code == 400, (body, resp.get_json())
        assert resp.get_json()["field"] == field, resp.get_json()
    assert rt.config_path.read_text() == before  # nothing written
    resp = api.post("/api/settings", {"fps": 25, "keyframe_interval_s": 2})
    assert resp.status_code == 200, resp.get_json()
    saved = json.loads(rt.config_path.read_text())
    assert saved["fps"] == 25 and saved["keyframe_interval_s"] == 2
    assert saved["cameras"] == json.loads(before)["cameras"]
    assert not list(rt.config_path.parent.glob(".*.tmp"))
    assert api.get("/api/settings").get_json()["config"]["fps"] == 25
    # the next recording uses the new frame rate; without IDs it is recorded, with a warning for each
    started = api.post("/api/recording/start", {"seconds": 1, "override": True}).get_json()
    assert [w.split(":")[0] for w in started["warnings"]] == ["no subject ID", "no project ID"], started
    job = api.wait_job(started["job_id"])
    manifest = json.loads((rt.sessions_root / job["result"]["session_id"] / "session.json").read_text())
    assert manifest["fps"] == 25
    for cam in manifest["cameras"]:
        assert_complete(cam, expected=25)


def test_camera_copies_are_deleted_only_when_safe_and_confirmed(controller) -> None:
    rig, rt, api = controller(2)
    job = api.wait_job(api.post("/api/recording/start", {"seconds": 1}).get_json()["job_id"])
    sid = job["result"]["session_id"]
    on_cam = [rig.data_dir(c) / sid for c in rig.camera_names]
    assert all(p.is_dir() for p in on_cam)
    url = f"/api/sessions/{sid}/delete-camera-copies"
    assert api.post(url, {"confirm": "yes"}).status_code == 409
    assert api.post(url, {}).status_code == 409
    # a desktop copy missing frames: refused, nothing deleted
    pts = rt.sessions_root / sid / "raw" / "cam1.pts"
    text = pts.read_text()
    pts.write_text("\n".join(text.splitlines()[:-3]) + "\n")
    resp = api.post(url, {"confirm": sid})
    assert resp.status_code == 409 and "cam1" in resp.get_json()["error"], resp.get_json()
    assert all(p.is_dir() for p in on_cam)
    pts.write_text(text)
    # the page's footage section: verified per camera, the video assembled from the live stream
    details = api.get(f"/api/sessions/{sid}").get_json()
    assert details["safe_on_desktop"] and details["footage"]["safe"]
    video = details["transfer"]["cam0"]["files"]["cam0.h264"]
    assert video["verified"] and video["source"] == "stream"
    # pull again (resumable, verified) and an H.265 archive, both as jobs
    pulled = api.wait_job(api.post(f"/api/sessions/{sid}/pull").get_json()["job_id"])
    assert pulled["state"] == "done" and pulled["result"]["ok"], pulled
    archived = api.wait_job(api.post(f"/api/sessions/{sid}/transcode").get_json()["job_id"], timeout=120)
    assert archived["state"] == "done", archived
    assert all(
        (rt.sessions_root / sid / "archive" / f"{c}.h265.mp4").stat().st_size > 0 for c in ("cam0", "cam1")
    )
    resp = api.post(url, {"confirm": sid})
    assert resp.status_code == 202
    done = api.wait_job(resp.get_json()["job_id"])
    assert done["state"] == "done", done
    assert not any(p.exists() for p in on_cam)
    assert (rt.sessions_root / sid / "raw" / "cam0.h264").stat().st_size > 0  # desktop copy untouched
    details = api.get(f"/api/sessions/{sid}").get_json()
    assert details["on_cameras"] == {"cam0": False, "cam1": False}


def test_preview_urls_logs_and_events(controller) -> None:
    rig, rt, api = controller(2)
    urls = api.get("/api/preview").get_json()["cameras"]
    assert [u["camera"] for u in urls] == ["cam0", "cam1"]
    for u in urls:
        assert (
            u["available"]
            and "token=" in u["stream"]
            and f":{rig.preview_ports[u['camera']]}/" in u["stream"]
        )
    job = api.wait_job(api.post("/api/logs/cam1").get_json()["job_id"])
    assert job["state"] == "done" and job["result"]["error"] is None
    lines = api.get("/api/logs/cam1").get_json()["lines"]
    assert lines and any("cam1" in line or "client" in line for line in lines)
    # the event stream starts with the current status
    resp = api.get("/api/events", buffered=False)
    assert resp.mimetype == "text/event-stream"
    chunks = resp.response
    first = next(chunks)
    first = first.decode() if isinstance(first, bytes) else first
    assert first.startswith("retry:")
    second = next(chunks)
    second = second.decode() if isinstance(second, bytes) else second
    assert "event: status" in second and '"cameras"' in second
    resp.close()


@pytest.mark.parametrize(
    "path",
    ["/", "/preflight", "/preview", "/sessions", "/settings", "/logs", "/sync", "/trim", "/calibration"],
)
def test_every_page_renders(controller, path: str) -> None:
    rig, rt, api = controller(1)
    resp = api.get(path)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'name="csrf-token"' in html
    if path == "/calibration":
        assert 'id="cal-form"' in html and "is a placeholder" not in html


def test_sync_verify_scrub_and_trim_through_the_api(controller) -> None:
    rig, rt, api = controller(2)
    sid = api.wait_job(api.post("/api/recording/start", {"seconds": 2}).get_json()["job_id"])["result"][
        "session_id"
    ]
    base = f"/api/sessions/{sid}"
    assert api.get(f"{base}/sync/report").status_code == 404  # not analysed yet
    for body, field in [
        ({"fill": "smear"}, "fill"),
        ({"tolerance_us": -5}, "tolerance_us"),
        ({"outputs": 1}, "outputs"),
    ]:
        resp = api.post(f"{base}/sync", body)
        assert resp.status_code == 400 and resp.get_json()["field"] == field
    job = api.wait_job(api.post(f"{base}/sync", {}).get_json()["job_id"])
    assert job["state"] == "done", job
    report = api.get(f"{base}/sync/report").get_json()
    assert report["matching"]["rows"] == 40 and set(report["cameras"]) == {"cam0", "cam1"}
    for name in ("offsets.svg", "drops.png"):
        resp = api.get(f"{base}/sync/plots/{name}")
        assert resp.status_code == 200 and len(resp.data) > 1000
    assert api.get(f"{base}/sync/plots/..%2Freport.json").status_code == 404
    assert api.get(f"{base}/sync/plots/report.json").status_code == 404
    row = api.get(f"{base}/rows/5").get_json()
    assert row["row"] == 5 and set(row["frames"]) == {"cam0", "cam1"}
    picture = api.get(f"{base}/rows/5/cam1.jpg")
    assert picture.status_code == 200 and picture.data[:2] == b"\xff\xd8"
    assert api.get(f"{base}/rows/5/cam7.jpg").status_code == 404
    assert api.get(f"{base}/rows/400").status_code == 404
    verified = api.wait_job(api.post(f"{base}/verify").get_json()["job_id"])
    assert verified["state"] == "done" and verified["result"]["outputs"]["synced"]["ok"], verified
    shown = api.get(f"{base}/sync/report").get_json()["verify"]["outputs"]["synced"]
    assert shown["ok"] and shown["cross_camera_offset_us"]["max"] <= 1000
    for body, field in [
        ({"start": 5}, "end"),
        ({"start": -1, "end": 3}, "start"),
        ({"start": 9, "end": 3}, "end"),
    ]:
        resp = api.post(f"{base}/trim", body)
        assert resp.status_code == 400 and resp.get_json()["field"] == field, resp.get_json()
    bad = api.wait_job(api.post(f"{base}/trim", {"start": 3, "end": 400}).get_json()["job_id"])
    assert bad["state"] == "failed" and "outside the match table" in bad["error"]
    trim = api.wait_job(api.post(f"{base}/trim", {"start": 3, "end": 17}).get_json()["job_id"])
    assert trim["state"] == "done", trim
    listed = api.get(f"{base}/trims").get_json()["trims"]
    assert [t["name"] for t in listed] == ["3-17"] and listed[0]["fill"] == "repeat"
    assert api.post("/api/sessions/nope/sync", {}).status_code == 404


def test_status_poller_survives_a_cam0_that_cuts_handshakes(controller) -> None:
    """A restarting cam0 can accept and drop connections mid-handshake (an authentication error,
    not an OSError): the poller keeps going and reconnects once cam0 is back."""
    import socket
    import threading

    rig, rt, api = controller(1)
    port = rig.control_port
    rig.terminate("cam0")
    cutter = socket.create_server(("127.0.0.1", port))
    stop = threading.Event()

    def cut() -> None:
        cutter.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = cutter.accept()
                conn.close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=cut, daemon=True)
    thread.start()
    try:
        api.wait_status(lambda s: not s["link"]["connected"] and "handshake" in (s["link"]["error"] or ""))
        time.sleep(1.5)  # several failed polls
    finally:
        stop.set()
        thread.join(5)
        cutter.close()
    rig.spawn_server(control_port=port)
    api.wait_status(all_online, timeout=30)
    assert rt.rig._poller is not None and rt.rig._poller.is_alive()


def test_camera_cards_show_the_sensor_phase_lock(controller) -> None:
    """Free-running sensors: the card carries the servo's lock ("locked ±X µs") while recording,
    and the finished session records when each camera locked."""
    cams = [SimCamera(f"cam{i}", trigger="freerun", crystal_ppm=ppm) for i, ppm in enumerate((-40.0, 25.0))]
    _rig, rt, api = controller(cameras=cams)
    idle = api.get_json("/api/status")
    assert all(c["phase_lock"]["state"] == "idle" for c in idle["cameras"])
    job_id = api.post("/api/recording/start", {"subject": "lock", "seconds": 3}).get_json()["job_id"]
    status = api.wait_status(
        lambda s: (
            s["recording"]["state"] == "recording"
            and all((c.get("phase_lock") or {}).get("state") == "locked" for c in s["cameras"])
        )
    )
    for card in status["cameras"]:
        assert re.fullmatch(r"locked ±\d+\.\d µs", card["phase_lock"]["label"]), card["phase_lock"]
    job = api.wait_job(job_id)
    assert job["state"] == "done", job
    (session,) = [p for p in rt.sessions_root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    manifest = json.loads((session / "session.json").read_text())
    assert all(c["phase_lock"]["locked_at_ns"] for c in manifest["cameras"]), manifest["cameras"]
