"""Calibration importers: one known rig written in every supported format (as each tool writes it)
reads back as the same cameras in mm; units are explicit (required where the format does not say);
an image size off by encoder padding is accepted with a note, anything else refused with what to do."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from controller.cli.main import main
from controller.dataset.cameras import CameraModel, CameraSet, dumps_toml
from controller.dataset.imports.calibration import (
    CalibrationImportError,
    check_camera_names,
    detect_format,
    fit_to_images,
    read_calibration,
)


def known_rig() -> CameraSet:
    cams = []
    for i, (x, z) in enumerate([(-1500.0, 2500.0), (1500.0, 2600.0), (0.0, 3000.0)]):
        rvec = np.array([0.05 * i, -0.4 + 0.4 * i, 0.02])
        R = cv2.Rodrigues(rvec)[0]
        centre = np.array([x, -200.0 * i, -z])
        cams.append(
            CameraModel(
                f"cam{i + 1}",
                (1280, 720),
                [[900.0 + 10 * i, 0, 640.5], [0, 901.0 + 10 * i, 360.25], [0, 0, 1]],
                [-0.1, 0.05 * i, 0.001, -0.0005, 0.0],
                rvec,
                -R @ centre,
            )
        )
    return CameraSet(cams)


def write_aniposelib(rig: CameraSet, path: Path, scale: float) -> None:
    tables = {}
    for i, cam in enumerate(rig):
        t = cam.as_toml_dict()
        t["translation"] = (cam.translation * scale).tolist()
        tables[f"cam_{i}"] = t
    tables["metadata"] = {"adjusted": True, "error": 0.3}  # what anipose writes: no units
    path.write_text(dumps_toml(tables))


def write_qualisys(rig: CameraSet, path: Path) -> None:
    flip = np.diag([1.0, -1.0, -1.0])
    cams = []
    for cam in rig:
        pose = flip @ cam.rotation_matrix  # the matrix as the .qca.txt writes it
        c, k, (w, h) = cam.centre, cam.matrix, cam.size
        d = cam.distortions * 64
        values = {f"r{i + 1}{j + 1}": pose[i, j] for i in range(3) for j in range(3)}
        values.update(x=c[0], y=c[1], z=c[2])
        transform = " ".join(f'{key}="{float(v)!r}"' for key, v in values.items())
        intrinsic = {
            "centerPointU": k[0, 2] * 64,
            "centerPointV": k[1, 2] * 64,
            "focalLengthU": k[0, 0] * 64,
            "focalLengthV": k[1, 1] * 64,
            "radialDistortion1": d[0],
            "radialDistortion2": d[1],
            "tangentalDistortion1": d[2],
            "tangentalDistortion2": d[3],
        }
        intr = " ".join(f'{key}="{float(v)!r}"' for key, v in intrinsic.items())
        cams.append(
            f'<camera active="1" avg-residual="0.4" model="none" serial="{cam.name}" viewrotation="0">'
            f'<fov_video bottom="{h - 1}" left="0" right="{w - 1}" top="0"/>'
            f"<transform {transform}/><intrinsic {intr}/></camera>"
        )
    path.write_text(f"<?xml version='1.0'?><calibration><cameras>{''.join(cams)}</cameras></calibration>")


def write_easymocap(rig: CameraSet, folder: Path, scale: float) -> Path:
    intri = cv2.FileStorage(str(folder / "intri.yml"), cv2.FILE_STORAGE_WRITE)
    extri = cv2.FileStorage(str(folder / "extri.yml"), cv2.FILE_STORAGE_WRITE)
    for fs in (intri, extri):
        fs.startWriteStruct("names", cv2.FileNode_SEQ)
        for cam in rig:
            fs.write("", cam.name)
        fs.endWriteStruct()
    for cam in rig:
        intri.write(f"K_{cam.name}", cam.matrix)
        intri.write(f"dist_{cam.name}", cam.distortions.reshape(1, 5))
        extri.write(f"R_{cam.name}", cam.rotation.reshape(3, 1))
        extri.write(f"Rot_{cam.name}", cam.rotation_matrix)
        extri.write(f"T_{cam.name}", (cam.translation * scale).reshape(3, 1))
    intri.release()
    extri.release()
    return folder / "extri.yml"


def write_caliscope(rig: CameraSet, path: Path, scale: float) -> None:
    tables = {}
    for i, cam in enumerate(rig):
        tables[f"cam_{i}"] = {
            "port": i,
            "size": list(cam.size),
            "rotation_count": 0,
            "error": 0.2,
            "matrix": cam.matrix.tolist(),
            "distortions": cam.distortions.tolist(),
            "translation": (cam.translation * scale).tolist(),
            "rotation": cam.rotation_matrix.tolist(),
        }
    tables["charuco"] = {"columns": 4, "rows": 5, "units": "inch"}
    path.write_text(dumps_toml(tables))


def assert_same(read: CameraSet, truth: CameraSet, names=None) -> None:
    points = np.array([[0.0, 0.0, 0.0], [300.0, -200.0, 500.0], [-400.0, 100.0, 900.0]])
    for got, want in zip(read, truth, strict=True):
        if names is None:
            assert got.name == want.name
        assert np.allclose(got.centre, want.centre, atol=1e-6)
        assert np.allclose(got.project(points), want.project(points), atol=1e-6)


def test_every_format_reads_back_as_the_same_cameras_in_mm(tmp_path: Path) -> None:
    rig = known_rig()
    rig.save(tmp_path / "calibration.toml")
    rig.save_pose2sim(tmp_path / "Calib.toml", 0.3)
    write_aniposelib(rig, tmp_path / "anipose.toml", 0.001)
    write_qualisys(rig, tmp_path / "rig.qca.txt")
    extri = write_easymocap(rig, tmp_path, 0.001)
    write_caliscope(rig, tmp_path / "config.toml", 0.001)
    cases = [
        ("calibration.toml", None, "syncrig"),
        ("Calib.toml", None, "pose2sim"),
        ("anipose.toml", "m", "aniposelib"),
        ("rig.qca.txt", None, "qualisys"),
        (extri.name, "m", "opencv-yaml"),
        ("intri.yml", "m", "opencv-yaml"),
        ("config.toml", "m", "caliscope"),
    ]
    for name, units, fmt in cases:
        assert detect_format(tmp_path / name) == fmt, name
        got = read_calibration(tmp_path / name, units)
        assert got.format == fmt
        if fmt == "caliscope":
            assert got.cameras.names == ("port_0", "port_1", "port_2")
        assert_same(got.cameras, rig, names=None if fmt != "caliscope" else "ports")


@pytest.mark.parametrize("name", ["anipose.toml", "extri.yml", "config.toml"])
def test_formats_without_units_require_them(tmp_path: Path, name: str) -> None:
    rig = known_rig()
    write_aniposelib(rig, tmp_path / "anipose.toml", 1.0)
    write_easymocap(rig, tmp_path, 1.0)
    write_caliscope(rig, tmp_path / "config.toml", 1.0)
    with pytest.raises(CalibrationImportError, match="does not say which unit.*give --units mm or --units m"):
        read_calibration(tmp_path / name)


def test_stated_units_cannot_be_contradicted(tmp_path: Path) -> None:
    known_rig().save_pose2sim(tmp_path / "Calib.toml", 0.3)
    with pytest.raises(CalibrationImportError, match=r"states its units \(m\); --units mm contradicts"):
        read_calibration(tmp_path / "Calib.toml", "mm")


def test_encoder_padding_is_accepted_with_a_note_and_anything_else_refused(tmp_path: Path) -> None:
    rig = known_rig()
    rig.save(tmp_path / "calibration.toml")
    calib = read_calibration(tmp_path / "calibration.toml")
    fit_to_images(calib, {"cam1": (1280, 720), "cam2": (1280, 712)}, "its video")
    assert calib.cameras["cam2"].size == (1280, 712)
    assert any(
        "cam2: calibration for 1280x720 images, video 1280x712: encoder padding" in n for n in calib.notes
    )
    with pytest.raises(
        CalibrationImportError,
        match=r"cam3 is calibrated for 1280x720 images but its video has "
        r"1920x1080 \(more than 16 px apart.*use a calibration made at the footage's resolution",
    ):
        fit_to_images(calib, {"cam3": (1920, 1080)}, "its video")
    # Within 16 px, but the principal point lies outside the smaller video: not padding.
    calib.cameras["cam3"].matrix[0, 2] = 1275.0
    with pytest.raises(CalibrationImportError, match=r"principal point \(1275.0, 360.2\) lies outside"):
        fit_to_images(calib, {"cam3": (1270, 720)}, "its video")


def test_wrong_camera_names_are_refused(tmp_path: Path) -> None:
    known_rig().save(tmp_path / "calibration.toml")
    calib = read_calibration(tmp_path / "calibration.toml")
    with pytest.raises(CalibrationImportError, match="no camera named left, right .*name the videos after"):
        check_camera_names(calib, ["left", "right"], "the footage")


def test_rotated_qualisys_and_caliscope_cameras_are_refused(tmp_path: Path) -> None:
    rig = known_rig()
    write_qualisys(rig, tmp_path / "rig.qca.txt")
    text = (tmp_path / "rig.qca.txt").read_text().replace('viewrotation="0"', 'viewrotation="90"', 1)
    (tmp_path / "rig.qca.txt").write_text(text)
    with pytest.raises(CalibrationImportError, match="viewrotation = 90; rotated Qualisys cameras"):
        read_calibration(tmp_path / "rig.qca.txt")
    write_caliscope(rig, tmp_path / "config.toml", 1.0)
    text = (tmp_path / "config.toml").read_text().replace("rotation_count = 0", "rotation_count = 1", 1)
    (tmp_path / "config.toml").write_text(text)
    with pytest.raises(CalibrationImportError, match="rotation_count = 1"):
        read_calibration(tmp_path / "config.toml", "m")


def test_the_demo_qualisys_file_matches_pose2sims_conversion(pose2sim_demo_dir) -> None:
    """Pose2Sim's own converter (calibration.py calib_qca_fun) run on this file gives cam01 a focal
    length of 107599.671875 / 64 px, a principal point of (34110.316406 / 64, 60680.792969 / 64) and
    its centre at the transform's x, y, z; in SyncRig's mm."""
    calib = read_calibration(pose2sim_demo_dir() / "calibration" / "Calib.qca.txt")
    cam = calib.cameras["cam01"]
    assert cam.size == (1088, 1920)
    assert np.allclose(
        cam.matrix[[0, 0, 1], [0, 2, 2]], [107599.671875 / 64, 34110.316406 / 64, 60680.792969 / 64]
    )
    assert np.allclose(cam.centre, [1460.2323709212087, -1909.1590482454608, 1896.5058524092062], atol=1e-6)
    assert calib.cameras.names == ("cam01", "cam02", "cam03", "cam04")


def test_triangulate_reads_a_foreign_calibration_and_requires_units(tmp_path: Path, capsys) -> None:
    anipose = tmp_path / "anipose.toml"
    write_aniposelib(known_rig(), anipose, 0.001)
    empty = tmp_path / "session"
    empty.mkdir()
    # The units are asked for before anything else is read from the session.
    from controller.dataset.imports.calibration import load_any_calibration

    with pytest.raises(CalibrationImportError, match="give --units"):
        load_any_calibration(anipose, None, {}, "session")
    cams = load_any_calibration(anipose, "m", {"cam1": (1280, 720)}, "session")
    assert np.allclose(cams["cam1"].centre, known_rig()["cam1"].centre)
    assert main(["triangulate", str(empty), "--calibration", str(anipose), "--quiet"]) == 1
    assert "not synced" in capsys.readouterr().err


def test_a_file_aniposelib_itself_wrote_reads_back(tmp_path: Path) -> None:
    cameras = pytest.importorskip(
        "aniposelib.cameras", reason="ANIPOSELIB NOT INSTALLED: its own writer untested"
    )
    rig = known_rig()
    group = cameras.CameraGroup(
        [
            cameras.Camera(
                name=c.name,
                size=c.size,
                matrix=c.matrix,
                dist=c.distortions,
                rvec=c.rotation,
                tvec=c.translation / 1000,
            )
            for c in rig
        ]
    )
    group.dump(str(tmp_path / "calibration.toml"))
    assert detect_format(tmp_path / "calibration.toml") == "aniposelib"
    with pytest.raises(CalibrationImportError, match="give --units"):
        read_calibration(tmp_path / "calibration.toml")
    assert_same(read_calibration(tmp_path / "calibration.toml", "m").cameras, rig)


def test_a_size_the_file_does_not_state_comes_from_the_video(tmp_path: Path) -> None:
    write_easymocap(known_rig(), tmp_path, 1.0)
    calib = read_calibration(tmp_path / "intri.yml", "mm")
    assert calib.cameras["cam1"].size == (0, 0)
    assert any("no image size in intri.yml (H_cam1, W_cam1); the video's is used" in n for n in calib.notes)
    fit_to_images(calib, {"cam1": (1280, 720)}, "its video")
    assert calib.cameras["cam1"].size == (1280, 720)
    with pytest.raises(
        CalibrationImportError, match=r"camera cam2 states no image size and its principal point"
    ):
        fit_to_images(calib, {"cam2": (320, 240)}, "its video")
