"""What the JSON API accepts and answers besides the query records: the models of its path
parameters, query parameters and bodies, and how a request is read into them.

Every value from a URL or a body is validated by one of these models before anything is
looked up: an artifact hash must be lowercase hex, a run id a short id, a node any text
without control characters (it is looked up in the store, never joined into a path). A
value that does not validate is a 422 naming the parameter (:class:`InvalidArgument`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import Response

from glasspane.errors import InvalidArgument

M = TypeVar("M", bound=BaseModel)

#: the largest JSON body the API reads
MAX_BODY = 1 << 20


def _run_id() -> Any:
    return Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="A run id, or a unique prefix of one (at least 4 characters).",
    )


TEXT = r"^[^\x00-\x1f\x7f]+$"  # no control characters


class Params(BaseModel):
    """Base of the parameter models: unknown query parameters are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class Body(BaseModel):
    """Base of the body models: an unknown key is an error (a typo would go unnoticed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- path parameters ---------------------------------------------------------------------------


class RunPath(Params):
    run_id: str = _run_id()


class TaskPath(Params):
    run_id: str = _run_id()
    node: str = Field(
        min_length=1, max_length=1000, pattern=TEXT, description="A node id of the run."
    )


class ArtifactPath(Params):
    content_hash: str = Field(
        min_length=8,
        max_length=64,
        pattern=r"^[0-9a-f]+$",
        description="An artifact's content hash (64 lowercase hex characters), or a unique "
        "prefix of at least 8.",
    )


class PipelinePath(Params):
    name: str = Field(min_length=1, max_length=200, pattern=TEXT, description="A pipeline name.")


class VersionPath(PipelinePath):
    hash: str = Field(
        min_length=4,
        max_length=64,
        pattern=r"^[0-9a-f]+$",
        description="A version's graph hash (lowercase hex), or a unique prefix of one.",
    )


class MetricPath(PipelinePath):
    key: str = Field(min_length=1, max_length=200, pattern=TEXT, description="A metric key.")


# ---- query parameters --------------------------------------------------------------------------


class RunsQuery(Params):
    pipeline: str | None = Field(None, max_length=200, description="Only this pipeline's runs.")
    state: str | None = Field(
        None, max_length=200, description="Only runs in this state, or in any of several "
        "comma-separated states (`failed,crashed`)."
    )  # fmt: skip
    trigger: str | None = Field(
        None, max_length=200, description="Only runs started this way (`manual`, `ui`, "
        "`retry`, `schedule`, `backfill`, `after`...), or any of several comma-separated."
    )  # fmt: skip
    schedule: str | None = Field(
        None, max_length=255, description="Only runs the schedule of this name launched."
    )
    since: datetime | None = Field(
        None, description="Only runs created at or after this time (ISO 8601; UTC if no offset)."
    )
    until: datetime | None = Field(
        None, description="Only runs created before this time (ISO 8601; UTC if no offset)."
    )
    tag: str | None = Field(
        None, max_length=200, description="Only runs of a version with a task tagged so."
    )
    cursor: str | None = Field(
        None, max_length=500, description="`next_cursor` of the previous page."
    )
    limit: int = Field(50, ge=1, le=500, description="At most this many runs (1 to 500).")

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value

    def filters(self) -> dict[str, Any]:
        """The keyword arguments of ``queries.list_runs``."""
        values = self.model_dump()
        for name in ("state", "trigger"):
            if values[name] is not None:
                values[name] = [v.strip() for v in values[name].split(",") if v.strip()]
        return values


class EventsQuery(Params):
    after: int = Field(
        0, ge=0, le=2**53, description="Only events after this sequence number (`Last-Event-ID` "
        "wins when sent)."
    )  # fmt: skip


class VersionsQuery(Params):
    graphs: bool = Field(True, description="Include each version's graph JSON.")


class MetricQuery(Params):
    limit: int = Field(100, ge=1, le=10_000, description="The newest this many runs.")


class LineageQuery(Params):
    direction: Literal["upstream", "downstream"] = Field(
        "upstream",
        description="`upstream`: what it was computed from; `downstream`: what consumed its "
        "outputs.",
    )
    depth: int | None = Field(None, ge=1, le=1000, description="At most this many hops.")


class CompareQuery(Params):
    runs: str = Field(
        min_length=3,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.-]+,[A-Za-z0-9_.-]+$",
        description="The two runs to compare, comma-separated: `A,B`.",
    )

    def pair(self) -> tuple[str, str]:
        left, right = self.runs.split(",")
        return left, right


# ---- bodies and answers ------------------------------------------------------------------------


class LaunchRequest(Body):
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameter values by name, as JSON values or as the text `glasspane run -p "
        "name=text` takes; the pipeline's defaults for the rest.",
    )


class RetryRequest(Body):
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="The run's secret parameters, given again (glasspane never stores them).",
    )


class Launched(BaseModel):
    """A run was launched in its own process; follow it at ``/api/runs/{run_id}/events``."""

    run_id: str


class Cancelled(BaseModel):
    """Whether a cancel was requested (False: the run was already over)."""

    run_id: str
    cancelled: bool


# ---- reading a request -------------------------------------------------------------------------


def path(request: Request, model: type[M]) -> M:
    """The path parameters of ``request``, validated by ``model``."""
    return _validate(model, request.path_params, "path parameter")


def query(request: Request, model: type[M]) -> M:
    """The query parameters of ``request``, validated by ``model``."""
    return _validate(model, dict(request.query_params), "query parameter")


async def body(request: Request, model: type[M]) -> M:
    """The JSON body of ``request`` validated by ``model`` (an empty body: its defaults)."""
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise InvalidArgument(f"the request body is over {MAX_BODY} bytes; send less")
    if not raw.strip():
        return model()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidArgument(
            f"the request body is not JSON ({exc}); send a JSON object with the fields of "
            f"{model.__name__} (see /api/openapi.json)"
        ) from None
    return _validate(model, data, "body field")


def _validate(model: type[M], data: Any, what: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{what} `{'.'.join(str(p) for p in err['loc']) or 'body'}`: {err['msg']}"
            + (f" (got {_short(err['input'])})" if isinstance(err["input"], (str, int)) else "")
            for err in exc.errors()
        )
        raise InvalidArgument(f"{problems}; see /api/openapi.json") from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


_adapters: dict[Any, TypeAdapter[Any]] = {}


def json_response(value: Any, type_: Any, status: int = 200) -> Response:
    """``value`` (of type ``type_``) as JSON, serialized by pydantic (NaN becomes null)."""
    adapter = _adapters.get(type_)
    if adapter is None:
        adapter = _adapters[type_] = TypeAdapter(type_)
    return Response(adapter.dump_json(value), status_code=status, media_type="application/json")
