"""The JSON API's OpenAPI document, generated from the same declarations that serve it.

Each API route is one :class:`Operation`: its endpoint, the pydantic models of its path
parameters, query parameters and body, and the type of its response (a query record, or a
list of them). The routes table and this document are both built from the operations, and
every schema comes from pydantic (``TypeAdapter.json_schemas`` with
``ref_template="#/components/schemas/{model}"``, each model's ``$defs`` collected into
``components.schemas``), so the document cannot drift from what is served.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, TypeAdapter

import glasspane

REF_TEMPLATE = "#/components/schemas/{model}"
EVENT_STREAM = "text/event-stream"

#: what each error status means, for the document
ERROR_STATUSES = {
    400: "The request cannot be carried out (the message says why and what to do).",
    401: "The server has a token (GLASSPANE_UI_TOKEN) and the request did not send it.",
    403: "A cross-site request (its Origin is not this server's).",
    404: "No such run, node, artifact, pipeline, schedule or model (the message says what exists).",
    409: "The run is not over yet.",
    422: "A path, query or body parameter is invalid (the message names it).",
    502: "An experiment tracker (MLflow...) could not be read: unreachable or refused.",
    503: "Too many live event streams; try again later.",
}


#: one message of an event stream (in OpenAPI 3.1, an event stream's schema is its events')
SERVER_SENT_EVENT = {
    "type": "object",
    "required": ["id", "event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The event's `seq`."},
        "event": {
            "type": "string",
            "description": "The event's kind: `run_started`, `task_started`, `task_finished`, "
            "`metric_logged`, ... `run_finished` (the last).",
        },
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "The event as JSON (`Event.to_dict()` of `glasspane.events`).",
        },
    },
}


class ErrorBody(BaseModel):
    """Every error the API answers: what went wrong and what to do next."""

    error: str


@dataclass(frozen=True)
class Operation:
    """One JSON API route and everything its OpenAPI entry is generated from.

    Attributes:
        method: ``GET`` or ``POST``.
        path: the Starlette path (``/api/runs/{run_id}/tasks/{node:path}``).
        endpoint: the Starlette endpoint serving it.
        summary: one line for the document.
        response: the type of the response body (a record, ``list[Record]``); None for an
            event stream.
        status: the status of a successful response.
        path_params: the model the path parameters are validated with.
        query: the model the query parameters are validated with.
        body: the model the JSON body is validated with.
        errors: the error statuses it can answer (besides the token's 401).
    """

    method: str
    path: str
    endpoint: Callable[..., Any]
    summary: str
    response: Any
    status: int = 200
    path_params: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    errors: tuple[int, ...] = (400, 404, 422)

    @property
    def template(self) -> str:
        """The path as OpenAPI writes it: ``{node:path}`` -> ``{node}``."""
        return re.sub(r"\{(\w+):\w+\}", r"{\1}", self.path)

    @property
    def operation_id(self) -> str:
        return getattr(self.endpoint, "__name__", self.template)


def document(operations: Sequence[Operation], *, token: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``operations``.

    Args:
        token: the server needs a token: every operation documents 401 and the bearer
            and cookie security schemes.
    """
    inputs: list[tuple[Any, Any, TypeAdapter[Any]]] = [
        (("error", None), "serialization", TypeAdapter(ErrorBody))
    ]
    for op in operations:
        if op.response is not None:
            inputs.append(
                ((op.operation_id, "response"), "serialization", TypeAdapter(op.response))
            )
        for part in ("path_params", "query", "body"):
            model = getattr(op, part)
            if model is not None:
                inputs.append(((op.operation_id, part), "validation", TypeAdapter(model)))
    schemas, top = TypeAdapter.json_schemas(inputs, ref_template=REF_TEMPLATE)
    components: dict[str, Any] = dict(top.get("$defs", {}))
    error_ref = schemas[(("error", None), "serialization")]
    paths: dict[str, Any] = {}
    for op in operations:
        paths.setdefault(op.template, {})[op.method.lower()] = _operation(
            op, schemas, components, error_ref, token
        )
    for op in operations:  # parameter models are listed as parameters, not as components
        for part in ("path_params", "query"):
            ref = schemas.get(((op.operation_id, part), "validation"), {}).get("$ref")
            if ref is not None:
                components.pop(ref.rsplit("/", 1)[1], None)
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "glasspane",
            "version": glasspane.__version__,
            "description": "The runs, graphs, tasks, artifacts, pipelines, lineage, "
            "schedules, registered models and deployments glasspane records, and the runs of "
            "the experiment trackers it reads back, as the web UI shows them. Errors are "
            '`{"error": "<what went wrong and what to do next>"}`.',
        },
        "paths": paths,
        "components": {"schemas": components},
    }
    if token:
        doc["components"]["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "glasspane_session"},
        }
        doc["security"] = [{"bearer": []}, {"session": []}]
    return doc


def _operation(
    op: Operation,
    schemas: dict[Any, Any],
    components: dict[str, Any],
    error_ref: dict[str, Any],
    token: bool,
) -> dict[str, Any]:
    key = op.operation_id
    entry: dict[str, Any] = {"operationId": key, "summary": op.summary}
    doc = (op.endpoint.__doc__ or "").strip()
    if doc:
        entry["description"] = doc
    parameters = []
    for part, where in (("path_params", "path"), ("query", "query")):
        model = getattr(op, part)
        if model is None:
            continue
        schema = _resolve(schemas[((key, part), "validation")], components)
        required = set(schema.get("required", ()))
        for name, prop in schema.get("properties", {}).items():
            parameter = {"name": name, "in": where, "required": where == "path" or name in required}
            if "description" in prop:
                parameter["description"] = prop["description"]
            parameter["schema"] = _parameter_schema(prop)
            parameters.append(parameter)
    if parameters:
        entry["parameters"] = parameters
    if op.body is not None:
        entry["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": schemas[((key, "body"), "validation")]}},
        }
    if op.response is None:
        content = {EVENT_STREAM: {"schema": SERVER_SENT_EVENT}}
    else:
        content = {"application/json": {"schema": schemas[((key, "response"), "serialization")]}}
    responses: dict[str, Any] = {
        str(op.status): {"description": _first_line(op.summary), "content": content}
    }
    statuses = set(op.errors) | ({401} if token else set())
    if op.method != "GET":
        statuses.add(403)
    for status in sorted(statuses):
        responses[str(status)] = {
            "description": ERROR_STATUSES[status],
            "content": {"application/json": {"schema": error_ref}},
        }
    entry["responses"] = responses
    return entry


def _resolve(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    """A parameter model's schema itself (its properties), not a ``$ref`` to it."""
    ref = schema.get("$ref")
    return schema if ref is None else components[ref.rsplit("/", 1)[1]]


def _parameter_schema(prop: dict[str, Any]) -> dict[str, Any]:
    """A field's schema as a parameter's: a parameter is left out rather than null."""
    schema = {k: v for k, v in prop.items() if k not in ("title", "description")}
    options = [s for s in schema.pop("anyOf", ()) if s.get("type") != "null"]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    if schema.get("default", ...) is None:
        del schema["default"]
    return schema


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""
