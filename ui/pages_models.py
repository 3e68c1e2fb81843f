"""Models (``/models``) and one model (``/models/{name}``): its versions newest first, each with
its aliases, the run and task that produced it, that run's metrics, its artifact, its links to
other registries and where it is deployed; and the model's deployments with their history.

Both pages render ``glasspane.queries`` records (:func:`~glasspane.queries.models`,
:func:`~glasspane.queries.model`), the ones ``/api/models`` serves.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from glasspane import NotFound, queries

from .pages_base import html_errors, render, workspace


def model_url(name: str) -> str:
    """The page of model ``name``."""
    return f"/models/{quote(name, safe='')}"


@html_errors
def models_list(request: Request) -> Response:
    """``GET /models``: every registered model, its latest version, aliases and deployments."""
    notice = None
    try:
        found = workspace(request).query(queries.models)
    except NotFound as exc:  # no database yet
        found, notice = [], str(exc)
    rows = [{"m": summary, "url": model_url(summary.name)} for summary in found]
    return render(request, "models.html", {"nav": "models", "rows": rows, "notice": notice})


@html_errors
def model_page(request: Request) -> Response:
    """``GET /models/{name}``: one model's versions and deployments; an unknown model is a
    404 naming the registered ones."""
    name = request.path_params["name"]
    try:
        detail = workspace(request).query(queries.model, name)
    except NotFound as exc:
        context = {
            "nav": "models",
            "status": 404,
            "title": "Not found",
            "message": str(exc),
            "back_url": "/models",
            "back_label": "Back to all models",
        }
        return render(request, "error.html", context, status=404)
    return render(request, "model.html", {"nav": "models", "detail": detail})
