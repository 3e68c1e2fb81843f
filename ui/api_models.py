"""The JSON API of the model registry: the registered models, one model with its versions and
deployments, and every deployment.

Reads serve ``glasspane.queries`` records as they are (the Models pages render the same
ones). The operations (:data:`OPERATIONS`) join the API's one routes table and its OpenAPI
document.
"""

from __future__ import annotations

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

import glasspane
from glasspane import queries
from glasspane.errors import NotFound
from glasspane.queries import DeploymentRecord, ModelDetail, ModelSummary

from .api_params import Params, json_response, path
from .openapi import Operation

#: a model name as the registry takes it (see ``glasspane.register_model``)
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"


class ModelPath(Params):
    name: str = Field(
        min_length=1, max_length=128, pattern=MODEL_NAME, description="A registered model's name."
    )


def _workspace(request: Request) -> glasspane.Workspace:
    ws: glasspane.Workspace = request.app.state.workspace
    return ws


def models(request: Request) -> Response:
    """Every registered model, by name, with its latest version, aliases and deployments."""
    try:
        found = _workspace(request).query(queries.models)
    except NotFound:  # no database yet: nothing is registered
        found = []
    return json_response(found, list[ModelSummary])


def model(request: Request) -> Response:
    """One model: its versions newest first, each with the metrics of the run that produced
    it, its links to other registries and where it is deployed; and its deployments."""
    p = path(request, ModelPath)
    return json_response(_workspace(request).query(queries.model, p.name), ModelDetail)


def deployments(request: Request) -> Response:
    """Every deployment, by name: the model version it serves, where, and its history."""
    try:
        found = _workspace(request).query(queries.deployments)
    except NotFound:  # no database yet: nothing is deployed
        found = []
    return json_response(found, list[DeploymentRecord])


OPERATIONS: list[Operation] = [
    Operation("GET", "/api/models", models, "List models", list[ModelSummary], errors=(400,)),
    Operation("GET", "/api/models/{name}", model, "One model", ModelDetail,
              path_params=ModelPath),
    Operation("GET", "/api/deployments", deployments, "List deployments",
              list[DeploymentRecord], errors=(400,)),
]  # fmt: skip
