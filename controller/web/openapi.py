"""The HTTP API described: an OpenAPI 3 document generated from the app's own routes by apispec's
Flask plugin (`/api/openapi.json`), a page that renders it (`/api/docs`), and the CSRF token for
programmatic clients (`/api/csrf`).

Every rule under /api in `app.url_map` becomes an operation: its path parameters, tag (the
blueprint), summary and description (the view's docstring) and the security it needs come from
the route itself; a view whose docstring carries YAML after `---` (apispec's convention, as in
web/api_schedules.py) adds its request and response schemas. Nothing is kept by hand beside the
routes, so a new route is documented the moment it exists (tests/test_openapi.py checks that)."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

from apispec import APISpec
from apispec_webframeworks.flask import FlaskPlugin
from flask import Blueprint, Flask, current_app, jsonify, render_template

from controller.rig.schedule import RUN_STATES
from controller.web.security import SAFE_METHODS, csrf_token

bp = Blueprint("openapi", __name__)

API_PREFIX = "/api/"
# `<converter(args):name>` in a Flask rule; the converter's OpenAPI type.
_RULE_ARG = re.compile(r"<(?:(?P<converter>[a-z]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
_ARG_TYPES = {"int": "integer", "float": "number"}

AUTH = """\
**Who may call.** The controller serves this machine by default (bound to 127.0.0.1): loopback
clients need no token, and only loopback `Host` names are accepted (no DNS rebinding). Bound to a
network address (`--host`), every client that is not loopback must present the access token the
controller prints at start: `?token=...` once (the answer sets the `syncrig_token` cookie) or the
cookie itself.

**State-changing requests** (POST, PUT, DELETE) must carry the CSRF token in the `X-CSRF-Token`
header, together with the signed session cookie it belongs to: `GET /api/csrf` (or any page: its
`<meta name="csrf-token">`) gives the token and sets the cookie. A missing or wrong token is
answered 403. `controller/web/client.py` (`SyncRigClient`) does all of this.

**Errors** are JSON `{"error": message, "field": name}` (`field` only when one field of the
request is at fault) with a 4xx status; long work (recording, pull, sync, ...) answers 202 with a
`job_id` to follow at `/api/jobs/{job_id}` or on the event stream `/api/events`."""

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "field": {"type": "string"}},
    },
    "JobStarted": {"type": "object", "required": ["job_id"], "properties": {"job_id": {"type": "string"}}},
    "ScheduleFields": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 100},
            "every_s": {"type": "number", "minimum": 1, "description": "seconds between runs' starts"},
            "duration_s": {"type": "number", "description": "seconds each run records (< every_s)"},
            "start_at": {"type": "number", "description": "Unix seconds of the first run (default now)"},
            "until": {"type": "number", "nullable": True, "description": "Unix seconds: no run after it"},
            "subject": {"type": "string", "nullable": True},
            "project": {"type": "string", "nullable": True},
            "min_free_gb": {"type": "number", "minimum": 0, "description": "disk guard (sessions root)"},
            "override_preflight": {"type": "boolean"},
            "enabled": {"type": "boolean"},
        },
    },
    "Schedule": {
        "allOf": [
            {"$ref": "#/components/schemas/ScheduleFields"},
            {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "next_run": {"type": "integer"},
                    "next_due": {"type": "number", "nullable": True},
                    "planned_runs": {"type": "integer", "nullable": True},
                    "runs": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "index": {"type": "integer"},
                                "due": {"type": "number"},
                                "state": {"type": "string", "enum": list(RUN_STATES)},
                                "session_id": {"type": "string", "nullable": True},
                                "reason": {"type": "string"},
                            },
                        },
                    },
                },
            },
        ]
    },
}

# Loopback needs nothing; other machines the access token (query once, then the cookie).
READ_SECURITY = [{}, {"accessToken": []}, {"accessCookie": []}]
WRITE_SECURITY = [
    {"csrfToken": []},
    {"csrfToken": [], "accessToken": []},
    {"csrfToken": [], "accessCookie": []},
]


def _package_version() -> str:
    try:
        return version("syncrig")
    except PackageNotFoundError:
        return "0+unknown"


def _path_parameters(rule: str) -> list[dict]:
    return [
        {
            "name": m.group("name"),
            "in": "path",
            "required": True,
            "schema": {"type": _ARG_TYPES.get(m.group("converter") or "", "string")},
        }
        for m in _RULE_ARG.finditer(rule)
    ]


def _describe(operation: dict, method: str, rule: str, endpoint: str, doc: str) -> None:
    """Fill in what the route itself says, keeping what the view's YAML said."""
    text = " ".join(line.strip() for line in doc.split("---", 1)[0].split())
    summary = text.split(". ", 1)[0].rstrip(".") if text else endpoint.split(".")[-1].replace("_", " ")
    operation.setdefault("summary", summary)
    if text and text.rstrip(".") != summary:
        operation.setdefault("description", text)
    operation.setdefault(
        "operationId", endpoint.replace(".", "_") + ("" if method == "get" else f"_{method}")
    )
    operation.setdefault("tags", [endpoint.split(".")[0]])
    params = operation.setdefault("parameters", [])
    named = {(p.get("in"), p.get("name")) for p in params}
    params.extend(p for p in _path_parameters(rule) if ("path", p["name"]) not in named)
    if not params:
        del operation["parameters"]
    responses = operation.setdefault("responses", {})
    if not responses:
        responses["200"] = {"description": "success"}
    if method.upper() not in SAFE_METHODS:
        operation.setdefault("security", WRITE_SECURITY)
        responses.setdefault("403", {"description": "missing or wrong CSRF token, or access token"})


def build_spec(app: Flask) -> dict:
    """The OpenAPI 3.0 document of every route under /api."""
    spec = APISpec(
        title="SyncRig controller API",
        version=_package_version(),
        openapi_version="3.0.3",
        plugins=[FlaskPlugin()],
        info={"description": AUTH},
        security=READ_SECURITY,
    )
    spec.components.security_scheme(
        "csrfToken",
        {"type": "apiKey", "in": "header", "name": "X-CSRF-Token", "description": "from GET /api/csrf"},
    )
    spec.components.security_scheme(
        "accessToken",
        {"type": "apiKey", "in": "query", "name": "token", "description": "printed by the controller"},
    )
    spec.components.security_scheme(
        "accessCookie", {"type": "apiKey", "in": "cookie", "name": "syncrig_token"}
    )
    for name, schema in SCHEMAS.items():
        spec.components.schema(name, schema)
    rules = sorted(
        (r for r in app.url_map.iter_rules() if r.rule.startswith(API_PREFIX)),
        key=lambda r: (r.rule, r.endpoint),
    )
    seen: dict[str, tuple[str, str]] = {}  # openapi path → (rule, endpoint)
    for rule in rules:
        view = app.view_functions[rule.endpoint]
        methods = sorted(m.lower() for m in (rule.methods or ()) if m not in ("HEAD", "OPTIONS"))
        # The plugin turns the rule into an OpenAPI path and reads the docstring's YAML.
        spec.path(view=view, app=app, operations={m: {} for m in methods})
        for method in methods:
            seen[f"{FlaskPlugin.flaskpath2openapi(rule.rule)} {method}"] = (rule.rule, rule.endpoint)
    document = spec.to_dict()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            rule, endpoint = seen[f"{path} {method}"]
            _describe(operation, method, rule, endpoint, app.view_functions[endpoint].__doc__ or "")
    return document


@bp.get("/api/openapi.json")
def openapi_json():  # noqa: ANN201
    """This API's OpenAPI 3 document, generated from the routes."""
    return jsonify(build_spec(current_app))


@bp.get("/api/csrf")
def csrf():  # noqa: ANN201
    """The CSRF token for state-changing requests (send it as X-CSRF-Token with the session cookie
    this answer sets)."""
    return jsonify({"csrf_token": csrf_token()})


@bp.get("/api/docs")
def docs():  # noqa: ANN201
    """This API's OpenAPI document as a page."""
    return render_template("api_docs.html", page="api", spec=build_spec(current_app))
