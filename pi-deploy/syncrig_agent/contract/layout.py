"""Every path of a session directory, built here and nowhere else (the agent writes `raw/`, the
desktop everything else, so both sides import it from the shared contract).

```
<session>/session.json                     the manifest (formats.manifest)
<session>/transfer.json                    what the desktop holds of each camera's raw files (ledger)
<session>/raw/<cam>.h264, .pts, .frames.csv
                                           the agent's recording, pulled to the desktop
<session>/raw/<cam>.capture.json           the agent's capture report (on the Pi: beside raw/)
<session>/stream/<cam>_NNN.mkv             live-stream segments (receivers/segmenter.py)
<session>/stream/<cam>.h264, .frames.csv   the exact streamed packets and their frame table
<session>/stream/<cam>.receiver.json, .end.json, .ffmpeg.log
                                           receiver status, END seen, FFmpeg's log
<session>/stream/run/<cam>.ready.json, .receiver.log
                                           the receiver manager's hand-shake files and logs
<session>/archive/<cam>.h265.mp4, .pts, transcode.json
                                           the H.265 archive (pipeline/transcode.py)
<session>/synced/match.csv, report.json, plots/, verify.json
<session>/synced/<cam>.mp4, .pts, .map.csv synced outputs (`syncrig sync`): the frames everything uses;
                                           <cam>.pts = each frame's time, <cam>.map.csv = frame → match row
<session>/trimmed/<A>-<B>/<cam>.mp4, .pts, .map.csv, trim.json, verify.json
                                           match rows A..B (`syncrig trim`)
<session>/calibration/board.json           the ChArUco board spec the calibration was made with
<session>/calibration/detections/<cam>.npz board corners per camera per match row (detections.py)
<session>/calibration/calibration.toml     aniposelib schema ([cam_N] ..., [metadata] incl. the board)
<session>/calibration/Calib.toml           the same cameras in Pose2Sim's schema
<session>/calibration/report.json          reprojection errors, views used, solver figures
<session>/calibration/plots/               reprojection, coverage heat maps, 3D camera layout
<session>/pose2d/<cam>.npz                 2D keypoints (pose2d.py): frames × keypoints × (x px, y px,
                                           confidence), match row + capture time per frame, keypoint
                                           names, model + version; .<cam>.partial.npz while running
<session>/pose3d/points.npz                3D keypoints per match row (pose3d.py): mm, reprojection
                                           error, camera count, score, cameras used, row time
<session>/pose3d/report.json               triangulation quality per group, joint, bone and camera,
                                           drop causes, views excluded, the sample-count summary
<session>/pose3d/plots/                    bone lengths over time, coverage per joint per camera
<session>/exports/<session>.trc|.csv|.nwb  TRC (OpenSim), anipose pose-3d CSV, NWB + ndx-pose
<session>/ground_truth.json                simulated charuco sessions: true cameras, board, trajectory
<session>/process/<step>/<cam>/<chunk>.pkl `syncrig process`: one finished chunk's result (resumable
                                           state: not recomputed while its inputs are unchanged)
<session>/process/<step>.done.json         a finished whole-session step and the inputs it ran on
<session>/ttl/<cam>.out.csv, <cam>.in.csv  TTL edges the camera's agent sent / saw (formats/ttl.py);
                                           the agent writes them beside raw/, the pull copies them
<session>/sync/<stem>.json, <stem>.frames.csv
                                           `syncrig align`: an external recording's clock map onto the
                                           session, and every frame's time in that recording
```
Times are on the session's shared clock (ns since T0), so every camera's frames and the 3D rows
line up. A motion session is usually calibrated by another (calibration) session: commands take
`--calibration FILE` and default to the session's own `calibration/calibration.toml`.

Every path that names a camera validates the name first (ids.validate_camera_name), so no camera
name can point outside its folder. The file names and suffixes (`session.json`, `.pts`,
`.frames.csv`) are defined here too; the formats in `formats/` say what is inside the files.
"""

from __future__ import annotations

import re
from pathlib import Path

from syncrig_agent.contract.ids import validate_camera_name

MANIFEST_NAME = "session.json"
PTS_SUFFIX = ".pts"  # formats/pts.py: the frame times
FRAME_TABLE_SUFFIX = ".frames.csv"  # formats/frame_table.py: one row per recorded frame
RAW_DIR = "raw"
STREAM_DIR = "stream"
ARCHIVE_DIR = "archive"
SYNCED_DIR = "synced"
TRIMMED_DIR = "trimmed"
CALIBRATION_DIR = "calibration"
POSE2D_DIR = "pose2d"
POSE3D_DIR = "pose3d"
EXPORTS_DIR = "exports"
PROCESS_DIR = "process"
H264_SUFFIX = ".h264"
MP4_SUFFIX = ".mp4"
MAP_SUFFIX = ".map.csv"
VERIFY_NAME = "verify.json"
TTL_DIR = "ttl"
SYNC_DIR = "sync"
TTL_OUT_SUFFIX = ".out.csv"
TTL_IN_SUFFIX = ".in.csv"


def _camera_file(folder: Path, camera: str, suffix: str) -> Path:
    return folder / f"{validate_camera_name(camera)}{suffix}"


class RawFolder:
    """`raw/`: one camera's recording as the agent wrote it (the source of truth)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @staticmethod
    def file_names(camera: str) -> dict[str, str]:
        """The recording's file names by kind ("h264", "pts", "frames")."""
        camera = validate_camera_name(camera)
        return {
            "h264": camera + H264_SUFFIX,
            "pts": camera + PTS_SUFFIX,
            "frames": camera + FRAME_TABLE_SUFFIX,
        }

    def files(self, camera: str) -> dict[str, Path]:
        return {kind: self.path / name for kind, name in self.file_names(camera).items()}

    def video(self, camera: str) -> Path:
        return _camera_file(self.path, camera, H264_SUFFIX)

    def pts(self, camera: str) -> Path:
        return _camera_file(self.path, camera, PTS_SUFFIX)

    def frames(self, camera: str) -> Path:
        return _camera_file(self.path, camera, FRAME_TABLE_SUFFIX)

    def capture_report(self, camera: str) -> Path:
        """The desktop's copy of the agent's capture report (the Pi keeps it beside raw/)."""
        return _camera_file(self.path, camera, ".capture.json")

    def cameras(self) -> list[str]:
        """Cameras with a recorded video here, by name."""
        return sorted(p.name[: -len(H264_SUFFIX)] for p in self.path.glob(f"*{H264_SUFFIX}"))


class StreamFolder:
    """`stream/`: what the desktop's live-stream receivers wrote (receivers/)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def files(self, camera: str) -> dict[str, Path]:
        """The receiver's files by kind: "h264" (exact packets), "frames" (their frame table),
        "status" (kept current while receiving), "end" (written once the agent sent END)."""
        return {
            "h264": _camera_file(self.path, camera, H264_SUFFIX),
            "frames": _camera_file(self.path, camera, FRAME_TABLE_SUFFIX),
            "status": _camera_file(self.path, camera, ".receiver.json"),
            "end": _camera_file(self.path, camera, ".end.json"),
        }

    def cameras(self) -> list[str]:
        """Cameras with a streamed frame table here, by name."""
        return sorted(p.name[: -len(FRAME_TABLE_SUFFIX)] for p in self.path.glob(f"*{FRAME_TABLE_SUFFIX}"))

    def ffmpeg_log(self, camera: str) -> Path:
        return _camera_file(self.path, camera, ".ffmpeg.log")

    def segment_template(self, camera: str) -> Path:
        """FFmpeg's segment muxer pattern: `<cam>_NNN.mkv`, numbered from 000."""
        return _camera_file(self.path, camera, "_%03d.mkv")

    def segments(self, camera: str) -> dict[int, Path]:
        """The camera's segments by number."""
        pattern = re.compile(rf"{re.escape(validate_camera_name(camera))}_(\d+)\.mkv")
        found = {}
        for path in self.path.glob(f"{camera}_*.mkv"):
            if m := pattern.fullmatch(path.name):
                found[int(m.group(1))] = path
        return dict(sorted(found.items()))

    @property
    def run_dir(self) -> Path:
        """The receiver manager's own files (ready hand-shakes, receiver logs)."""
        return self.path / "run"

    def ready_file(self, camera: str) -> Path:
        return _camera_file(self.run_dir, camera, ".ready.json")

    def receiver_log(self, camera: str) -> Path:
        return _camera_file(self.run_dir, camera, ".receiver.log")


class ArchiveFolder:
    """`archive/`: the H.265 archive of every camera with its exact frame times."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def video(self, camera: str) -> Path:
        return _camera_file(self.path, camera, ".h265.mp4")

    def pts(self, camera: str) -> Path:
        return _camera_file(self.path, camera, PTS_SUFFIX)

    @property
    def summary(self) -> Path:
        return self.path / "transcode.json"


class OutputFolder:
    """An output folder of the pipeline (synced/ or trimmed/<A>-<B>/): per camera `<cam>.mp4` with
    its `<cam>.pts` (the output's timestamps) and `<cam>.map.csv` (output frame → match row)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def video(self, camera: str) -> Path:
        return _camera_file(self.path, camera, MP4_SUFFIX)

    def pts(self, camera: str) -> Path:
        return _camera_file(self.path, camera, PTS_SUFFIX)

    def map(self, camera: str) -> Path:
        return _camera_file(self.path, camera, MAP_SUFFIX)

    def files(self, camera: str) -> dict[str, Path]:
        """By kind: "mp4", "pts", "map"."""
        return {"mp4": self.video(camera), "pts": self.pts(camera), "map": self.map(camera)}

    @property
    def verify_report(self) -> Path:
        """What `syncrig verify` read from the pictures."""
        return self.path / VERIFY_NAME


class SyncedFolder(OutputFolder):
    """`synced/`: the match table, its report and plots, and every camera's synced output."""

    @property
    def match_csv(self) -> Path:
        return self.path / "match.csv"

    @property
    def report(self) -> Path:
        return self.path / "report.json"

    @property
    def plots(self) -> Path:
        return self.path / "plots"


class TrimFolder(OutputFolder):
    """`trimmed/<A>-<B>/`: match rows A..B (inclusive) of every camera, with its trim.json."""

    @staticmethod
    def name_for(start_row: int, end_row: int) -> str:
        return f"{int(start_row)}-{int(end_row)}"

    @property
    def trim_json(self) -> Path:
        return self.path / "trim.json"


class TtlFolder:
    """`ttl/`: the TTL edges each camera's agent sent (`<cam>.out.csv`) and saw (`<cam>.in.csv`)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def out_csv(self, camera: str) -> Path:
        return _camera_file(self.path, camera, TTL_OUT_SUFFIX)

    def in_csv(self, camera: str) -> Path:
        return _camera_file(self.path, camera, TTL_IN_SUFFIX)

    def files(self, camera: str) -> dict[str, Path]:
        """By kind: "out", "in"."""
        return {"out": self.out_csv(camera), "in": self.in_csv(camera)}

    def out_files(self) -> dict[str, Path]:
        """Every camera's out table present, by camera name."""
        found = sorted(self.path.glob(f"*{TTL_OUT_SUFFIX}"))
        return {p.name[: -len(TTL_OUT_SUFFIX)]: p for p in found}


class SyncFolder:
    """`sync/`: external recordings aligned to the session (`syncrig align`), by the file's stem."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @staticmethod
    def _stem(stem: str) -> str:
        if not stem or "/" in stem or "\\" in stem or stem.startswith("."):
            raise ValueError(f"not a usable file stem for sync/: {stem!r}")
        return stem

    def map_json(self, stem: str) -> Path:
        return self.path / f"{self._stem(stem)}.json"

    def frames_csv(self, stem: str) -> Path:
        return self.path / f"{self._stem(stem)}{FRAME_TABLE_SUFFIX}"

    def maps(self) -> list[Path]:
        return sorted(self.path.glob("*.json"))


class SessionLayout:
    """Where everything of one session lives, from its root directory. Paths only: nothing is
    read, written or created here."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"SessionLayout({str(self.root)!r})"

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def transfer_ledger(self) -> Path:
        return self.root / "transfer.json"

    # -- recording --------------------------------------------------------------------------------
    @property
    def raw(self) -> RawFolder:
        return RawFolder(self.root / RAW_DIR)

    def agent_capture_report(self, camera: str) -> Path:
        """Where the agent writes its capture report, beside raw/ (pull copies it into raw/)."""
        return _camera_file(self.root, camera, ".capture.json")

    @property
    def ttl(self) -> TtlFolder:
        return TtlFolder(self.root / TTL_DIR)

    @property
    def sync(self) -> SyncFolder:
        return SyncFolder(self.root / SYNC_DIR)

    @property
    def stream(self) -> StreamFolder:
        return StreamFolder(self.root / STREAM_DIR)

    @property
    def archive(self) -> ArchiveFolder:
        return ArchiveFolder(self.root / ARCHIVE_DIR)

    # -- pipeline outputs -------------------------------------------------------------------------
    @property
    def synced(self) -> SyncedFolder:
        return SyncedFolder(self.root / SYNCED_DIR)

    @property
    def trimmed(self) -> Path:
        """The folder holding every trim."""
        return self.root / TRIMMED_DIR

    def trim(self, start_row: int, end_row: int) -> TrimFolder:
        return TrimFolder(self.trimmed / TrimFolder.name_for(start_row, end_row))

    def trims(self) -> list[TrimFolder]:
        """Every trim folder present, by name (hidden ones, i.e. trims being written, left out)."""
        if not self.trimmed.is_dir():
            return []
        return [
            TrimFolder(p) for p in sorted(self.trimmed.iterdir()) if p.is_dir() and not p.name.startswith(".")
        ]

    def output_label(self, folder: OutputFolder) -> str:
        """An output folder's name relative to the session ("synced", "trimmed/0-99")."""
        return folder.path.relative_to(self.root).as_posix()

    # -- dataset: calibration, pose, exports --------------------------------------------------------
    @property
    def calibration_dir(self) -> Path:
        return self.root / CALIBRATION_DIR

    @property
    def board_file(self) -> Path:
        return self.calibration_dir / "board.json"

    def detections_file(self, camera: str) -> Path:
        return _camera_file(self.calibration_dir / "detections", camera, ".npz")

    @property
    def calibration_toml(self) -> Path:
        return self.calibration_dir / "calibration.toml"

    @property
    def pose2sim_toml(self) -> Path:
        return self.calibration_dir / "Calib.toml"

    @property
    def calibration_report(self) -> Path:
        return self.calibration_dir / "report.json"

    @property
    def calibration_plots(self) -> Path:
        return self.calibration_dir / "plots"

    @property
    def pose2d_dir(self) -> Path:
        return self.root / POSE2D_DIR

    def pose2d_file(self, camera: str) -> Path:
        return _camera_file(self.pose2d_dir, camera, ".npz")

    def pose2d_partial(self, camera: str) -> Path:
        """pose2d_file while it is being estimated (renamed onto it when complete)."""
        return self.pose2d_dir / f".{validate_camera_name(camera)}.partial.npz"

    @property
    def pose3d_file(self) -> Path:
        return self.root / POSE3D_DIR / "points.npz"

    @property
    def pose3d_report(self) -> Path:
        return self.root / POSE3D_DIR / "report.json"

    @property
    def pose3d_plots(self) -> Path:
        return self.root / POSE3D_DIR / "plots"

    @property
    def exports_dir(self) -> Path:
        return self.root / EXPORTS_DIR

    def export_file(self, suffix: str) -> Path:
        """`exports/<session>.<suffix>` (the session's resolved directory name)."""
        return self.exports_dir / f"{self.root.resolve().name}{suffix}"

    @property
    def ground_truth_file(self) -> Path:
        """A simulated session's ground truth (syncrig_agent.sim.charuco_sim.scene_description)."""
        return self.root / "ground_truth.json"

    # -- `syncrig process` (controller/cluster): resumable state of a run ---------------------------
    @property
    def process_dir(self) -> Path:
        return self.root / PROCESS_DIR

    def process_chunk(self, step: str, camera: str, chunk: int) -> Path:
        """One finished chunk of a per-camera step (`step`: a pipeline step name, lower-case)."""
        if not re.fullmatch(r"[a-z0-9]+", step):
            raise ValueError(f"step name {step!r}: expected lower-case letters and digits")
        return self.process_dir / step / validate_camera_name(camera) / f"{int(chunk):05d}.pkl"

    def process_step_done(self, step: str) -> Path:
        """A finished whole-session step, with the signature of the inputs it ran on."""
        if not re.fullmatch(r"[a-z0-9]+", step):
            raise ValueError(f"step name {step!r}: expected lower-case letters and digits")
        return self.process_dir / f"{step}.done.json"
