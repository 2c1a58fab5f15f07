"""The Calibration page and its API through Flask's test client: a calibration job on a
synthetic session (stored detections), the report, plots and downloads, and refused input."""

from __future__ import annotations

from pathlib import Path

import pytest

from calibration_support import rigless_runtime
from web_support import app_client


@pytest.fixture
def api(tmp_path: Path):  # noqa: ANN201
    rt = rigless_runtime(tmp_path)
    yield app_client(rt)
    rt.close()


def test_calibrate_through_the_api(api) -> None:
    page = api.get("/calibration")
    assert page.status_code == 200 and 'id="cal-form"' in page.get_data(as_text=True)
    assert "is a placeholder" not in page.get_data(as_text=True)
    base = "/api/sessions/calsession/calibration"
    assert api.get(f"{base}/report").status_code == 404  # not calibrated yet
    assert api.get(f"{base}/files/calibration.toml").status_code == 404
    stored = api.get(f"{base}/board").get_json()
    assert stored["stored"] is True and stored["board"]["squares_x"] == 10

    for body, field in (
        ({"board": {"squares_x": 2}}, "board"),
        ({"board": {"squares_x": 10, "bogus": 1}}, "board"),
        ({"board": "10x7"}, "board"),
        ({"fisheye": "yes"}, "fisheye"),
        ({"reference_row": -1}, "reference_row"),
        ({"reference_row": "3"}, "reference_row"),
        ({"redetect": 1}, "redetect"),
    ):
        resp = api.post(base, body)
        assert resp.status_code == 400 and resp.get_json()["field"] == field, (body, resp.get_json())
    assert api.post(base, {}, csrf=False).status_code == 403
    assert api.post("/api/sessions/nope/calibration", {}).status_code == 404
    assert api.post("/api/sessions/..%2Fx/calibration", {}).status_code == 404

    job = api.wait_job(api.post(base, {"board": stored["board"]}).get_json()["job_id"], timeout=240)
    assert job["state"] == "done", job
    report = api.get(f"{base}/report").get_json()
    assert set(report["cameras"]) == {"cam0", "cam1"} and report["reprojection_px"]["mean"] < 0.6
    for name in ("layout.svg", "layout.png", "reprojection.svg", "coverage_cam0.png", "coverage_cam1.svg"):
        resp = api.get(f"{base}/plots/{name}")
        assert resp.status_code == 200 and len(resp.data) > 1000, name
    for name in ("..%2Freport.json", "report.json", "coverage_cam9.png", "layout.pdf"):
        assert api.get(f"{base}/plots/{name}").status_code == 404, name
    for name in ("calibration.toml", "Calib.toml"):
        resp = api.get(f"{base}/files/{name}")
        assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
        assert b"[metadata]" in resp.data
    assert api.get(f"{base}/files/report.json").status_code == 404

    # A board that does not match the stored detections needs detection again; it fails with a
    # message (no videos in this session), and the earlier calibration stays.
    other = dict(stored["board"], squares_x=8)
    failed = api.wait_job(api.post(base, {"board": other}).get_json()["job_id"], timeout=60)
    assert failed["state"] == "failed" and failed["error"], failed
    assert api.get(f"{base}/report").get_json()["rows"] == report["rows"]


def test_the_form_defaults_to_the_demo_board_or_the_sessions_own(api, tmp_path: Path) -> None:
    """The page's board fields use `syncrig calibrate`'s default: the session's own board, else a
    simulated session's scene board, else the demo's 7x5 board of 40/30 mm (not a 30/22 one)."""
    import json

    from syncrig_agent.contract.layout import SessionLayout

    layout = SessionLayout(tmp_path / "sessions" / "calsession")
    layout.board_file.unlink()
    base = "/api/sessions/calsession/calibration"
    default = api.get(f"{base}/board").get_json()
    assert default["stored"] is False
    assert {k: default["board"][k] for k in ("squares_x", "squares_y", "square_mm", "marker_mm")} == {
        "squares_x": 7,
        "squares_y": 5,
        "square_mm": 40.0,
        "marker_mm": 30.0,
    }
    scene = {
        "squares_x": 9,
        "squares_y": 6,
        "square_mm": 25.0,
        "marker_mm": 18.0,
        "dictionary": "DICT_4X4_50",
    }
    layout.ground_truth_file.write_text(json.dumps({"board": scene, "cameras": {}, "trajectory": {}}))
    assert api.get(f"{base}/board").get_json()["board"]["squares_x"] == 9
