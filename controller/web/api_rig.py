"""Rig API: status, pre-flight, start/stop, preview URLs, camera logs."""

from __future__ import annotations

import time

from flask import Blueprint, jsonify

from controller.rig.service import RigError
from controller.session.create import missing_id_warnings
from controller.web.helpers import FormError, json_body, optional_number, runtime

bp = Blueprint("rig", __name__, url_prefix="/api")

# Preview URLs carry a signed token valid this long; the page asks for fresh ones on reload.
PREVIEW_TOKEN_S = 3600


@bp.get("/status")
def status():  # noqa: ANN201
    """The rig as the last poll saw it: cam0's link, the recording (state, session, elapsed) and
    one card per camera. Never waits on the network."""
    return jsonify(runtime().rig.snapshot())


@bp.post("/preflight")
def preflight():  # noqa: ANN201
    """Run the pre-flight checks as a job (clock offsets, disk for `seconds`, temperature).
    ---
    post:
      requestBody:
        content:
          application/json:
            schema:
              type: object
              properties:
                seconds: {type: number, nullable: true, description: planned duration (default 1 h)}
      responses:
        202:
          description: the job
          content:
            application/json:
              schema: {$ref: '#/components/schemas/JobStarted'}
    """
    data = json_body()
    job_id = runtime().rig.submit_preflight(optional_number(data, "seconds"))
    return jsonify({"job_id": job_id}), 202


@bp.get("/preflight")
def last_preflight():  # noqa: ANN201
    """The last pre-flight result ({} before the first)."""
    return jsonify(runtime().rig.last_preflight or {})


@bp.post("/recording/start")
def start_recording():  # noqa: ANN201
    """Start a recording as a job: pre-flight, START on cam0, live streams; at the planned end (or
    Stop) STOP, pull and verify. The job's result names the session.
    ---
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              properties:
                seconds: {type: number, nullable: true, description: duration (none - until Stop)}
                subject: {type: string, nullable: true}
                project: {type: string, nullable: true}
                override: {type: boolean, description: record even when the pre-flight fails}
      responses:
        202:
          description: the recording's job
          content:
            application/json:
              schema: {$ref: '#/components/schemas/JobStarted'}
        400:
          description: a field is wrong (named in `field`)
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
        409:
          description: the rig is busy (already recording, settings being applied)
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
    """
    data = json_body()
    override = data.get("override", False)
    if not isinstance(override, bool):
        raise FormError("override: must be true or false", "override")
    subject, project = data.get("subject"), data.get("project")
    for name, value in (("subject", subject), ("project", project)):
        if value is not None and not isinstance(value, str):
            raise FormError(f"{name}: must be text", name)
    exclude = data.get("exclude") or []
    if not isinstance(exclude, list) or not all(isinstance(n, str) for n in exclude):
        raise FormError("exclude: must be a list of camera names", "exclude")
    seconds = optional_number(data, "seconds")
    job_id = runtime().rig.start_recording(subject, project, seconds, override, exclude)
    return jsonify({"job_id": job_id, "warnings": missing_id_warnings(subject, project)}), 202


@bp.post("/cameras/<camera>/restart")
def restart_camera(camera: str):  # noqa: ANN201
    """Restart one camera's agent (simulation: its process; a rig: systemd through the sudoers
    rule deploy installed)."""
    return jsonify({"job_id": runtime().restart_camera(camera)}), 202


@bp.post("/recording/stop")
def stop_recording():  # noqa: ANN201
    """Stop the recording in progress now; its job collects the files.
    ---
    post:
      responses:
        202:
          description: the recording's job
          content:
            application/json:
              schema: {$ref: '#/components/schemas/JobStarted'}
        409:
          description: nothing is recording
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
    """
    return jsonify({"job_id": runtime().rig.stop_recording()}), 202


@bp.get("/preview")
def preview_urls():  # noqa: ANN201
    """Signed MJPEG URLs, one per camera that runs a preview server (the browser loads them
    directly from the agents; the token proves the controller sent it there)."""
    from syncrig_agent.preview.token import make_preview_token

    rt = runtime()
    expires = int(time.time()) + PREVIEW_TOKEN_S
    out = []
    for card in rt.rig.snapshot()["cameras"]:
        preview = card.get("preview") or {}
        entry = {"camera": card["name"], "online": card.get("online", False), "available": False}
        if card.get("online") and preview.get("port"):
            token = make_preview_token(rt.secret, card["name"], expires)
            base = f"http://{_url_host(card['host'])}:{preview['port']}"
            query = f"expires={expires}&token={token}"
            entry.update(
                available=bool(preview.get("available", True)),
                stream=f"{base}{preview.get('path', '/stream.mjpg')}?{query}",
                snapshot=f"{base}/snapshot.jpg?{query}",
                recording=card.get("state") == "recording",
                reason=preview.get("reason"),
            )
        out.append(entry)
    return jsonify({"cameras": out, "expires": expires})


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@bp.get("/logs/<camera>")
def camera_logs(camera: str):  # noqa: ANN201
    """The camera's log lines as last fetched (POST fetches fresh ones)."""
    rig = runtime().rig
    if camera not in {c.name for c in rig.cameras}:
        raise RigError(f"unknown camera {camera!r}", 404, "camera")
    return jsonify({"camera": camera, **rig.camera_logs.get(camera, {"lines": [], "fetched_at": None})})


@bp.post("/logs/<camera>")
def refresh_camera_logs(camera: str):  # noqa: ANN201
    """Fetch the camera's recent log over the control link, as a job."""
    return jsonify({"job_id": runtime().rig.fetch_logs(camera)}), 202
