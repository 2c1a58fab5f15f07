"""Calibration of every camera of a session from a ChArUco board: detect (detect.py), choose
views, intrinsics, initial extrinsics, bundle adjustment, world frame on the board; writes
calibration.toml (aniposelib), Calib.toml (Pose2Sim), report.json and plots.

    calibrate_session(session, spec)            the whole stage on a synced session directory
    calibrate_cameras(detections, spec, opts)   the maths, from detections (what tests feed)
"""

from __future__ import annotations

from pathlib import Path

from controller.dataset.board.detections import CameraDetections
from controller.dataset.board.spec import BoardSpec, BoardSpecError
from controller.dataset.calibrate.errors import CalibrationError
from controller.dataset.calibrate.solve import CalibrationOptions, CalibrationResult, calibrate_cameras
from controller.progress import Progress
from controller.session.synced import NotSynced, synced_cameras
from syncrig_agent.contract.formats.atomic import write_json_atomic
from syncrig_agent.contract.layout import SessionLayout

__all__ = [
    "CalibrationError",
    "CalibrationOptions",
    "CalibrationResult",
    "calibrate_cameras",
    "calibrate_session",
    "resolve_board",
    "session_board",
]


def session_board(session: Path) -> BoardSpec | None:
    """A session's own board: the spec stored with its detections (calibration/board.json), else
    the board of the simulated scene it filmed (ground_truth.json), else None. BoardSpecError when
    the stored spec is unreadable."""
    layout = SessionLayout(session)
    if layout.board_file.is_file():
        return BoardSpec.load(layout.board_file)
    if layout.ground_truth_file.is_file():
        from controller.dataset.ground_truth import load_ground_truth

        try:
            return load_ground_truth(layout.ground_truth_file).board
        except ValueError:
            return None
    return None


def resolve_board(session: Path, spec: BoardSpec | None) -> BoardSpec:
    """The spec given, else the session's own (session_board)."""
    if spec is not None:
        return spec.validate()
    try:
        stored = session_board(session)
    except BoardSpecError as exc:
        raise CalibrationError(str(exc)) from None
    if stored is not None:
        return stored
    raise CalibrationError(
        "no board spec: pass --board board.json or the board's flags (--squares COLSxROWS, "
        "--square-mm, --marker-mm, --dictionary) the way it was printed"
    )


def _stored_detections(
    session: Path, cameras: list[str], spec: BoardSpec
) -> dict[str, CameraDetections] | None:
    """The detections already in the session, if they were made with this very board spec."""
    stored = SessionLayout(session).board_file
    try:
        if not stored.is_file() or BoardSpec.load(stored) != spec:
            return None
    except BoardSpecError:
        return None
    layout = SessionLayout(session)
    files = {name: layout.detections_file(name) for name in cameras}
    if not all(f.is_file() for f in files.values()):
        return None
    return {name: CameraDetections.load(f) for name, f in files.items()}


def calibrate_session(
    session: Path,
    spec: BoardSpec | None = None,
    options: CalibrationOptions | None = None,
    progress: Progress | None = None,
    redetect: bool = False,
) -> dict:
    """Detect the board in the synced outputs (or reuse detections made with the same spec),
    calibrate, and write calibration.toml, Calib.toml, report.json and plots; returns the report."""
    from controller.dataset.calibrate.outputs import write_outputs
    from controller.dataset.calibrate.plots import write_plots

    session = Path(session)
    progress = progress or (lambda fraction, label: None)
    if not session.is_dir():
        raise CalibrationError(f"{session} is not a session directory")
    try:
        cameras = synced_cameras(session)
    except NotSynced as exc:
        raise CalibrationError(str(exc)) from None
    spec = resolve_board(session, spec)
    detections = None if redetect else _stored_detections(session, cameras, spec)
    if detections is None:
        try:
            from controller.dataset.board.detect import DetectionError, detect_session
        except ImportError:
            raise CalibrationError(
                "no stored detections for this board spec and board detection "
                "(controller.dataset.board.detect) is not available in this installation"
            ) from None

        progress(0.0, "detecting the board")
        try:
            found = detect_session(
                session,
                spec,
                progress=lambda done, total: progress(0.5 * done / max(total, 1), "detecting the board"),
            )
        except DetectionError as exc:  # a board that does not fit the spec, or none at all
            raise CalibrationError(f"board detection: {exc}") from None
        missing = [c for c in cameras if c not in found]
        if missing:
            raise CalibrationError(f"no detections for camera(s) {', '.join(missing)}")
        detections = {c: found[c] for c in cameras}
    progress(0.5, "calibrating")
    result = calibrate_cameras(
        detections, spec, options, progress=lambda f, label: progress(0.5 + 0.4 * f, label)
    )
    progress(0.9, "writing outputs")
    report = write_outputs(session, result)
    progress(0.95, "plots")
    layout = SessionLayout(session)
    report["plots"] = write_plots(result, layout.calibration_plots)
    write_json_atomic(layout.calibration_report, report)
    progress(1.0, "calibration written")
    return report
