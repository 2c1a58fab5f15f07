"""Jobs API and the server-sent event stream every page listens to."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, stream_with_context

from controller.rig.service import RigError
from controller.web.helpers import runtime

bp = Blueprint("jobs", __name__, url_prefix="/api")


@bp.get("/jobs")
def jobs():  # noqa: ANN201
    kind = request.args.get("kind") or None
    return jsonify({"jobs": [j.to_dict() for j in runtime().jobs.list(kind)]})


@bp.get("/jobs/<job_id>")
def job(job_id: str):  # noqa: ANN201
    found = runtime().jobs.get(job_id)
    if found is None:
        raise RigError(f"no job {job_id!r}", 404)
    return jsonify(found.to_dict(with_log=True))


@bp.post("/jobs/<job_id>/cancel")
def cancel(job_id: str):  # noqa: ANN201
    jobs = runtime().jobs
    found = jobs.get(job_id)
    if found is None:
        raise RigError(f"no job {job_id!r}", 404)
    if found.active and not found.cancellable:
        raise RigError(f"{found.title}: cannot be cancelled half-way; wait for it to finish", 409)
    if not jobs.cancel(job_id):
        raise RigError(f"job {job_id!r} is not running", 409)
    return jsonify({"cancelled": job_id})


@bp.get("/events")
def events() -> Response:
    rt = runtime()
    sub = rt.bus.subscribe()
    # The first event is the current state, so a page never starts blank.
    sub.offer((0, "status", rt.rig.snapshot()))
    response = Response(stream_with_context(sub.sse()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"
    return response
