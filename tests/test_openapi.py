"""The HTTP API's OpenAPI document: generated from the routes, valid (openapi-spec-validator), every
/api route and method listed with its path parameters and the security it needs, rendered on a
page; read through the Python client over a real socket."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from controller.web import create_app
from controller.web.client import ApiError, SyncRigClient
from controller.web.openapi import build_spec

from web_support import ServerThread, controller_for

HIDDEN = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    from controller.rig.simulated import SimCamera, SimulatedRig

    workdir = tmp_path_factory.mktemp("openapi")
    with SimulatedRig(workdir / "rig", [SimCamera("cam0")], width=160, height=120) as rig:
        rt = controller_for(rig, workdir)
        yield rt
        rt.close()


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_the_document_validates_and_lists_every_api_route(runtime) -> None:  # noqa: ANN001
    app = create_app(runtime)
    server = ServerThread(app)
    try:
        api = SyncRigClient(server.url)
        spec = api.openapi()
        page = api._opener.open(server.url + "/api/docs", timeout=10).read().decode()
        # State-changing calls need the CSRF token, which the client fetched from /api/csrf.
        assert api.create_schedule(every_s=60, duration_s=1, enabled=False)["enabled"] is False
    finally:
        server.close()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    listed = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    routes = [r for r in app.url_map.iter_rules() if r.rule.startswith("/api/")]
    assert len(routes) > 30
    for rule in routes:
        for method in rule.methods - HIDDEN:
            key = (openapi_path(rule.rule), method.lower())
            assert key in listed, f"{method} {rule.rule} ({rule.endpoint}) missing from /api/openapi.json"
            op = spec["paths"][key[0]][key[1]]
            assert {p["name"] for p in op.get("parameters", []) if p["in"] == "path"} == set(rule.arguments)
            assert op["summary"] and op["tags"] and op["responses"]
            if method in ("POST", "PUT", "DELETE"):
                assert {"csrfToken": []} in op["security"], key
    assert len(listed) == sum(len(r.methods - HIDDEN) for r in routes)
    # Auth is documented: the schemes, and how to get the tokens.
    schemes = spec["components"]["securitySchemes"]
    assert schemes["csrfToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-CSRF-Token",
        "description": "from GET /api/csrf",
    }
    assert schemes["accessToken"]["in"] == "query" and schemes["accessCookie"]["name"] == "syncrig_token"
    assert "X-CSRF-Token" in spec["info"]["description"] and "access token" in spec["info"]["description"]
    # The schedules' YAML docstrings add their bodies; the path parameter types follow the rule.
    create = spec["paths"]["/api/schedules"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("ScheduleFields")
    row = spec["paths"]["/api/sessions/{session_id}/rows/{row}"]["get"]["parameters"]
    assert {p["name"]: p["schema"]["type"] for p in row} == {"session_id": "string", "row": "integer"}
    # The page renders every operation.
    for path, method in listed:
        assert f'data-path="{path}" data-method="{method}"' in page


def test_a_new_route_is_documented_without_editing_anything(runtime) -> None:  # noqa: ANN001
    app = create_app(runtime)

    @app.post("/api/planted/<int:count>/<name>")
    def planted(count: int, name: str):  # noqa: ANN202
        """Plant something. More words here."""
        return {}

    with app.app_context():
        spec = build_spec(app)
    validate(spec)
    op = spec["paths"]["/api/planted/{count}/{name}"]["post"]
    assert op["summary"] == "Plant something"
    assert [(p["name"], p["schema"]["type"]) for p in op["parameters"]] == [
        ("count", "integer"),
        ("name", "string"),
    ]
    assert {"csrfToken": []} in op["security"]


def test_the_client_reports_refusals(runtime) -> None:  # noqa: ANN001
    server = ServerThread(create_app(runtime))
    try:
        api = SyncRigClient(server.url)
        try:
            api.session("20990101-000000-9999")
        except ApiError as exc:
            assert exc.status == 404 and "9999" in exc.message
        else:
            raise AssertionError("an unknown session was not refused")
        # Without the CSRF token a write is refused: the client's token is what lets it through.
        api._csrf = "wrong"
        try:
            api.stop_recording()
        except ApiError as exc:
            assert exc.status == 403 and "CSRF" in exc.message
        else:
            raise AssertionError("a wrong CSRF token was accepted")
    finally:
        server.close()
