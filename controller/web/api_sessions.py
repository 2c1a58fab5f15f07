"""Sessions API: list, details, and freeing the cameras' copies once the desktop copy is safe."""

from __future__ import annotations

from flask import Blueprint, jsonify

from controller.jobs import JobContext
from controller.session.store import (
    delete_camera_copies,
    ensure_safe_to_delete,
    list_sessions,
    session_details,
    session_path,
)
from controller.web.helpers import json_body, runtime

bp = Blueprint("sessions", __name__, url_prefix="/api/sessions")


@bp.get("")
def sessions():  # noqa: ANN201
    """Every session in the sessions root, newest first, with its summary."""
    rt = runtime()
    return jsonify({"root": str(rt.sessions_root), "sessions": list_sessions(rt.sessions_root)})


@bp.get("/<session_id>")
def details(session_id: str):  # noqa: ANN201
    """One session: its manifest, per-camera frames and drops, footage verification, what exists."""
    rt = runtime()
    return jsonify(session_details(rt.sessions_root, session_id, rt.rig.cameras))


@bp.post("/<session_id>/delete-camera-copies")
def delete_copies(session_id: str):  # noqa: ANN201
    """Free the cameras' copies of a session, as a job, once every desktop copy checks out; the
    body's `confirm` must be the session id."""
    rt = runtime()
    session_path(rt.sessions_root, session_id)  # 404 before anything else
    confirm = json_body().get("confirm")
    if not isinstance(confirm, str):
        confirm = ""
    sources = rt.rig.transfer_sources()
    root = rt.sessions_root

    def run(ctx: JobContext) -> dict:
        ctx.progress(0.1, "checking the desktop copy")
        result = delete_camera_copies(root, session_id, sources, confirm)
        for cam, what in result["cameras"].items():
            ctx.log(f"{cam}: {what}")
        return result

    # An immediate, clear refusal from the ledger here; the job re-reads every file (SHA-256)
    # before deleting anything, so the request never waits on hashing a whole session.
    ensure_safe_to_delete(root, session_id, confirm, rehash=False)
    job = rt.jobs.submit("delete", f"Free camera copies of {session_id}", run)
    return jsonify({"job_id": job.id}), 202


@bp.post("/<session_id>/pull")
def pull(session_id: str):  # noqa: ANN201
    """Pull (again) every camera's raw files, verified against the Pi; resumes and gap-fills."""
    from controller.transfer.pull import pull_session

    rt = runtime()
    path = session_path(rt.sessions_root, session_id)
    sources = rt.rig.transfer_sources()

    def run(ctx: JobContext) -> dict:
        result = pull_session(path, sources, progress=ctx.progress)
        for cam, entry in result["cameras"].items():
            ctx.log(f"{cam}: {'verified' if entry.get('ok') else 'FAILED: ' + str(entry.get('error'))}")
        if not result["ok"]:
            raise RuntimeError("not every camera was pulled and verified; see the log")
        return result

    return jsonify({"job_id": rt.jobs.submit("pull", f"Pull {session_id}", run).id}), 202


@bp.post("/<session_id>/transcode")
def transcode(session_id: str):  # noqa: ANN201
    """An H.265 archive of every camera with its exact frame times (archive/<cam>.h265.mp4)."""
    from controller.pipeline.transcode import TranscodeError, transcode_session

    rt = runtime()
    path = session_path(rt.sessions_root, session_id)

    def run(ctx: JobContext) -> dict:
        try:
            return transcode_session(path, progress=ctx.progress)
        except TranscodeError as exc:
            raise RuntimeError(str(exc)) from None

    return jsonify({"job_id": rt.jobs.submit("transcode", f"H.265 archive of {session_id}", run).id}), 202
