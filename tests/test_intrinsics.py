"""`syncrig intrinsics` (per-camera intrinsics from pictures of a checkerboard or a ChArUco board)
and `calibrate --intrinsics` (extrinsics only): real photographs of a printed checkerboard (Pose2Sim's
demo) agree with the same cameras' independent Qualisys calibration; a video of the simulated
ChArUco board gives the true intrinsics; every refusal says what to do."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from controller.cli.main import main as syncrig
from controller.dataset.board.spec import BoardSpec
from controller.dataset.calibrate.synthetic import compare_to_truth, synthetic_calibration
from controller.dataset.cameras import CameraModel, CameraSet, load_calibration_toml
from controller.dataset.ground_truth import load_ground_truth
from controller.dataset.imports.calibration import read_calibration
from controller.dataset.synthetic_session import write_charuco_session
from syncrig_agent.contract.layout import SessionLayout

from calibration_support import write_session

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

T_BASE = 1_790_000_000_000_000_000


def qualisys_pixels(path: Path) -> dict[str, tuple[float, float, float, float]]:
    """(fx, fy, cx, cy) in pixels per camera of a Qualisys .qca.txt, read by the calibration
    importer (Pose2Sim's calib_qca_fun: sensor units / 64, principal point relative to the video's
    field of view)."""
    cameras = read_calibration(path).cameras
    return {c.name: (c.matrix[0, 0], c.matrix[1, 1], c.matrix[0, 2], c.matrix[1, 2]) for c in cameras}


def test_checkerboard_photographs_agree_with_qualisys(pose2sim_demo_dir, tmp_path: Path, capsys) -> None:
    demo = pose2sim_demo_dir("Demo_SinglePerson")
    config = tomllib.loads((demo / "Config.toml").read_text())
    rows, cols = config["calibration"]["calculate"]["intrinsics"]["intrinsics_corners_nb"]  # [H, W]
    square = config["calibration"]["calculate"]["intrinsics"]["intrinsics_square_size"]
    cameras = ("cam01", "cam02")  # two of the four keep the suite short; the report has all four
    sources = [f"{c}={demo / 'calibration' / 'intrinsics' / f'int_{c}_img'}" for c in cameras]
    out = tmp_path / "intrinsics.toml"
    args = ["intrinsics", *sources, "--checkerboard", f"{cols}x{rows}", "--square-mm", str(square)]
    assert syncrig([*args, "--out", str(out)]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.rstrip().endswith(f"wrote {out}")
    qualisys = qualisys_pixels(demo / "calibration" / "Calib.qca.txt")
    ours, metadata = load_calibration_toml(out)
    assert metadata["intrinsics_only"] and metadata["board"]["type"] == "checkerboard"
    raw = tomllib.loads(out.read_text())
    for cam in ours:
        fx, fy, cx, cy = qualisys[cam.name]
        assert cam.size == (1088, 1920)
        assert abs(cam.matrix[0, 0] / fx - 1) < 0.01 and abs(cam.matrix[1, 1] / fy - 1) < 0.01, cam.matrix
        assert np.hypot(cam.matrix[0, 2] - cx, cam.matrix[1, 2] - cy) < 40, cam.matrix
        table = next(t for t in raw.values() if t.get("name") == cam.name)
        assert table["calibrated_extrinsics"] is False and "rotation" not in table
        errors = [e for e in table["picture_errors_px"] if e >= 0]
        assert len(errors) >= 5 and max(errors) < 0.5 and len(table["pictures"]) == 7
        assert all(note in ("", "board not found") for note in table["picture_notes"])


def test_charuco_video_gives_the_true_intrinsics(tmp_path: Path, capsys) -> None:
    session = tmp_path / "filmed"
    write_charuco_session(session, 1, 640, 480, 5, 8.0, T_BASE)
    truth = load_ground_truth(session)
    spec_file = tmp_path / "board.json"
    truth.board.save(spec_file)
    video = SessionLayout(session).synced.video("cam0")
    out = tmp_path / "intrinsics.toml"
    args = ["intrinsics", f"left={video}", "--board", str(spec_file), "--every-s", "0.2", "--out", str(out)]
    assert syncrig(args) == 0, capsys.readouterr().err
    (cam,) = CameraSet.load(out)
    true = truth.cameras["cam0"]
    assert np.max(np.abs(np.diag(cam.matrix)[:2] / np.diag(true.matrix)[:2] - 1)) < 0.01
    assert np.max(np.abs(cam.matrix[:2, 2] / true.matrix[:2, 2] - 1)) < 0.01


def test_calibrate_with_fixed_intrinsics_solves_extrinsics_only(tmp_path: Path, capsys) -> None:
    syn = synthetic_calibration(cameras=3, rows=60, noise_px=0.3, seed=12)
    session = write_session(tmp_path / "s", syn)
    given = tmp_path / "intrinsics.toml"
    CameraSet(
        CameraModel(c.name, c.size, c.matrix, c.distortions, [0, 0, 0], [0, 0, 0]) for c in syn.cameras
    ).save(given)
    assert syncrig(["calibrate", str(session), "--quiet", "--intrinsics", str(given)]) == 0, (
        capsys.readouterr().err
    )
    cams, _ = load_calibration_toml(SessionLayout(session).calibration_toml)
    for cam, true in zip(cams, syn.cameras, strict=True):
        assert np.array_equal(cam.matrix, true.matrix) and np.allclose(cam.distortions, true.distortions)
    for name, err in compare_to_truth(cams, syn.cameras).items():
        assert err["centre_mm"] < 2.0 and err["orientation_deg"] < 0.2, (name, err)
    capsys.readouterr()
    two = tmp_path / "two.toml"
    CameraSet(list(CameraSet.load(given))[:2]).save(two)
    assert syncrig(["calibrate", str(session), "--quiet", "--intrinsics", str(two)]) == 2
    assert "the intrinsics file has no camera 'cam2' (it has cam0, cam1)" in capsys.readouterr().err
    small = tmp_path / "small.toml"
    CameraSet(CameraModel(c.name, (640, 480), c.matrix, c.distortions) for c in syn.cameras).save(small)
    assert syncrig(["calibrate", str(session), "--quiet", "--intrinsics", str(small)]) == 2
    assert "cam0: the intrinsics file's camera is 640x480 px but this session's cam0 films 1280x720" in (
        capsys.readouterr().err
    )
    mixed = tmp_path / "mixed.toml"
    models = [CameraModel(c.name, c.size, c.matrix, c.distortions) for c in syn.cameras]
    models[1] = CameraModel("cam1", (1280, 720), syn.cameras[1].matrix, [0.0, 0.0, 0.0, 0.0], fisheye=True)
    CameraSet(models).save(mixed)
    assert syncrig(["calibrate", str(session), "--quiet", "--intrinsics", str(mixed)]) == 2
    assert "the intrinsics file mixes fisheye and pinhole cameras: give one model" in capsys.readouterr().err


def test_refusals_say_what_to_do(tmp_path: Path, capsys) -> None:
    out = ["--out", str(tmp_path / "i.toml")]
    cases = [
        (["intrinsics", f"c={tmp_path}", *out], "no board: give --checkerboard COLSxROWS --square-mm S"),
        (["intrinsics", f"c={tmp_path}", "--checkerboard", "7x4", *out], "--checkerboard needs --square-mm"),
        (
            [
                "intrinsics",
                f"c={tmp_path}",
                "--checkerboard",
                "7x4",
                "--square-mm",
                "60",
                "--squares",
                "7x5",
                *out,
            ],
            "--checkerboard describes the whole board: drop --squares",
        ),
        (
            ["intrinsics", f"c={tmp_path}", "--checkerboard", "1x4", "--square-mm", "60", *out],
            "a checkerboard needs 2..99 inner corners per side, got 1x4",
        ),
        (
            ["intrinsics", f"c={tmp_path / 'nope'}", "--checkerboard", "7x4", "--square-mm", "60", *out],
            "c: " + str(tmp_path / "nope") + ": no such folder of pictures or video",
        ),
        (
            ["intrinsics", f"c={tmp_path}", "--checkerboard", "7x4", "--square-mm", "60", *out],
            f"c: {tmp_path}: no pictures (.jpg",
        ),
        (
            [
                "intrinsics",
                f"a={tmp_path}",
                f"a={tmp_path}",
                "--checkerboard",
                "7x4",
                "--square-mm",
                "6",
                *out,
            ],
            "a camera is named twice: a a",
        ),
        (
            [
                "intrinsics",
                f"c={tmp_path}",
                "--checkerboard",
                "7x4",
                "--square-mm",
                "6",
                "--every-s",
                "0",
                *out,
            ],
            "--every-s must be > 0, got 0.0",
        ),
    ]
    for args, message in cases:
        assert syncrig(args) == 2, args
        assert message in capsys.readouterr().err, (args, message)
    with pytest.raises(SystemExit):
        syncrig(["intrinsics", "no-equals-sign", *out])
    assert "expected CAMERA=PATH" in capsys.readouterr().err
    import cv2

    blank = tmp_path / "blank"
    blank.mkdir()
    for k in range(3):
        cv2.imwrite(str(blank / f"{k}.png"), np.full((120, 160), 200, np.uint8))
    assert syncrig(["intrinsics", f"c={blank}", "--checkerboard", "7x4", "--square-mm", "60", *out]) == 2
    assert "c: the 7x4 inner-corner checkerboard (60 mm squares) was found in 0 of the 3 pictures" in (
        capsys.readouterr().err
    )
    cv2.imwrite(str(blank / "3.png"), np.full((100, 160), 200, np.uint8))
    assert syncrig(["intrinsics", f"c={blank}", "--checkerboard", "7x4", "--square-mm", "60", *out]) == 2
    assert "3.png is 160x100 but the pictures before it are 160x120" in capsys.readouterr().err
    # A checkerboard cannot be told apart between cameras: no session detection, no printing here.
    spec = tmp_path / "checker.json"
    BoardSpec.checkerboard(7, 4, 60).save(spec)
    syn = synthetic_calibration(cameras=2, rows=20, seed=1)
    session = write_session(tmp_path / "s", syn)
    assert syncrig(["calibrate", str(session), "--quiet", "--redetect", "--board", str(spec)]) == 2
    assert (
        "gives each camera's intrinsics (`syncrig intrinsics`); finding the board" in capsys.readouterr().err
    )
    assert syncrig(["board", "--board", str(spec), "--out", str(tmp_path / "b.png")]) == 2
    assert (
        "`syncrig board` prints ChArUco boards; the 7x4 inner-corner checkerboard" in capsys.readouterr().err
    )
