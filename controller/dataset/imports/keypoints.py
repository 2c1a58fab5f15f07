"""`syncrig pose SESSION --import FILE...`: 2D keypoints from DeepLabCut, SLEAP and Lightning Pose
as the session's `pose2d/<cam>.npz` (pose/pose2d.py), which triangulate and export read.

Readers: DeepLabCut predictions (`.h5` and `.csv`, single- and multi-animal: pandas, DLC's own
format library; sleap-io's `load_dlc` reads labelled-data CSVs, and on a predictions CSV returns no
frames), Lightning Pose CSV (DLC's layout), SLEAP `.slp` and analysis `.h5` (sleap-io).
Multi-animal / multi-track keypoints are named `<individual>_<bodypart>`; skeleton edges come from
SLEAP's skeleton or a DeepLabCut `config.yaml` next to the file (or one folder up); likelihoods
and scores are the confidence; coordinates are kept as the tools write them (pixel centres at
integer coordinates, OpenCV's convention, which the calibration uses too).

Files are matched to cameras by name: the camera whose name the file's name starts with (the
longest such name). Frames map to match rows by one rule, chosen with `frames`:
- "synced" (default): frame N of the file is frame N of `synced/<cam>.mp4` (the tool ran on the
  synced output); it lands on that frame's match row (`synced/<cam>.map.csv`);
- "raw": frame N of the file is recorded frame N of the camera (the tool ran on the original video,
  e.g. the footage `syncrig import` brought in; frame N = line N of raw/<cam>.pts), placed on the
  match row its synced frame has. Frames the match table left out are dropped and counted.
A file with a frame count other than the video's, an unknown camera, or a keypoint set other than
the other files' is refused with the file named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from controller.dataset.pose.pose2d import Pose2D, Pose2DError, read_synced_frames
from controller.pipeline.outputs import read_map_csv
from controller.session.synced import NotSynced, synced_cameras
from syncrig_agent.contract.formats import read_manifest, read_pts
from syncrig_agent.contract.layout import SessionLayout

FRAME_RULES = ("synced", "raw")
PIXEL_ORIGIN = "centre of the top-left pixel at (0, 0) (the tool's convention, and OpenCV's)"


class KeypointImportError(ValueError):
    """A keypoint file that cannot be brought in; the message names the file and what is wrong."""


@dataclass
class ForeignPose:
    source: Path
    tool: str  # deeplabcut | lightning-pose | sleap
    frames: np.ndarray  # (F,) int: frame index in the video the tool ran on
    names: tuple[str, ...]
    xy: np.ndarray  # (F, K, 2) float, NaN where not found
    confidence: np.ndarray  # (F, K) float in [0, 1]
    edges: list[tuple[str, str]] = field(default_factory=list)
    version: str = ""
    dense: bool = True  # one row per video frame (DLC, Lightning Pose) vs labelled frames only (SLEAP)


def read_keypoints(path: Path | str) -> ForeignPose:
    """Any supported keypoint file, by suffix and content."""
    path = Path(path)
    if not path.is_file():
        raise KeypointImportError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".slp":
        return _read_sleap(path)
    if suffix in (".h5", ".hdf5"):
        import h5py

        try:
            with h5py.File(path, "r") as f:
                is_sleap = "tracks" in f and "node_names" in f
        except OSError as exc:
            raise KeypointImportError(f"{path}: not an HDF5 file ({exc})") from None
        return _read_sleap(path) if is_sleap else _read_dlc(path)
    if suffix == ".csv":
        return _read_dlc(path)
    raise KeypointImportError(
        f"{path}: unknown keypoint file type {suffix!r}; expected DeepLabCut .h5/.csv, Lightning Pose "
        ".csv, SLEAP .slp or analysis .h5"
    )


def _read_dlc(path: Path) -> ForeignPose:
    try:
        import pandas as pd
    except ImportError:
        raise KeypointImportError(
            f"{path}: reading DeepLabCut/Lightning Pose files needs pandas (pip install 'syncrig[imports]')"
        ) from None

    try:
        if path.suffix.lower() == ".csv":
            with open(path, encoding="utf-8") as fh:
                head = [fh.readline().split(",")[0].strip() for _ in range(4)]
            levels = 4 if head[1] == "individuals" else 3
            df = pd.read_csv(path, header=list(range(levels)), index_col=0)
        else:
            df = pd.read_hdf(path)
    except ImportError as exc:  # PyTables, for .h5
        raise KeypointImportError(f"{path}: {exc} (pip install 'syncrig[imports]')") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as exc:
        raise KeypointImportError(f"{path}: not a DeepLabCut/Lightning Pose file ({exc})") from None
    columns = df.columns
    if columns.nlevels not in (3, 4) or "coords" not in (columns.names[-1] or "coords"):
        raise KeypointImportError(
            f"{path}: expected DeepLabCut's header rows scorer, [individuals,] bodyparts, coords"
        )
    scorer = str(columns.get_level_values(0)[0])
    keys = list(dict.fromkeys(c[1:-1] for c in columns))  # (individual, bodypart) or (bodypart,)
    multi = columns.nlevels == 4
    names = tuple("_".join(k) if multi else k[0] for k in keys)
    values = df.to_numpy(dtype=np.float64)
    index = {c: i for i, c in enumerate(columns)}
    f, k = len(df), len(keys)
    xy = np.full((f, k, 2), np.nan)
    conf = np.zeros((f, k))
    for j, key in enumerate(keys):
        for a, coord in enumerate(("x", "y")):
            col = index.get((scorer, *key, coord))
            if col is None:
                raise KeypointImportError(f"{path}: no {coord} column for {'/'.join(key)}")
            xy[:, j, a] = values[:, col]
        lik = index.get((scorer, *key, "likelihood"))
        conf[:, j] = values[:, lik] if lik is not None else 1.0
    missing = ~np.isfinite(xy).all(axis=-1)
    xy[missing] = np.nan
    conf = np.where(missing, 0.0, np.clip(np.nan_to_num(conf), 0.0, 1.0))
    tool = "lightning-pose" if re.search(r"heatmap|lightning", scorer, re.I) else "deeplabcut"
    frames = np.asarray([_frame_number(v, path) for v in df.index], dtype=np.int64)
    edges = _dlc_skeleton(path, names, keys, multi)
    return ForeignPose(path, tool, frames, names, xy, conf, edges, scorer)


def _frame_number(value, path: Path) -> int:  # noqa: ANN001 (an index label: int or image path)
    if isinstance(value, (int, np.integer)):
        return int(value)
    digits = re.findall(r"\d+", str(value))
    if not digits:
        raise KeypointImportError(f"{path}: row label {value!r} gives no frame number")
    return int(digits[-1])


def _dlc_skeleton(
    path: Path, names: tuple[str, ...], keys: list[tuple], multi: bool
) -> list[tuple[str, str]]:
    """Edges from a DeepLabCut project's config.yaml (`skeleton`), next to the file or one up."""
    try:
        import yaml
    except ImportError:  # the keypoints still come in, without edges
        return []

    for folder in (path.parent, path.parent.parent):
        config = folder / "config.yaml"
        if not config.is_file():
            continue
        try:
            pairs = (yaml.safe_load(config.read_text(encoding="utf-8")) or {}).get("skeleton") or []
        except (OSError, yaml.YAMLError):
            return []
        individuals = sorted({k[0] for k in keys}) if multi else [None]
        edges = []
        for ind in individuals:
            for a, b in pairs:
                na, nb = (f"{ind}_{a}", f"{ind}_{b}") if ind else (a, b)
                if na in names and nb in names:
                    edges.append((na, nb))
        return edges
    return []


def _read_sleap(path: Path) -> ForeignPose:
    try:
        import sleap_io as sio
    except ImportError:
        raise KeypointImportError(
            f"{path}: reading SLEAP files needs sleap-io (pip install 'syncrig[imports]')"
        ) from None
    try:
        labels = sio.load_file(str(path))
    except Exception as exc:  # noqa: BLE001 (sleap-io raises many kinds; the reason is what counts)
        raise KeypointImportError(f"{path}: sleap-io cannot read it ({exc})") from None
    if not labels.skeletons:
        raise KeypointImportError(f"{path}: no skeleton in it")
    skeleton = labels.skeletons[0]
    nodes = [n.name for n in skeleton.nodes]
    tracks = [t.name for t in labels.tracks]
    arr = labels.numpy(return_confidence=True, untracked=not tracks)  # (F, T, N, 3)
    if len(tracks) <= 1:
        if arr.shape[1] > 1:
            raise KeypointImportError(
                f"{path}: several untracked instances per frame; assign tracks in SLEAP first"
            )
        names = tuple(nodes)
        edges = [tuple(e) for e in skeleton.edge_names]
        arr = arr[:, :1]
    else:
        names = tuple(f"{t}_{n}" for t in tracks for n in nodes)
        edges = [(f"{t}_{a}", f"{t}_{b}") for t in tracks for a, b in skeleton.edge_names]
    f = arr.shape[0]
    flat = arr.reshape(f, -1, 3)
    xy = flat[..., :2].astype(np.float64)
    found = np.isfinite(xy).all(axis=-1)
    xy[~found] = np.nan
    # A user-labelled point has no score (NaN): it is certain.
    conf = np.where(found, np.clip(np.nan_to_num(flat[..., 2], nan=1.0), 0.0, 1.0), 0.0)
    version = str(getattr(labels, "provenance", {}).get("sleap_version", ""))
    return ForeignPose(path, "sleap", np.arange(f), names, xy, conf, edges, version, dense=False)


def match_camera(path: Path, cameras: list[str]) -> str:
    """The camera this file belongs to: the longest camera name the file's name starts with."""
    fits = [c for c in cameras if path.name.startswith(c)]
    if not fits:
        raise KeypointImportError(
            f"{path}: its name starts with no camera of the session ({', '.join(cameras)}); name each "
            "file after its camera (e.g. cam1DLC_resnet50_....h5, cam1.predictions.slp)"
        )
    return max(fits, key=len)


def import_keypoints(
    session: Path | str, files: list[Path], frames: str = "synced", overwrite: bool = False
) -> list[dict]:
    """Read every file, check them against each other and the session, then write
    pose2d/<cam>.npz per camera; returns one summary per camera. Nothing is written unless every
    file passes."""
    session = Path(session)
    if frames not in FRAME_RULES:
        raise KeypointImportError(f"frames must be one of {FRAME_RULES}, got {frames!r}")
    try:
        cameras = synced_cameras(session)
    except NotSynced as exc:
        raise KeypointImportError(str(exc)) from None
    layout = SessionLayout(session)
    by_camera: dict[str, ForeignPose] = {}
    for path in files:
        cam = match_camera(Path(path), cameras)
        if cam in by_camera:
            raise KeypointImportError(f"{path} and {by_camera[cam].source} are both for camera {cam}")
        by_camera[cam] = read_keypoints(path)
    first = next(iter(by_camera.values()))
    for pose in by_camera.values():
        if pose.names != first.names:
            extra = sorted(set(pose.names) - set(first.names))
            lacking = sorted(set(first.names) - set(pose.names))
            raise KeypointImportError(
                f"{pose.source}: its keypoint set differs from {first.source.name}'s "
                f"(extra: {extra[:5] or 'none'}, missing: {lacking[:5] or 'none'}"
                + (", same names in another order" if not extra and not lacking else "")
                + "); every camera needs the same keypoints from the same model"
            )
    manifest = read_manifest(session)
    sizes = {c["name"]: (int(c["width"]), int(c["height"])) for c in manifest.cameras}
    planned = {cam: _plan(session, layout, cam, pose, frames) for cam, pose in by_camera.items()}
    results = []
    for cam, pose in by_camera.items():
        target = layout.pose2d_file(cam)
        if target.exists() and not overwrite:
            raise KeypointImportError(f"{target} exists; pass --force to replace it with {pose.source.name}")
    for cam, pose in by_camera.items():
        rows, capture, take, dropped = planned[cam]
        kp = np.full((len(rows), len(pose.names), 3), np.nan, np.float32)
        kp[..., 2] = 0.0
        have = take >= 0
        kp[have, :, :2] = pose.xy[take[have]]
        kp[have, :, 2] = pose.confidence[take[have]]
        meta = {
            "model": pose.tool,
            "model_version": pose.version,
            "source_file": str(pose.source),
            "frames_rule": frames,
            "skeleton": [list(e) for e in pose.edges],
            "pixel_origin": PIXEL_ORIGIN,
            "confidence": {"other": f"{pose.tool} likelihood / score, as the file gives it"},
        }
        try:
            Pose2D(cam, kp, rows, capture, pose.names, sizes[cam], meta).save(layout.pose2d_file(cam))
        except Pose2DError as exc:
            raise KeypointImportError(f"{pose.source}: {exc}") from None
        results.append(
            {
                "camera": cam,
                "file": pose.source.name,
                "tool": pose.tool,
                "frames": int(have.sum()),
                "keypoints": len(pose.names),
                "dropped_frames": dropped,
                "status": "imported",
            }
        )
    return results


def _plan(session: Path, layout: SessionLayout, cam: str, pose: ForeignPose, frames: str):  # noqa: ANN202
    """(rows, capture_ns, index into the file per row or -1, frames of the file left out)."""
    try:
        synced = read_synced_frames(session, cam)
        source_frame = read_map_csv(layout.synced.map(cam))["source_frame"]
    except (Pose2DError, ValueError, OSError) as exc:
        raise KeypointImportError(f"{pose.source}: {exc}") from None
    keep = ~synced.filled
    if frames == "synced":
        video_frames = len(synced.output_frame)
        key = synced.output_frame[keep]
        what = f"{synced.video.name} has {video_frames} frames"
    else:
        video_frames = len(read_pts(layout.raw.pts(cam)))
        key = source_frame[keep]
        what = f"the camera recorded {video_frames} frames (raw/{cam}.pts)"
    count = len(pose.frames)
    too_far = pose.frames.max(initial=-1) >= video_frames
    if (pose.dense and count != video_frames) or too_far:
        other = "raw" if frames == "synced" else "synced"
        raise KeypointImportError(
            f"{pose.source}: {count} frames (up to frame {int(pose.frames.max(initial=-1))}) but {what}: "
            f"not this camera's video under the `--frames {frames}` rule (try --frames {other} if the "
            "tool ran on the other video)"
        )
    position = np.full(video_frames, -1, np.int64)
    position[pose.frames] = np.arange(count)
    take = position[key]
    dropped = int(count - np.count_nonzero(take >= 0))
    return synced.row[keep], synced.capture_ns[keep], take, dropped


__all__ = [
    "FRAME_RULES",
    "ForeignPose",
    "KeypointImportError",
    "import_keypoints",
    "match_camera",
    "read_keypoints",
]
