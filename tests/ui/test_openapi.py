"""The OpenAPI document: generated from the records the API serves, covering every API
route, and the API fuzzed against it with schemathesis (no 5xx, responses as documented)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from pydantic import TypeAdapter
from starlette.routing import Route
from starlette.testclient import TestClient

from glasspane import Workspace
from glasspane.queries import PipelineSummary, RunDetail, TaskDetail
from glasspane.ui.api import OPERATIONS
from glasspane.ui.app import create_app
from glasspane.ui.openapi import REF_TEMPLATE

if TYPE_CHECKING:
    from conftest import UIRuns

schemathesis = pytest.importorskip("schemathesis")


def refs(value: Any) -> set[str]:
    """Every ``$ref`` in a JSON document."""
    if isinstance(value, dict):
        found = {value["$ref"]} if isinstance(value.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value))
    return set()


def test_the_document_is_the_records_own_schemas(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    components = doc["components"]["schemas"]
    for record in (RunDetail, TaskDetail, PipelineSummary):
        expected = record.model_json_schema(ref_template=REF_TEMPLATE, mode="serialization")
        expected.pop("$defs", None)
        assert components[record.__name__] == expected
    listed = doc["paths"]["/api/pipelines"]["get"]["responses"]["200"]
    expected = TypeAdapter(list[PipelineSummary]).json_schema(
        ref_template=REF_TEMPLATE, mode="serialization"
    )
    assert listed["content"]["application/json"]["schema"] == {
        k: v for k, v in expected.items() if k != "$defs"
    }
    for ref in refs(doc):  # every reference resolves to a component
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in components
    assert "RunPath" not in components  # parameter models are listed as parameters
    task = doc["paths"]["/api/runs/{run_id}/tasks/{node}"]["get"]
    assert [(p["name"], p["in"], p["required"]) for p in task["parameters"]] == [
        ("run_id", "path", True),
        ("node", "path", True),
    ]
    artifact = doc["paths"]["/api/artifacts/{content_hash}"]["get"]["parameters"][0]
    assert artifact["schema"]["pattern"] == "^[0-9a-f]+$"
    assert doc["paths"]["/api/runs/{run_id}/retry"]["post"]["responses"]["409"]["content"]
    assert "security" not in doc  # no token configured


def test_every_api_route_is_documented(client: TestClient) -> None:
    doc = client.get("/api/openapi.json").json()
    documented = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    served = {(method, op.template) for op in OPERATIONS for method in [op.method]}
    assert documented == served
    routes = {
        route.path
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and route.path.startswith("/api/")
    }
    assert routes - {op.path for op in OPERATIONS} == {"/api/openapi.json"}


def test_with_a_token_the_document_says_so(ui_workspace: Workspace) -> None:
    app = create_app(ui_workspace, token="t0ken-for-the-docs")
    client = TestClient(app, base_url="http://127.0.0.1")
    doc = client.get("/api/openapi.json", headers={"Authorization": "Bearer t0ken-for-the-docs"})
    assert doc.json()["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }
    assert "401" in doc.json()["paths"]["/api/runs"]["get"]["responses"]


def checks() -> list[Any]:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]


def test_real_responses_conform_to_the_document(ui_workspace: Workspace, ui_runs: UIRuns) -> None:
    app = create_app(ui_workspace, allowed_hosts=("testserver",))
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    run, node = ui_runs.succeeded, ui_runs.hostile_node
    cases = [
        ("GET", "/api/runs", {}, {"limit": 2}),
        ("GET", "/api/runs/{run_id}", {"run_id": run}, {}),
        ("GET", "/api/runs/{run_id}/graph", {"run_id": run}, {}),
        ("GET", "/api/runs/{run_id}/metrics", {"run_id": run}, {}),
        ("GET", "/api/runs/{run_id}/tasks/{node}", {"run_id": run, "node": node}, {}),
        ("GET", "/api/runs/{run_id}/tasks/{node}", {"run_id": ui_runs.failed, "node": "boom"}, {}),
        ("GET", "/api/runs/{run_id}/events", {"run_id": run}, {}),
        ("GET", "/api/artifacts/{content_hash}", {"content_hash": ui_runs.artifact}, {}),
        ("GET", "/api/lineage/{run_id}/{node}", {"run_id": run, "node": node}, {}),
        ("GET", "/api/pipelines", {}, {}),
        ("GET", "/api/pipelines/{name}", {"name": "mapped"}, {}),
        ("GET", "/api/pipelines/{name}/metrics/{key}", {"name": "mapped", "key": "loss"}, {}),
        ("GET", "/api/compare", {}, {"runs": f"{run},{ui_runs.second}"}),
        ("POST", "/api/runs/{run_id}/cancel", {"run_id": run}, {}),
    ]
    for method, path, path_parameters, query in cases:
        case = schema[path][method].Case(path_parameters=path_parameters, query=query)
        response = case.call()
        assert response.status_code == 200, (path, response.text)
        case.validate_response(response, checks=checks())


def test_schemathesis_finds_no_server_error_nor_undocumented_response(
    fresh_workspace: Workspace,
) -> None:
    """Fuzz every operation (a few examples each, valid and invalid) against a Workspace of
    its own: random ids name no run, so nothing is launched, retried or cancelled."""
    from schemathesis import GenerationMode

    app = create_app(fresh_workspace, allowed_hosts=("testserver",))
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == len(OPERATIONS)
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=25,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case: Any) -> None:
                response = case.call()
                case.validate_response(response, checks=checks())

            try:
                fuzz()
            except Unsatisfiable:  # no parameters to make invalid (GET /api/pipelines)
                assert mode == GenerationMode.NEGATIVE


def test_a_hostile_node_in_a_url_round_trips(client: TestClient, ui_runs: UIRuns) -> None:
    url = f"/api/lineage/{ui_runs.succeeded}/{quote(ui_runs.hostile_node, safe='')}"
    assert client.get(url).json()["root"]["node"] == ui_runs.hostile_node
