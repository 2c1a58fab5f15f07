"""The controller's web UI: a Flask app factory over a `ControllerRuntime`, one blueprint per
area. Handlers only read snapshots or submit jobs; nothing here waits on the network or FFmpeg."""

from __future__ import annotations

import secrets
from pathlib import Path

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from controller.rig.config import ConfigError
from controller.rig.service import RigError
from controller.runtime import ControllerRuntime
from controller.session.store import SessionNotFound, UnsafeToDelete
from controller.web.helpers import FormError
from controller.web.security import LOCAL_HOSTS, install_guards

PACKAGE_DIR = Path(__file__).resolve().parent


def create_app(
    runtime: ControllerRuntime,
    *,
    access_token: str | None = None,
    allowed_hosts: frozenset[str] | set[str] | None = LOCAL_HOSTS,
    secret_key: bytes | None = None,
) -> Flask:
    app = Flask(
        "controller",
        template_folder=str(PACKAGE_DIR / "templates"),
        static_folder=str(PACKAGE_DIR / "static"),
    )
    app.config.update(
        SECRET_KEY=secret_key or secrets.token_bytes(32),
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_HTTPONLY=True,
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    app.extensions["syncrig"] = runtime
    install_guards(app, access_token, set(allowed_hosts) if allowed_hosts is not None else None)

    from controller.web.api_calibration import bp as calibration_bp
    from controller.web.api_jobs import bp as jobs_bp
    from controller.web.api_pipeline import bp as pipeline_bp
    from controller.web.api_process import bp as process_bp
    from controller.web.api_rig import bp as rig_bp
    from controller.web.api_schedules import bp as schedules_bp
    from controller.web.api_schedules import page_bp as schedule_pages_bp
    from controller.web.api_sessions import bp as sessions_bp
    from controller.web.api_settings import bp as settings_bp
    from controller.web.openapi import bp as openapi_bp
    from controller.web.pages import bp as pages_bp

    blueprints = (
        pages_bp,
        rig_bp,
        sessions_bp,
        settings_bp,
        jobs_bp,
        pipeline_bp,
        calibration_bp,
        process_bp,
    )
    for bp in blueprints:
        app.register_blueprint(bp)
    for bp in (schedules_bp, schedule_pages_bp, openapi_bp):  # issue 17: schedules, the API's description
        app.register_blueprint(bp)

    def api_error(message: str, status: int, field: str | None = None):  # noqa: ANN202
        """JSON for the API (`{"error", "field"}`), an HTML page for a page URL: a person who
        follows a stale link reads what went wrong in words, with the tabs to go on from."""
        if not request.path.startswith("/api/"):
            return render_template("error.html", page="error", status=status, message=message), status
        body = {"error": message}
        if field:
            body["field"] = field
        return jsonify(body), status

    @app.errorhandler(FormError)
    def _form_error(exc: FormError):  # noqa: ANN202
        return api_error(str(exc), exc.status, exc.field)

    @app.errorhandler(RigError)
    def _rig_error(exc: RigError):  # noqa: ANN202
        return api_error(str(exc), exc.status, exc.field)

    @app.errorhandler(ConfigError)
    def _config_error(exc: ConfigError):  # noqa: ANN202
        message = str(exc)
        field = message.split(":", 1)[0] if ":" in message else None
        return api_error(message, 400, field)

    @app.errorhandler(SessionNotFound)
    def _not_found(exc: SessionNotFound):  # noqa: ANN202
        return api_error(str(exc), 404)

    @app.errorhandler(UnsafeToDelete)
    def _unsafe(exc: UnsafeToDelete):  # noqa: ANN202
        return api_error(str(exc), 409)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # noqa: ANN202
        if exc.code is not None and exc.code < 400:
            return exc  # redirects and the like are not errors
        return api_error(exc.description or exc.name, exc.code or 500)

    return app
