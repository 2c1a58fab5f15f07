"""NWB (Neurodata Without Borders) with ndx-pose, written with pynwb (the `nwb` extra).

What goes in, under the `behavior` processing module:
- one `ndx_pose.Skeleton` per keypoint group (body, left_hand, right_hand, face; the face has no
  edges: NWB stores edge indices as uint8) in a `Skeletons` container;
- one `MultiCameraPoseEstimation` per group: a 3D `PoseEstimationSeries` per keypoint (metres, the
  calibration's world frame; confidence = lowest 2D confidence among the cameras used), and per
  camera a `PoseEstimation` with that camera's 2D keypoints (pixels), linked to its
  `CalibratedCamera` device (intrinsics, rotation, translation, distortion from calibration.toml)
  and to its synced video;
- per camera an `ImageSeries` in acquisition that references `synced/<cam>.mp4` as an external file
  (relative to the NWB file) with the video's own frame timestamps.
Groups no camera ever saw in 3D are left out (export.seen_keypoints).
All timestamps are seconds since the session's T0 on the shared clock (session_start_time = T0):
3D series at the match rows' times, 2D series and videos at each frame's capture time.
- the clock maps of external recordings aligned with `syncrig align` (sync/<stem>.json), as the
  `external_clocks` table of a `sync` processing module: nwb_time_s = slope · external_s +
  offset_ns / 1e9, external_s = seconds since that recording's first sample.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from controller.dataset.cameras import CameraSet
from controller.dataset.export import ExportError, seen_keypoints
from controller.dataset.pose.keypoints import GROUPS, declared_skeleton, group_of
from controller.dataset.pose.pose2d import Pose2D
from controller.dataset.pose.pose3d import load_pose3d
from syncrig_agent.contract.formats import read_manifest, read_pts
from syncrig_agent.contract.layout import SessionLayout

if TYPE_CHECKING:
    import pynwb


def _imports():
    try:
        import ndx_pose
        import pynwb
    except ImportError as exc:
        raise ExportError(
            f"NWB export needs pynwb and ndx-pose ({exc}); install them with `pip install -e '.[nwb]'`"
        ) from None
    return pynwb, ndx_pose


def _video_times_s(session: Path, camera: str, t0_ns: int) -> np.ndarray | None:
    from controller.pipeline.verify import output_time_origin

    folder = SessionLayout(session).synced
    pts = folder.pts(camera)
    if not pts.is_file():
        return None
    origin = output_time_origin(folder.path, t0_ns)
    return (read_pts(pts).times_ns + (origin - t0_ns)) / 1e9


def export(
    session: Path, out: Path, progress=None, include_2d: bool = True, face_2d: bool = False, only_groups=None
) -> Path:
    """`include_2d`: per-camera 2D series too; `face_2d`: also the face's 478 × cameras 2D series
    (off by default: pynwb writes and reads each series as its own object, which takes minutes for
    a face mesh in every camera); `only_groups`: the keypoint groups to write (default: all)."""
    pynwb, ndx_pose = _imports()
    from pynwb.file import Subject
    from pynwb.image import ImageSeries

    session = Path(session)
    pose = load_pose3d(session)
    manifest = read_manifest(session)
    calib_path = Path(pose.meta.get("calibration", ""))
    cameras = CameraSet.load(calib_path) if calib_path.is_file() else CameraSet([])
    start = datetime.fromtimestamp(manifest.t0_ns / 1e9, tz=timezone.utc)
    nwb = pynwb.NWBFile(
        session_description=f"SyncRig session {manifest.id}: multi-camera video, 2D + 3D keypoints",
        identifier=str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"syncrig:{manifest.id}:{pose.meta.get('calibration')}")
        ),
        session_start_time=start,
        session_id=manifest.id,
        experiment_description=f"project {manifest.project}" if manifest.project else None,
        source_script="syncrig export --format nwb",
        source_script_file_name="syncrig",
    )
    if manifest.subject:
        nwb.subject = Subject(subject_id=str(manifest.subject))
    behavior = nwb.create_processing_module("behavior", "pose estimation from synchronized cameras")

    devices, videos, poses2d = {}, {}, {}
    for cam in pose.cameras:
        entry = next((c for c in manifest.cameras if c.get("name") == cam), {})
        model = cameras.get(cam)
        desc = f"SyncRig camera {cam} on {entry.get('host', 'unknown host')} ({entry.get('role', '')})"
        if model is not None:
            devices[cam] = ndx_pose.CalibratedCamera(
                name=cam,
                description=desc,
                intrinsic_matrix=model.matrix,
                rotation_matrix=model.rotation_matrix,
                translation_vector=model.translation / 1000.0,
                distortion_coefficients=model.distortions,
            )
        else:
            devices[cam] = pynwb.device.Device(name=cam, description=desc)
        nwb.add_device(devices[cam])
        times = _video_times_s(session, cam, manifest.t0_ns)
        video = SessionLayout(session).synced.video(cam)
        if times is not None and video.is_file():
            videos[cam] = ImageSeries(
                name=f"video_{cam}",
                description=f"synced video of {cam}: exactly the matched frames, each at its capture time",
                external_file=[os.path.relpath(video, out.parent)],
                starting_frame=[0],
                format="external",
                timestamps=times,
                unit="n/a",
                device=devices[cam],
            )
            nwb.add_acquisition(videos[cam])
        p2d = session / "pose2d" / f"{cam}.npz"
        if include_2d and p2d.is_file():
            poses2d[cam] = Pose2D.load(p2d)

    _keep, never_seen = seen_keypoints(pose)
    groups = {
        g: idx
        for g, idx in group_of(pose.names).items()
        if (only_groups is None or g in only_groups) and g not in never_seen
    }
    if not groups:
        raise ExportError(f"no keypoints in the groups {only_groups}")
    edges_by_group = {g.name: g.edges for g in GROUPS}
    # Keypoints outside SyncRig's own set (imported from other tools): their edges come by name.
    other = {pose.names[i]: j for j, i in enumerate(groups.get("other", []))}
    named = [(other[a], other[b]) for a, b in declared_skeleton(pose.meta)[0] if a in other and b in other]
    edges_by_group["other"] = tuple(named)
    # Skeletons first: PoseEstimation links to its Skeleton, which must already have its parent.
    skeletons = {
        group: ndx_pose.Skeleton(
            name=group,
            nodes=[pose.names[i] for i in idx],
            edges=np.array(edges_by_group.get(group, ()), dtype=np.uint8).reshape(-1, 2),
        )
        for group, idx in groups.items()
    }
    behavior.add(ndx_pose.Skeletons(skeletons=list(skeletons.values())))
    t3d = pose.time_ns / 1e9
    valid_score = np.nan_to_num(pose.score, nan=0.0)
    model_name = str(pose.meta.get("pose_model") or "unknown")
    how = {
        "sequence": "sequence triangulation over the calibrated cameras: robust, temporally continuous, "
        "constant bone lengths",
        "frame": "robust DLT over the calibrated cameras, each frame on its own",
    }.get(str(pose.meta.get("method", "frame")), "triangulated from the calibrated cameras")
    for gi, (group, idx) in enumerate(groups.items()):
        names = [pose.names[i] for i in idx]
        skeleton = skeletons[group]
        series3d = []
        for j, i in enumerate(idx):
            series3d.append(
                ndx_pose.PoseEstimationSeries(
                    name=pose.names[i],
                    description=f"3D position of {pose.names[i]} ({how})",
                    data=pose.points[:, i].astype(np.float64) / 1000.0,
                    unit="meters",
                    reference_frame="calibration world frame (the ChArUco board's; metres)",
                    timestamps=t3d if j == 0 else series3d[0],
                    confidence=valid_score[:, i],
                    confidence_definition="lowest 2D confidence of the cameras used; 0: not triangulated",
                )
            )
        per_camera = []
        for cam, p in poses2d.items() if (group != "face" or face_2d) else ():
            lookup = {n: k for k, n in enumerate(p.names)}
            series2d = []
            for name in names:
                k = lookup.get(name)
                if k is None:
                    continue
                series2d.append(
                    ndx_pose.PoseEstimationSeries(
                        name=name,
                        description=f"2D position of {name} in {cam}'s image",
                        data=p.keypoints[:, k, :2].astype(np.float64),
                        unit="pixels",
                        reference_frame="top-left corner of the full-resolution image, x right, y down",
                        timestamps=p.capture_ns / 1e9 if not series2d else series2d[0],
                        confidence=np.nan_to_num(p.keypoints[:, k, 2]).astype(np.float64),
                        confidence_definition=str(
                            p.meta.get("confidence", {}).get(group, "model confidence")
                        ),
                    )
                )
            per_camera.append(
                ndx_pose.PoseEstimation(
                    name=f"{group}_{cam}",
                    pose_estimation_series=series2d,
                    description=f"2D {group} keypoints in camera {cam}",
                    scorer=model_name,
                    source_software=str(p.meta.get("model", "unknown")),
                    source_software_version=str(p.meta.get("model_version", "")),
                    skeleton=skeleton,
                    device=devices[cam],
                    source_video=videos.get(cam),
                )
            )
        behavior.add(
            ndx_pose.MultiCameraPoseEstimation(
                name=f"pose3d_{group}",
                pose_estimation_series=series3d,
                pose_estimations=per_camera,
                description=f"3D {group} keypoints from {len(pose.cameras)} synchronized cameras",
                scorer=model_name,
                source_software="syncrig",
                source_software_version=str(manifest.software.get("version", "0.1.0")),
                skeleton=skeleton,
            )
        )
        if progress is not None:
            progress((gi + 1) / (len(groups) + 1), f"NWB: {group}")
    add_clock_maps(nwb, session)
    tmp = out.with_name(f".{out.stem}.tmp.nwb")
    with pynwb.NWBHDF5IO(str(tmp), "w") as io:
        io.write(nwb)
    tmp.replace(out)
    return out


CLOCK_MAP_COLUMNS = {
    "file": "the external recording",
    "format": "its format (openephys, spikeglx, intan, wav, csv)",
    "channel": "the channel that recorded SyncRig's TTL",
    "camera": "the camera whose TTL output it matched",
    "role": "which TTL signal matched (barcode, strobe, start)",
    "slope": "nwb_time_s = slope * external_s + offset_ns / 1e9",
    "offset_ns": "see slope",
    "pulses_matched": "TTL pulses matched",
    "residual_max_us": "largest |residual| over matched edges (µs)",
}


def add_clock_maps(nwb: pynwb.NWBFile, session: Path) -> int:
    """The session's sync/*.json maps as the `external_clocks` table (module `sync`); how many."""
    from hdmf.common import DynamicTable

    maps = [json.loads(p.read_text()) for p in SessionLayout(session).sync.maps()]
    if not maps:
        return 0
    table = DynamicTable(
        name="external_clocks",
        description="external recordings aligned to this session by syncrig align (TTL pulses): "
        "nwb_time_s = slope * external_seconds_since_file_start + offset_ns / 1e9",
    )
    for column, description in CLOCK_MAP_COLUMNS.items():
        table.add_column(column, description)
    for m in maps:
        row = {c: m[c] for c in CLOCK_MAP_COLUMNS if c != "residual_max_us"}
        table.add_row(**row, residual_max_us=m["residual_us"]["max"])
    module = nwb.create_processing_module("sync", "clock maps of other instruments' recordings")
    module.add(table)
    return len(maps)
