"""The Schedules tab and its API: list, create, edit and delete the controller's recording schedules
(controller/rig/schedule.py). The YAML after `---` in each docstring is this operation's OpenAPI
description (controller/web/openapi.py)."""

from __future__ import annotations

import shutil

from flask import Blueprint, jsonify, render_template

from controller.rig.schedule import ScheduleError, ScheduleNotFound, Scheduler
from controller.rig.service import RigError
from controller.web.helpers import FormError, json_body, runtime

bp = Blueprint("schedules", __name__, url_prefix="/api")
page_bp = Blueprint("schedule_pages", __name__)


@page_bp.get("/schedules")
def schedules():  # noqa: ANN201
    """The Schedules tab."""
    return render_template("schedules.html", page="schedules", root=str(runtime().sessions_root))


def _scheduler() -> Scheduler:
    scheduler = runtime().schedules
    if scheduler is None:
        raise RigError("this controller runs no schedules", 409)
    return scheduler


def _form_error(exc: ScheduleError) -> FormError:
    return FormError(str(exc), exc.field)


@bp.get("/schedules")
def list_schedules():  # noqa: ANN201
    """Every schedule with its run history, and the free space the disk guard compares with.
    ---
    get:
      responses:
        200:
          description: the schedules
          content:
            application/json:
              schema:
                type: object
                properties:
                  schedules: {type: array, items: {$ref: '#/components/schemas/Schedule'}}
                  free_bytes: {type: integer, nullable: true}
                  sessions_root: {type: string}
    """
    rt = runtime()
    try:
        free = shutil.disk_usage(rt.sessions_root).free
    except OSError:
        free = None
    return jsonify(
        {"schedules": _scheduler().list(), "free_bytes": free, "sessions_root": str(rt.sessions_root)}
    )


@bp.post("/schedules")
def create_schedule():  # noqa: ANN201
    """Create a schedule: every `every_s` seconds from `start_at` (default now) until `until`,
    record `duration_s` seconds.
    ---
    post:
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/ScheduleFields'}
      responses:
        201:
          description: the new schedule
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Schedule'}
        400:
          description: a field is missing or wrong (named in `field`)
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
    """
    try:
        return jsonify(_scheduler().create(json_body())), 201
    except ScheduleError as exc:
        raise _form_error(exc) from None


@bp.put("/schedules/<schedule_id>")
def update_schedule(schedule_id: str):  # noqa: ANN201
    """Change a schedule's fields (those not sent keep their values); its history stays.
    ---
    put:
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: '#/components/schemas/ScheduleFields'}
      responses:
        200:
          description: the schedule as saved
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Schedule'}
        400:
          description: a field is wrong (named in `field`)
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
        404:
          description: no such schedule
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
    """
    try:
        return jsonify(_scheduler().update(schedule_id, json_body()))
    except ScheduleError as exc:
        raise _form_error(exc) from None
    except ScheduleNotFound as exc:
        raise RigError(str(exc.args[0]), 404) from None


@bp.delete("/schedules/<schedule_id>")
def delete_schedule(schedule_id: str):  # noqa: ANN201
    """Delete a schedule (a run it started keeps recording until its planned end or Stop).
    ---
    delete:
      responses:
        200:
          description: deleted
          content:
            application/json:
              schema: {type: object, properties: {deleted: {type: string}}}
        404:
          description: no such schedule
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Error'}
    """
    try:
        _scheduler().delete(schedule_id)
    except ScheduleNotFound as exc:
        raise RigError(str(exc.args[0]), 404) from None
    return jsonify({"deleted": schedule_id})
