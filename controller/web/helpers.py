"""Small helpers shared by the blueprints: the runtime, the request body, and FormError for a bad
field in it."""

from __future__ import annotations

from flask import abort, current_app, request

from controller.runtime import ControllerRuntime


class FormError(ValueError):
    """A field of the request's form or JSON body is missing or wrong: answered 400 with
    `{"error": message, "field": field}` (the page marks that field)."""

    status = 400

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def runtime() -> ControllerRuntime:
    return current_app.extensions["syncrig"]


def json_body() -> dict:
    """The request's JSON object, or a 400 that says what was wrong."""
    data = request.get_json(silent=True)
    if data is None:
        abort(400, description="expected a JSON object body (Content-Type: application/json)")
    if not isinstance(data, dict):
        abort(400, description="the JSON body must be an object")
    return data


def optional_number(data: dict, name: str) -> float | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
    except (TypeError, ValueError):
        raise FormError(f"{name}: must be a number, got {value!r}", name) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise FormError(f"{name}: must be a finite number", name)
    return number
