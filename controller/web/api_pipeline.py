"""Sync and Trim API: analysis, synced outputs, verification and trims run as jobs (they read and
write video); the scrubber's single-frame preview decodes one GOP in-process with PyAV."""

from __future__ import annotations

import json

from flask import Blueprint, Response, jsonify, send_file

from controller.jobs import JobContext
from controller.pipeline import (
    SessionError,
    TrimError,
    delete_trim,
    describe_row,
    preview_jpeg,
    trim_session,
    verify_session,
)
from controller.pipeline.outputs import FILL_MODES
from controller.pipeline.sync import ANALYZING, WRITING_OUTPUTS, SyncRequest, check_tolerance_us, sync_session
from controller.progress import Progress
from controller.rig.service import RigError
from controller.session.store import session_path
from controller.web.helpers import FormError, json_body, optional_number, runtime
from syncrig_agent.contract.layout import SessionLayout

bp = Blueprint("pipeline", __name__, url_prefix="/api/sessions/<session_id>")

PLOT_FILES = {"offsets.svg", "offsets.png", "drops.svg", "drops.png"}


def _fill(data: dict, default: str) -> str:
    fill = data.get("fill", default)
    if fill not in FILL_MODES:
        raise FormError(f"fill: must be one of {', '.join(FILL_MODES)}, got {fill!r}", "fill")
    return fill


def _row(value: object, name: str) -> int:
    if value is None or value == "":
        # Never a silent default: an empty field once made every trim 0-0.
        raise FormError(f"{name}: required: the match row the trim {name}s at (an integer >= 0)", name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormError(f"{name}: must be a match row (an integer >= 0), got {value!r}", name)
    return value


def _pipeline_job(kind: str, title: str, work) -> str:  # noqa: ANN001
    """Pipeline errors (bad session, bad range) fail the job with their message."""

    def run(ctx: JobContext) -> dict:
        try:
            return work(ctx)
        except (SessionError, TrimError) as exc:
            raise RuntimeError(str(exc)) from None

    return runtime().jobs.submit(kind, title, run).id


# The Sync job's one progress bar: analysis takes its first 40 %, the synced outputs the rest.
SYNC_JOB_SPANS = {ANALYZING: (0.0, 0.4), WRITING_OUTPUTS: (0.4, 1.0)}


def _job_stage(ctx: JobContext, stage: str) -> Progress:
    start, end = SYNC_JOB_SPANS[stage]
    return lambda fraction, label: ctx.progress(start + (end - start) * fraction, label)


@bp.post("/sync")
def sync(session_id: str):  # noqa: ANN201
    path = session_path(runtime().sessions_root, session_id)
    data = json_body()
    tolerance_us = optional_number(data, "tolerance_us")
    try:
        check_tolerance_us(path, tolerance_us)  # in µs, as the field: the matcher counts in ns
    except ValueError as exc:
        raise FormError(str(exc), "tolerance_us") from None
    fill = _fill(data, "gaps")
    outputs = data.get("outputs", True)
    if not isinstance(outputs, bool):
        raise FormError("outputs: must be true or false", "outputs")

    sync_request = SyncRequest(tolerance_us=tolerance_us, fill=fill, outputs=outputs)

    def work(ctx: JobContext) -> dict:
        result = sync_session(path, sync_request, lambda stage, _session: _job_stage(ctx, stage))
        ctx.log(f"verdict: {result.report['verdict']}")
        if outputs:
            written = result.report["outputs"]
            ctx.log(f"synced outputs: {json.dumps(written.get('cameras', {}), default=str)[:500]}")
        return {"session_id": session_id, "verdict": result.report["verdict"]}

    return jsonify({"job_id": _pipeline_job("sync", f"Sync {session_id}", work)}), 202


@bp.get("/sync/report")
def report(session_id: str):  # noqa: ANN201
    layout = SessionLayout(session_path(runtime().sessions_root, session_id))
    path = layout.synced.report
    if not path.is_file():
        raise RigError("not analysed yet: run Sync first", 404)
    data = json.loads(path.read_text(encoding="utf-8"))
    # `syncrig verify` leaves a verify.json in synced/ and in each trim's folder.
    found = {layout.output_label(f): f.verify_report for f in [layout.synced, *layout.trims()]}
    outputs = {k: json.loads(v.read_text(encoding="utf-8")) for k, v in found.items() if v.is_file()}
    if outputs:
        data["verify"] = {"outputs": outputs}
    return jsonify(data)


@bp.get("/sync/plots/<name>")
def plot(session_id: str, name: str):  # noqa: ANN201
    if name not in PLOT_FILES:
        raise RigError(f"no plot named {name!r}", 404)
    path = SessionLayout(session_path(runtime().sessions_root, session_id)).synced.plots / name
    if not path.is_file():
        raise RigError("no plot yet: run Sync first", 404)
    return send_file(path, max_age=0)


@bp.post("/verify")
def verify(session_id: str):  # noqa: ANN201
    path = session_path(runtime().sessions_root, session_id)
    return jsonify(
        {
            "job_id": _pipeline_job(
                "verify", f"Verify {session_id}", lambda ctx: verify_session(path, progress=ctx.progress)
            )
        }
    ), 202


@bp.get("/rows/<int:row>")
def row(session_id: str, row: int):  # noqa: ANN201
    path = session_path(runtime().sessions_root, session_id)
    try:
        return jsonify(describe_row(path, row))
    except SessionError as exc:
        raise RigError(str(exc), 404) from None


@bp.get("/rows/<int:row>/<camera>.jpg")
def row_picture(session_id: str, row: int, camera: str):  # noqa: ANN201
    path = session_path(runtime().sessions_root, session_id)
    try:
        jpeg = preview_jpeg(path, camera, row, max_width=480)
    except SessionError as exc:
        raise RigError(str(exc), 404) from None
    if jpeg is None:
        return Response(status=204)  # the camera has no frame at this instant (a drop)
    return Response(jpeg, mimetype="image/jpeg", headers={"Cache-Control": "max-age=3600"})


@bp.post("/trim")
def trim(session_id: str):  # noqa: ANN201
    """Cut every camera to rows start..end. An existing trim of that range is replaced only with
    `"overwrite": true` (the page asks first); without it the answer is 409 naming the trim."""
    path = session_path(runtime().sessions_root, session_id)
    data = json_body()
    start, end = _row(data.get("start"), "start"), _row(data.get("end"), "end")
    if end < start:
        raise FormError("end: must not be before start", "end")
    fill = _fill(data, "repeat")
    overwrite = data.get("overwrite", False)
    if not isinstance(overwrite, bool):
        raise FormError("overwrite: must be true or false", "overwrite")
    existing = SessionLayout(path).trim(start, end)
    if existing.path.exists() and not overwrite:
        raise RigError(f"trim {existing.path.name} already exists: replace it?", 409, "overwrite")

    def work(ctx: JobContext) -> dict:
        return trim_session(path, start, end, fill=fill, overwrite=overwrite, progress=ctx.progress)

    return jsonify({"job_id": _pipeline_job("trim", f"Trim {session_id} {start}-{end}", work)}), 202


@bp.delete("/trims/<name>")
def remove_trim(session_id: str, name: str):  # noqa: ANN201
    """Delete one trim (never the recording); `{"confirm": "<name>"}` must repeat its name."""
    path = session_path(runtime().sessions_root, session_id)
    if json_body().get("confirm") != name:
        raise FormError(f'confirm: repeat the trim\'s name to delete it ({{"confirm": "{name}"}})', "confirm")
    try:
        deleted = delete_trim(path, name)
    except TrimError as exc:
        raise RigError(str(exc), 404) from None
    return jsonify({"deleted": deleted.name})


@bp.get("/trims")
def trims(session_id: str):  # noqa: ANN201
    out = []
    for trim in SessionLayout(session_path(runtime().sessions_root, session_id)).trims():
        if trim.trim_json.is_file():
            data = json.loads(trim.trim_json.read_text(encoding="utf-8"))
            out.append(
                {
                    "name": trim.path.name,
                    **{k: data.get(k) for k in ("start_frame", "end_frame", "fill", "flags")},
                }
            )
    return jsonify({"trims": out})
