"""Server-rendered pages (one template per tab); live data comes from the API and the event stream."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, send_from_directory

from controller.session.create import ID_WARNINGS
from controller.session.store import session_path
from controller.web.helpers import runtime

bp = Blueprint("pages", __name__)

# (endpoint, label) in tab order.
TABS = [
    ("pages.record", "Record"),
    ("pages.preflight", "Pre-flight"),
    ("pages.preview", "Preview"),
    ("pages.sessions", "Sessions"),
    ("pages.sync", "Sync"),
    ("pages.trim", "Trim"),
    ("pages.calibration", "Calibration"),
    ("pages.settings", "Settings"),
    ("pages.logs", "Logs"),
    ("schedule_pages.schedules", "Schedules"),  # web/api_schedules.py
    ("openapi.docs", "API"),  # web/openapi.py
]


@bp.app_context_processor
def _globals() -> dict:
    rt = runtime()
    return {"tabs": TABS, "rig_name": rt.config.server.host, "demo": rt.apply_settings is not None}


@bp.get("/")
def record():  # noqa: ANN201
    return render_template("record.html", page="record", fps=runtime().config.fps, id_warnings=ID_WARNINGS)


@bp.get("/favicon.ico")
def favicon():  # noqa: ANN201
    """Browsers ask for /favicon.ico whatever the page links: the icon, not a 404 on every page."""
    static = current_app.static_folder
    return send_from_directory(static, "favicon.svg", mimetype="image/svg+xml", max_age=86400)


@bp.get("/preflight")
def preflight():  # noqa: ANN201
    return render_template("preflight.html", page="preflight")


@bp.get("/preview")
def preview():  # noqa: ANN201
    return render_template("preview.html", page="preview")


@bp.get("/sessions")
def sessions():  # noqa: ANN201
    return render_template("sessions.html", page="sessions", root=str(runtime().sessions_root))


@bp.get("/sessions/<session_id>")
def session(session_id: str):  # noqa: ANN201
    session_path(runtime().sessions_root, session_id)  # 404 for unknown or malformed ids
    return render_template("session.html", page="session", session_id=session_id)


@bp.get("/settings")
def settings():  # noqa: ANN201
    return render_template("settings.html", page="settings")


@bp.get("/logs")
def logs():  # noqa: ANN201
    cams = [c.name for c in runtime().rig.cameras]
    return render_template("logs.html", page="logs", cameras=cams)


@bp.get("/sync")
def sync():  # noqa: ANN201
    return render_template("sync.html", page="sync")


@bp.get("/trim")
def trim():  # noqa: ANN201
    return render_template("trim.html", page="trim")


@bp.get("/calibration")
def calibration():  # noqa: ANN201
    from controller.dataset.board.spec import DICTIONARIES

    return render_template("calibration.html", page="calibration", dictionaries=DICTIONARIES)
