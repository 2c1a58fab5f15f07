"""Calibration API: calibrating a session is a job (detection + bundle adjustment take a while);
the report, its plots and the two calibration files are served from the session's folder."""

from __future__ import annotations

import json
import re
from operator import attrgetter

from flask import Blueprint, jsonify, send_file

from controller.dataset.board.spec import BoardSpec, BoardSpecError
from controller.dataset.calibrate import CalibrationError, CalibrationOptions, calibrate_session
from controller.jobs import JobContext
from controller.rig.service import RigError
from controller.session.store import session_path
from controller.web.helpers import FormError, json_body, runtime
from syncrig_agent.contract.layout import SessionLayout

bp = Blueprint("calibration", __name__, url_prefix="/api/sessions/<session_id>/calibration")

# Plot names are fixed or a validated camera name; nothing else reaches the file system.
PLOT_NAME = re.compile(r"^(reprojection|layout|coverage_[A-Za-z0-9][A-Za-z0-9_-]{0,63})\.(png|svg)$")
DOWNLOADS = {"calibration.toml": attrgetter("calibration_toml"), "Calib.toml": attrgetter("pose2sim_toml")}


def _board(data: dict) -> BoardSpec | None:
    board = data.get("board")
    if board is None:
        return None
    try:
        return BoardSpec.from_dict(board)
    except (BoardSpecError, TypeError) as exc:
        raise FormError(f"board: {exc}", "board") from None


def _options(data: dict) -> CalibrationOptions:
    fisheye = data.get("fisheye", False)
    if not isinstance(fisheye, bool):
        raise FormError("fisheye: must be true or false", "fisheye")
    ref = data.get("reference_row")
    if ref is not None and (isinstance(ref, bool) or not isinstance(ref, int) or ref < 0):
        message = f"reference_row: must be a match row (an integer >= 0), got {ref!r}"
        raise FormError(message, "reference_row")
    return CalibrationOptions(fisheye=fisheye, reference_row=ref)


@bp.post("")
def calibrate(session_id: str):  # noqa: ANN201
    """Calibrate every camera from the session's ChArUco board views, as a job."""
    path = session_path(runtime().sessions_root, session_id)
    data = json_body()
    spec, options = _board(data), _options(data)
    redetect = data.get("redetect", False)
    if not isinstance(redetect, bool):
        raise FormError("redetect: must be true or false", "redetect")

    def work(ctx: JobContext) -> dict:
        try:
            report = calibrate_session(path, spec, options, progress=ctx.progress, redetect=redetect)
        except (CalibrationError, BoardSpecError) as exc:
            raise RuntimeError(str(exc)) from None
        ctx.log(f"reprojection error mean {report['reprojection_px']['mean']:.3f} px")
        return {"session_id": session_id, "reprojection_px": report["reprojection_px"]}

    job = runtime().jobs.submit("calibrate", f"Calibrate {session_id}", work)
    return jsonify({"job_id": job.id}), 202


@bp.get("/report")
def report(session_id: str):  # noqa: ANN201
    """The calibration report (reprojection errors per camera, coverage); 404 before Calibrate."""
    path = SessionLayout(session_path(runtime().sessions_root, session_id)).calibration_report
    if not path.is_file():
        raise RigError("not calibrated yet: run Calibrate first", 404)
    return jsonify(json.loads(path.read_text(encoding="utf-8")))


@bp.get("/board")
def board(session_id: str):  # noqa: ANN201
    """The session's own board (stored with its detections, or the simulated scene's), else the
    defaults (the demo's board), to fill the form: the same default as `syncrig calibrate`."""
    from controller.dataset.calibrate import session_board

    try:
        own = session_board(session_path(runtime().sessions_root, session_id))
    except BoardSpecError:
        own = None
    return jsonify({"board": (own or BoardSpec()).as_dict(), "stored": own is not None})


@bp.get("/plots/<name>")
def plot(session_id: str, name: str):  # noqa: ANN201
    """One calibration plot (PNG/SVG) by name."""
    if not PLOT_NAME.match(name):
        raise RigError(f"no plot named {name!r}", 404)
    path = SessionLayout(session_path(runtime().sessions_root, session_id)).calibration_plots / name
    if not path.is_file():
        raise RigError("no such plot: run Calibrate first", 404)
    return send_file(path, max_age=0)


@bp.get("/files/<name>")
def download(session_id: str, name: str):  # noqa: ANN201
    """Download calibration.toml (aniposelib) or Calib.toml (Pose2Sim)."""
    if name not in DOWNLOADS:
        raise RigError(f"no file named {name!r}", 404)
    path = DOWNLOADS[name](SessionLayout(session_path(runtime().sessions_root, session_id)))
    if not path.is_file():
        raise RigError("not calibrated yet: run Calibrate first", 404)
    return send_file(path, mimetype="application/toml", as_attachment=True, download_name=name, max_age=0)
