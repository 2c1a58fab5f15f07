"""`syncrig pose --import`: DeepLabCut (.h5 and .csv, single- and multi-animal), SLEAP (.slp and
analysis .h5 through sleap-io) and Lightning Pose files made from known 3D points projected through
known cameras (0.5 px noise, missing points, low-likelihood outliers) triangulate within 1 mm
(median) of the truth, any keypoint set flows through triangulate and export, and every wrong
file is refused naming it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.cli.main import main
from controller.dataset.cameras import CameraSet, dumps_toml
from controller.dataset.export.trc import read_trc_header
from controller.dataset.pose.pose2d import Pose2D
from controller.dataset.pose.pose3d import load_pose3d
from controller.dataset.pose.synthetic import ring_cameras, skeleton_motion, write_synthetic_session
from controller.pipeline.outputs import read_map_csv
from syncrig_agent.contract.layout import SessionLayout

pytest.importorskip("tables", reason="DeepLabCut's .h5 needs PyTables (the test extra installs it)")
sio = pytest.importorskip("sleap_io", reason="SLEAP files need sleap-io (the test extra installs it)")

# The synthetic session around the keypoints draws a human skeleton that these close-up mouse-rig
# cameras mostly see out of frame (or behind them); only its session files are used here.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in cast:RuntimeWarning")
FRAMES = 24
NOISE = 0.5  # px
MOUSE = ("snout", "left_ear", "right_ear", "neck", "tail_base", "tail_tip")
MICE = ("mouse1", "mouse2")
MULTI = ("dlc-ma", "sleap-tracks")  # two animals, identities tracked: <animal>_<bodypart>
EDGES = [("snout", "neck"), ("left_ear", "neck"), ("right_ear", "neck"), ("neck", "tail_base")]


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """A synced 4-camera session (synthetic, with dropped frames) and a mouse's true 3D path, the
    cameras half a metre from the arena's centre as in a mouse rig."""
    session = tmp_path_factory.mktemp("kp") / "session"
    cams = ring_cameras(4, radius_mm=500.0, height_mm=350.0, target_mm=(0.0, 0.0, 30.0), seed=5)
    write_synthetic_session(
        session, cams, skeleton_motion(FRAMES, 30.0, seed=1), drop_prob=0.05, video_scale=0.1
    )
    rng = np.random.default_rng(11)
    base = np.array([[40, 0, 30], [20, 12, 40], [20, -12, 40], [0, 0, 35], [-60, 0, 25], [-120, 0, 5.0]])
    walk = np.cumsum(rng.normal(0, 3, (FRAMES, 1, 3)), axis=0)
    return session, CameraSet(cams), base[None] + walk


def two_mice(truth: np.ndarray) -> np.ndarray:
    """The second mouse 80 mm beside the first: keypoints (F, 2 x K, 3), mouse1's first."""
    return np.concatenate([truth, truth + [0, 80, 0]], axis=1)


def observations(session: Path, cams: CameraSet, truth: np.ndarray, cam: str, seed: int):
    """Per synced output frame of `cam`: pixels (0.5 px noise), likelihood; 10 % missing, 5 % outliers
    (40 px off, likelihood 0.05)."""
    rows = read_map_csv(SessionLayout(session).synced.map(cam))["row"]
    rng = np.random.default_rng(seed)
    px = cams[cam].project(truth[rows]) + rng.normal(0, NOISE, (len(rows), truth.shape[1], 2))
    lik = rng.uniform(0.8, 1.0, px.shape[:2])
    outlier = rng.random(px.shape[:2]) < 0.05
    px[outlier] += 40.0
    lik[outlier] = 0.05
    missing = rng.random(px.shape[:2]) < 0.10
    px[missing] = np.nan
    lik[missing] = 0.0
    return px, lik


def dlc_frame(
    px: np.ndarray, lik: np.ndarray, individuals: tuple[str, ...] | None, scorer: str
) -> pd.DataFrame:
    cols, data = [], []
    inds = individuals or (None,)
    per = len(MOUSE)
    for a, ind in enumerate(inds):
        for j, bp in enumerate(MOUSE):
            for c, values in (
                ("x", px[:, a * per + j, 0]),
                ("y", px[:, a * per + j, 1]),
                ("likelihood", lik[:, a * per + j]),
            ):
                cols.append((scorer, ind, bp, c) if ind else (scorer, bp, c))
                data.append(values)
    names = (
        ["scorer", "individuals", "bodyparts", "coords"] if individuals else ["scorer", "bodyparts", "coords"]
    )
    return pd.DataFrame(np.array(data).T, columns=pd.MultiIndex.from_tuples(cols, names=names))


def write_files(kind: str, session: Path, cams: CameraSet, truth: np.ndarray, folder: Path) -> list[Path]:
    folder.mkdir(exist_ok=True)
    files = []
    for i, cam in enumerate(cams.names):
        if kind in MULTI:
            px, lik = observations(session, cams, two_mice(truth), cam, seed=i)
        else:
            px, lik = observations(session, cams, truth, cam, seed=i)
        if kind in ("dlc-h5", "dlc-csv", "lightning-pose", "dlc-ma"):
            scorer = "heatmap_tracker" if kind == "lightning-pose" else "DLC_resnet50_mouseJan1shuffle1_1000"
            df = dlc_frame(px, lik, MICE if kind == "dlc-ma" else None, scorer)
            path = folder / f"{cam}{scorer}.{'h5' if kind in ('dlc-h5', 'dlc-ma') else 'csv'}"
            if path.suffix == ".h5":
                df.to_hdf(path, key="df_with_missing", format="table", mode="w")
            else:
                df.to_csv(path)
        else:
            skeleton = sio.Skeleton(nodes=list(MOUSE))
            skeleton.add_edges(EDGES)
            video = sio.Video(filename=f"{cam}.mp4", open_backend=False)
            tracks = [sio.Track(name) for name in MICE] if kind in MULTI else [None]
            n = len(MOUSE)
            frames = [
                sio.LabeledFrame(
                    video=video,
                    frame_idx=k,
                    instances=[
                        sio.PredictedInstance.from_numpy(
                            px[k, a * n : (a + 1) * n],
                            skeleton,
                            point_scores=lik[k, a * n : (a + 1) * n],
                            score=0.9,
                            track=t,
                        )
                        for a, t in enumerate(tracks)
                    ],
                )
                for k in range(len(px))
            ]
            labels = sio.Labels(
                labeled_frames=frames, videos=[video], skeletons=[skeleton], tracks=[t for t in tracks if t]
            )
            path = folder / f"{cam}.predictions.{'analysis.h5' if kind == 'sleap-h5' else 'slp'}"
            if kind != "sleap-h5":
                sio.save_slp(labels, str(path), verbose=False)
            else:
                sio.save_analysis_h5(labels, str(path))
        files.append(path)
    if kind == "dlc-csv":
        (folder / "config.yaml").write_text("skeleton:\n" + "".join(f"- [{a}, {b}]\n" for a, b in EDGES))
    return files


@pytest.mark.parametrize(
    "kind", ["dlc-h5", "dlc-csv", "dlc-ma", "lightning-pose", "sleap-slp", "sleap-h5", "sleap-tracks"]
)
def test_imported_keypoints_triangulate_within_a_millimetre(rig, tmp_path: Path, kind: str, capsys) -> None:
    session, cams, truth = rig
    files = write_files(kind, session, cams, truth, tmp_path / kind)
    assert main(["pose", str(session), "--import", *map(str, files), "--force"]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert out.count("imported from") == 4
    p2d = Pose2D.load(SessionLayout(session).pose2d_file("cam0"))
    expected = tuple(f"{m}_{n}" for m in MICE for n in MOUSE) if kind in MULTI else MOUSE
    assert p2d.names == expected
    if kind in ("dlc-csv", "sleap-slp", "sleap-h5"):
        assert [tuple(e) for e in p2d.meta["skeleton"]] == EDGES
    assert main(["triangulate", str(session), "--quiet"]) == 0, capsys.readouterr().err
    pose = load_pose3d(session)
    assert pose.names == expected
    want = two_mice(truth) if kind in MULTI else truth
    err = np.linalg.norm(pose.points - want[pose.rows], axis=-1)
    done = np.isfinite(err)
    print(
        f"{kind}: median {np.median(err[done]):.3f} mm, p95 {np.percentile(err[done], 95):.3f} mm, "
        f"{done.mean():.1%} triangulated"
    )
    assert np.median(err[done]) < 1.0 and done.mean() > 0.9
    capsys.readouterr()
    report = json.loads(SessionLayout(session).pose3d_report.read_text())
    assert set(report["groups"]) == {"other"}  # a mouse's "left_ear" is not MediaPipe's body
    if kind == "dlc-csv":  # the skeleton's edges reach NWB's Skeleton, by name
        pynwb = pytest.importorskip("pynwb", reason="NWB export needs pynwb (the test extra)")
        nwb = tmp_path / "mouse.nwb"
        assert main(["export", str(session), "--format", "nwb", "--out", str(nwb), "--quiet"]) == 0
        with pynwb.NWBHDF5IO(str(nwb), "r") as io:
            skeleton = io.read().processing["behavior"]["Skeletons"].skeletons["other"]
            nodes = list(skeleton.nodes[:])
            assert {(nodes[a], nodes[b]) for a, b in skeleton.edges[:]} == set(EDGES)
    trc = tmp_path / f"{kind}.trc"
    assert main(["export", str(session), "--format", "trc", "--out", str(trc), "--quiet"]) == 0
    assert read_trc_header(trc)["markers"] == list(expected)


def test_refusals_name_the_file(rig, tmp_path: Path, capsys) -> None:
    session, cams, truth = rig
    files = write_files("dlc-csv", session, cams, truth, tmp_path / "ok")

    def refused(*args: str) -> str:
        assert main(["pose", str(session), "--import", *args, "--force"]) == 1
        return capsys.readouterr().err

    stray = tmp_path / "ok" / "left_cameraDLC.csv"
    stray.write_bytes(files[0].read_bytes())
    assert f"{stray}: its name starts with no camera of the session (cam0, cam1, cam2, cam3)" in refused(
        str(stray)
    )
    short = tmp_path / "short" / "cam1_short.csv"
    short.parent.mkdir()
    df = pd.read_csv(files[1], header=[0, 1, 2], index_col=0)
    df.iloc[:5].to_csv(short)
    err = refused(str(files[0]), str(short))
    assert f"{short}: 5 frames" in err and "not this camera's video under the `--frames synced` rule" in err
    other = tmp_path / "other" / "cam1_other.csv"
    other.parent.mkdir()
    df.rename(columns={"snout": "nose"}, level=1).to_csv(other)
    err = refused(str(files[0]), str(other))
    assert f"{other}: its keypoint set differs" in err and "extra: ['nose']" in err
    assert "both for camera cam0" in refused(str(files[0]), str(files[0]))
    junk = tmp_path / "ok" / "cam2.txt"
    junk.write_text("x")
    assert f"{junk}: unknown keypoint file type '.txt'" in refused(str(junk))
    assert main(["pose", str(session), "--import", str(files[0])]) == 1  # exists, no --force
    assert "exists; pass --force" in capsys.readouterr().err


def test_triangulate_converts_a_foreign_calibration(rig, tmp_path: Path, capsys) -> None:
    """`triangulate --calibration` reads Pose2Sim's Calib.toml (metres) as mm, and asks for the
    units of an aniposelib file, which does not state them."""
    session, cams, truth = rig
    files = write_files("dlc-csv", session, cams, truth, tmp_path / "kp")
    assert main(["pose", str(session), "--import", *map(str, files), "--force"]) == 0
    assert main(["triangulate", str(session), "--quiet"]) == 0
    own = load_pose3d(session).points
    cams.save_pose2sim(tmp_path / "Calib.toml", 0.1)
    assert main(["triangulate", str(session), "--calibration", str(tmp_path / "Calib.toml"), "--quiet"]) == 0
    assert np.allclose(load_pose3d(session).points, own, atol=1e-3, equal_nan=True)  # mm, not 1000x off
    anipose = tmp_path / "anipose.toml"
    tables = {f"cam_{i}": cam.as_toml_dict() for i, cam in enumerate(cams)}
    anipose.write_text(dumps_toml({**tables, "metadata": {"adjusted": True, "error": 0.1}}))
    capsys.readouterr()
    assert main(["triangulate", str(session), "--calibration", str(anipose), "--quiet"]) == 1
    assert (
        "does not say which unit its translations are in; give --units mm or --units m"
        in capsys.readouterr().err
    )
