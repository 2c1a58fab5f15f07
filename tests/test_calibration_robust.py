"""Calibration that works whenever the footage allows it: views screened by geometry before any
fit, a fit that fails or leaves a view far off drops it and tries again, failures that name their
cause with numbers, and a board check that weighs every camera's frames (a few grazing views of one
camera never refuse a spec the others support). The session test is one the old code refused
(`benchmarks/calibration_sweep.py` seed 13, session 0, shortened: 4 cameras, 640x480, 30 fps)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from controller.cli.main import main as syncrig
from controller.dataset.board.check import BoardEvidence, BoardMismatchError, check_board
from controller.dataset.board.detections import CameraDetections
from controller.dataset.board.spec import BoardSpec
from controller.dataset.calibrate import CalibrationError, calibrate_session
from controller.dataset.calibrate.intrinsics import _lens_hint, fit_intrinsics
from controller.dataset.calibrate.synthetic import compare_to_truth, synthetic_calibration
from controller.dataset.calibrate.views import View, camera_views, view_defect
from controller.dataset.cameras import load_calibration_toml
from controller.dataset.ground_truth import load_ground_truth
from controller.dataset.synthetic_session import write_charuco_session
from syncrig_agent.contract.layout import SessionLayout

SPEC = BoardSpec(7, 5, 40.0, 30.0)
K = np.array([[600.0, 0, 320], [0, 600, 240], [0, 0, 1]])
SIZE = (640, 480)
T_BASE = 1_790_000_000_000_000_000


def _project(ids: np.ndarray, rvec: tuple, tvec: tuple) -> np.ndarray:
    px, _ = cv2.projectPoints(
        SPEC.corner_points_mm()[ids], np.array(rvec, float), np.array(tvec, float), K, None
    )
    return px.reshape(-1, 2)


def test_views_are_screened_by_geometry_before_any_fit() -> None:
    corners = SPEC.corner_points_mm()
    every = np.arange(SPEC.corner_count)
    near = (-120.0, -80.0, 700.0)
    assert view_defect(corners[every], _project(every, (0.3, 0.2, 0), near), SIZE) is None
    one_row = np.arange(6)  # ids 0..5: the first row of inner corners
    assert view_defect(corners[one_row], _project(one_row, (0.3, 0, 0), near), SIZE) == "too few rows/columns"
    diagonal = np.array([0, 7, 14, 21])  # (0,0), (1,1), (2,2), (3,3): four rows and columns, one line
    assert view_defect(corners[diagonal], _project(diagonal, (0.3, 0, 0), near), SIZE) == "collinear"
    far = (-120.0, -80.0, 9000.0)
    assert view_defect(corners[every], _project(every, (0.3, 0, 0), far), SIZE) == "too small in the image"
    grazing = _project(every, (0, np.radians(80), 0), (-120.0, -80.0, 500.0))
    assert view_defect(corners[every], grazing, SIZE) == "too oblique"
    # camera_views counts what it leaves out, by reason.
    rows = [np.full(len(every), 0), np.full(6, 1), np.full(len(every), 2)]
    xy = [_project(every, (0.3, 0.2, 0), near), _project(one_row, (0.3, 0, 0), near), grazing]
    det = CameraDetections(
        "cam0", SIZE, np.concatenate(rows), np.r_[every, one_row, every], np.concatenate(xy)
    )
    rejected: Counter = Counter()
    views = camera_views(det, 6, corners, rejected)
    assert [v.row for v in views] == [0]
    assert rejected == {"too few rows/columns": 1, "too oblique": 1}


def test_a_view_the_fit_leaves_far_off_is_dropped() -> None:
    syn = synthetic_calibration(cameras=1, rows=40, noise_px=0.3, seed=5)
    cam = syn.cameras[0]
    corners = syn.spec.corner_points_mm()
    views = camera_views(syn.detections[cam.name], 6, corners)[:20]
    bad = views[7]
    shuffled = np.random.default_rng(0).permutation(len(bad.ids))
    views[7] = View(bad.row, bad.ids, bad.xy[shuffled])  # corners given the wrong ids
    intr, used, dropped = fit_intrinsics(cam.name, views, corners, cam.size)
    assert [row for row, _ in dropped] == [bad.row] and "px off the fit" in dropped[0][1]
    assert len(used) == 19
    assert np.max(np.abs(np.diag(intr.matrix)[:2] / np.diag(cam.matrix)[:2] - 1)) < 0.01


def test_a_fit_that_cannot_succeed_says_why_with_numbers() -> None:
    every = np.arange(SPEC.corner_count)
    shifts = [(-60, -40), (0, 0), (50, 30), (-30, 50), (40, -50)]
    views = [
        View(k, every, _project(every, (0, 0, 0), (dx - 120, dy - 80, 800)))
        for k, (dx, dy) in enumerate(shifts)
    ]
    with pytest.raises(CalibrationError) as caught:
        fit_intrinsics("cam0", views, SPEC.corner_points_mm(), SIZE)
    message = str(caught.value)
    assert message.startswith("cam0: OpenCV could not fit the pinhole intrinsics")
    assert "every view faces the camera squarely (tilt at most 0 deg)" in message
    assert "cover 25 % of the image" in message and "--fisheye" not in message


def test_fisheye_is_suggested_only_where_the_residuals_say_so() -> None:
    for fisheye in (False, True):
        syn = synthetic_calibration(cameras=1, rows=40, noise_px=0.3, fisheye=fisheye, seed=5)
        cam = syn.cameras[0]
        corners = syn.spec.corner_points_mm()
        hint = _lens_hint(camera_views(syn.detections[cam.name], 6, corners), corners, cam.size)
        if fisheye:
            assert "bends towards the image edges" in hint and hint.endswith("try --fisheye")
        else:
            assert hint == ""


def _evidence(board_frames: int, failed: int, views: int) -> BoardEvidence:
    return BoardEvidence(frames=300, board_frames=board_frames, failed_frames=failed, views=views)


def test_the_board_check_weighs_every_camera() -> None:
    grazing = _evidence(board_frames=12, failed=12, views=0)  # alone it looks like a wrong spec
    assert grazing.clearly_mismatched()
    check_board(SPEC, [grazing, _evidence(200, 3, 190), _evidence(180, 0, 175)])  # supported: no error
    with pytest.raises(BoardMismatchError, match=r"in 36 of them their layout does not fit the spec's 7x5"):
        check_board(SPEC, [grazing, grazing, grazing])
    with pytest.raises(BoardMismatchError, match=r"does not fit the spec's 7x5 board \(it fits only 2\)"):
        check_board(SPEC, [grazing, _evidence(30, 28, 2)])


@pytest.fixture(scope="module")
def grazing_session(tmp_path_factory) -> Path:
    """4 cameras, 4 s from the start time at which one camera's first board frames are all grazing
    (it used to end in `BoardMismatchError` raised through calibrate as a traceback)."""
    session = tmp_path_factory.mktemp("grazing") / "session"
    write_charuco_session(session, 4, 640, 480, 30, 4.0, T_BASE + 7_238_127_948)
    return session


def test_one_cameras_grazing_views_do_not_stop_a_calibration(grazing_session: Path) -> None:
    truth = load_ground_truth(grazing_session)
    calibrate_session(grazing_session, truth.board)
    cameras, _ = load_calibration_toml(SessionLayout(grazing_session).calibration_toml)
    for name, err in compare_to_truth(cameras, truth.cameras).items():
        assert err["focal_rel"] < 0.01 and err["principal_rel"] < 0.01, (name, err)
        assert err["centre_mm"] < 2.0 and err["orientation_deg"] < 0.2, (name, err)


def test_a_wrong_board_is_refused_by_calibrate_without_a_traceback(grazing_session: Path, capsys) -> None:
    args = ["calibrate", str(grazing_session), "--quiet", "--redetect", "--squares", "8x6"]
    assert syncrig([*args, "--square-mm", "40", "--marker-mm", "30"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("syncrig calibrate: board detection: the board's markers were found in")
    assert "does not fit the spec's 8x6 board" in err and "fits a 7x5 board" in err
    assert "Traceback" not in err


def test_one_board_vocabulary_and_default(tmp_path: Path, capsys) -> None:
    """`board`, `detect` and `calibrate` take the same flags (old spellings kept); the default board
    is the demo scene's, and a session's own board (board.json, else its simulated scene's)."""
    from syncrig_agent.sim.charuco_sim import DEFAULT_BOARD

    assert BoardSpec().as_dict() == DEFAULT_BOARD
    spec_file = tmp_path / "b.json"
    for flags in (["--squares", "5x4"], ["--squares-x", "5", "--squares-y", "4"]):
        assert syncrig(["board", "--out", str(tmp_path / "b.png"), "--dpi", "50", *flags, "--legacy"]) == 0
        assert BoardSpec.load(spec_file) == BoardSpec(5, 4, legacy_pattern=True)
    capsys.readouterr()
    assert syncrig(["board", "--out", str(tmp_path / "c.png"), "--squares", "5x4", "--squares-x", "6"]) == 2
    assert "give --squares COLSxROWS or --squares-x/--squares-y, not both" in capsys.readouterr().err
    # A flag overrides one field of the spec file, for every command.
    assert (
        syncrig(["board", "--out", str(tmp_path / "d.png"), "--spec", str(spec_file), "--square-mm", "50"])
        == 0
    )
    assert BoardSpec.load(tmp_path / "d.json") == BoardSpec(5, 4, 50.0, legacy_pattern=True)
    session = tmp_path / "unsynced"
    session.mkdir()
    (session / "ground_truth.json").write_text('{"board": {"squares_x": 9}}')  # unreadable: ignored
    for command in ("detect", "calibrate"):
        assert syncrig([command, str(session), "--board", str(tmp_path / "nope.json")]) == 2
        assert "cannot read board spec" in capsys.readouterr().err
        assert syncrig([command, str(session), "--squares", "2x5"]) == 2
        assert "board needs 3..100 squares per side, got 2x5" in capsys.readouterr().err


def test_a_sessions_own_board_is_the_default(grazing_session: Path) -> None:
    from controller.dataset.calibrate import session_board

    stored = SessionLayout(grazing_session).board_file
    BoardSpec(9, 6, 25.0, 18.0).save(stored)
    assert session_board(grazing_session) == BoardSpec(9, 6, 25.0, 18.0)  # what detection stored
    stored.unlink()
    assert session_board(grazing_session) == load_ground_truth(grazing_session).board  # the scene's


def test_too_few_views_says_which_were_left_out_and_why() -> None:
    from controller.dataset.calibrate import calibrate_cameras

    every = np.arange(SPEC.corner_count)
    good = [_project(every, (0.3 * k, 0.2, 0), (-120.0, -80.0, 700.0)) for k in (-1, 0, 1)]
    grazing = [_project(every, (0, np.radians(80 + k), 0), (-120.0, -80.0, 500.0)) for k in range(4)]
    xy = good + grazing
    rows = np.concatenate([np.full(len(every), k) for k in range(len(xy))])
    det = CameraDetections("cam0", SIZE, rows, np.tile(every, len(xy)), np.concatenate(xy))
    with pytest.raises(
        CalibrationError,
        match=r"cam0: too few board views \(3 usable of 7 detected; left out: 4 too oblique; need 5\)",
    ):
        calibrate_cameras({"cam0": det}, SPEC)
