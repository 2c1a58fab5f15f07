"""Sessions API: list, details, and freeing the cameras' copies once the desktop copy is safe."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..jobs import JobContext
from ..session_store import (
    delete_camera_copies,
    ensure_safe_to_delete,
    list_sessions,
    session_details,
    session_path,
)
from .helpers import json_body, runtime

bp = Blueprint("sessions", __name__, url_prefix="/api/sessions")


@bp.get("")
def sessions():  # noqa: ANN201
    rt = runtime()
    return jsonify({"root": str(rt.sessions_root), "sessions": list_sessions(rt.sessions_root)})


@bp.get("/<session_id>")
def details(session_id: str):  # noqa: ANN201
    rt = runtime()
    return jsonify(session_details(rt.sessions_root, session_id, rt.rig.cameras))


@bp.post("/<session_id>/delete-camera-copies")
def delete_copies(session_id: str):  # noqa: ANN201
    rt = runtime()
    session_path(rt.sessions_root, session_id)  # 404 before anything else
    confirm = json_body().get("confirm")
    if not isinstance(confirm, str):
        confirm = ""
    cameras = list(rt.rig.cameras)
    root = rt.sessions_root

    def run(ctx: JobContext) -> dict:
        ctx.progress(0.1, "checking the desktop copy")
        result = delete_camera_copies(root, session_id, cameras, confirm)
        for cam, what in result["cameras"].items():
            ctx.log(f"{cam}: {what}")
        return result

    # Checked here for an immediate, clear refusal, and again inside the job (it could change).
    ensure_safe_to_delete(root, session_id, confirm)
    job = rt.jobs.submit("delete", f"Free camera copies of {session_id}", run)
    return jsonify({"job_id": job.id}), 202
