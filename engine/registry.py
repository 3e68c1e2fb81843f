"""glasspane's own model registry, as user code sees it: ``register_model`` inside a task,
``load_model`` by reference (``churn``, ``churn/3``, ``churn@champion``) anywhere.

A registration stores the model in the artifact store (like a task output) and reports it to
the run's driver, which records the new version in the metadata store with the task run that
registered it — and through that task run's lineage, the data it was trained on (see
:mod:`glasspane.store.registry`). Aliases (``champion``), not stages, name the version to use;
``glasspane models promote`` moves them.

Inside a task, ``load_model`` resolves the reference in the run's metadata store when it is
called (the worker reads it: see :mod:`glasspane.execution.model_reads`) and the task run
records the version as an input; a cached result of the task is reused only while the
reference still names that version.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from .errors import GlasspaneError, InvalidArgument
from .events import wire
from .execution.context import TaskContext
from .execution.context import current_context as current
from .execution.model_reads import load_record, loaded_event, metadata_reader
from .store.engines import mask_url
from .store.registry import check_name, parse_ref
from .types import ArtifactInfo

if TYPE_CHECKING:
    from .workspace import Workspace

#: rows of an ``input_example`` a version keeps
EXAMPLE_ROWS = 5


def register_model(
    name: str,
    model: Any,
    *,
    alias: str | None = None,
    metadata: dict[str, Any] | None = None,
    input_example: Any = None,
) -> None:
    """Register ``model`` as a new version of model ``name`` (numbered from 1 per name) from
    inside a running task; with ``alias``, point that alias (``"champion"``) at it.

    ``metadata`` (JSON values) is kept with the version. The model is stored like a task
    output (pickle for a scikit-learn estimator), and the version is recorded with the run
    and task that registered it.

    ``input_example`` (a pandas DataFrame, a numpy array or a list of rows: lists, or dicts
    of column -> value) keeps its first 5 rows with the version, as
    ``{"columns": [...], "data": [[...], ...]}`` (the ``dataframe_split`` form; an array or a
    list of lists takes the model's ``feature_names_in_`` as columns when it has them, and no
    columns otherwise). Deployments send it as the sample prediction a new version must
    answer before it takes traffic. Without one, a model with scikit-learn's
    ``n_features_in_`` keeps one row of zeros of that width (with ``feature_names_in_`` as
    columns when present).

    Raises:
        GlasspaneError: called outside a running task.
        InvalidArgument: a bad model or alias name, metadata that is not JSON, or an
            input_example that is none of the above.
        SerializationError: the model cannot be stored.
    """
    ctx = current()
    if ctx is None or ctx.emit is None or ctx.artifacts is None:
        raise GlasspaneError(
            f"register_model({name!r}, ...) was called outside a running task; call it inside "
            "a @task function, so the version is recorded with the run that produced it"
        )
    check_name(name, "model")
    if alias is not None:
        check_name(alias, "alias")
    where = f"register_model({name!r}) in task `{ctx.task}`"
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"{where}: metadata must be JSON values (numbers, strings, lists, dicts): {exc}"
        ) from None
    example = example_of(input_example, model, where)
    info = ctx.artifacts.put(model, where=where)
    version = _record(ctx, name, info.to_dict(), metadata, example, alias)
    ctx.emit(
        wire(
            "model_registered", ctx.node_id, name=name, alias=alias, metadata=metadata,
            artifact=info.to_dict(), input_example=example, version=version,
        )
    )  # fmt: skip


def _record(
    ctx: Any, name: str, artifact: dict[str, Any], metadata: Any, example: Any, alias: str | None
) -> int | None:
    """Record the version in the run's metadata store from the task itself, so it exists
    before the task returns (a later task of the run loading ``name@alias`` gets it); its
    number. None when the task cannot reach the store (an in-memory database, a Dask worker
    on another machine): the driver records it from the event, and tasks of this run cannot
    load models either (they say so)."""
    if ctx.metadata_url is None:
        return None

    try:
        store = metadata_reader(ctx.metadata_url)
    except GlasspaneError:
        return None
    return store.add_model_version(
        name, artifact, run_id=ctx.run_id, node_id=ctx.node_id, meta=metadata,
        input_example=example, alias=alias,
    )  # fmt: skip


def load_model(ref: str, *, workspace: Workspace | None = None) -> Any:
    """The model ``ref`` names: ``"churn"`` (its latest version), ``"churn/3"`` or
    ``"churn@champion"``, loaded from the artifact store of ``workspace`` (default: the one
    the configuration describes).

    Inside a running task, the reference is resolved in the run's own metadata store when
    this is called, the model is read from the run's artifact store, and the task run records
    the version as an input (``model:churn/3`` in its lineage). The task's cached result is
    reused only while ``ref`` still names that version: after a new champion is promoted, the
    task runs again.

    Raises:
        GlasspaneError: inside a task, the run's metadata store cannot be read where the task
            runs (a Dask worker on another machine with a SQLite file on this one).
        InvalidArgument: ``ref`` is not a model reference, or ``workspace`` is given inside a
            task.
        NotFound: no such model, version or alias (naming what there is).
    """
    parse_ref(ref)  # a malformed reference is said before any store is opened
    ctx = current()
    if ctx is not None:
        if workspace is not None:
            raise InvalidArgument(
                f"load_model({ref!r}, workspace=...) in task `{ctx.task}`: inside a task the "
                "model comes from the run's own registry (so the run records it); drop "
                "`workspace=`, or load the model before the run and pass it in"
            )
        return _load_in_task(ctx, ref)
    if workspace is None:
        from .api import default_workspace

        workspace = default_workspace()
    return workspace.artifacts.get(ArtifactInfo.from_dict(workspace.reader().resolve_model(ref)))


def _load_in_task(ctx: TaskContext, ref: str) -> Any:
    where = f"load_model({ref!r}) in task `{ctx.task}`"
    url = ctx.metadata_url
    if url is None or ctx.artifacts is None or ctx.emit is None:
        raise GlasspaneError(
            f"{where}: this run gave its tasks no metadata store to read the registry from (a "
            "job not built by glasspane's run loop); load the model before the run and pass it "
            "to the pipeline"
        )
    try:
        reader = metadata_reader(url)
    except GlasspaneError as exc:  # no database there, or it cannot be opened
        raise _unreachable(where, url, exc) from exc
    try:
        row = reader.resolve_model(ref)
    except GlasspaneError:
        raise  # the reference names nothing: the registry says what there is
    except Exception as exc:  # noqa: BLE001 - a database error, said with what to do
        raise _unreachable(where, url, exc) from exc
    info = ArtifactInfo.from_dict(row)
    model = ctx.artifacts.get(info)
    record = load_record(ref, row, info.to_dict())
    if not any(m["ref"] == ref and m["version"] == record["version"] for m in ctx.models):
        ctx.models.append(record)
        ctx.emit(loaded_event(ctx.node_id, record))
    return model


def _unreachable(where: str, url: str, exc: BaseException) -> GlasspaneError:
    return GlasspaneError(
        f"{where}: the run's metadata store `{mask_url(url)}` cannot be read where the task "
        f"runs ({exc}); make the database reachable from the workers (GLASSPANE_DATABASE_URL "
        "pointing at a PostgreSQL server they can reach, not a SQLite file of the driver's "
        "machine), or load the model before the run and pass it to the pipeline"
    )


def example_of(value: Any, model: Any, where: str) -> dict[str, Any] | None:
    """The ``dataframe_split`` form of the first rows of ``value`` (see
    :func:`register_model`); without ``value``, one row of zeros as wide as ``model``'s
    ``n_features_in_``, or None.

    Raises:
        InvalidArgument: ``value`` is not a DataFrame, an array or a list of rows, or has no
            rows.
    """
    names = getattr(model, "feature_names_in_", None)
    columns = None if names is None else [_plain(c) for c in names]
    if value is None:
        try:
            width = int(getattr(model, "n_features_in_", 0))
        except (TypeError, ValueError):
            return None
        if width < 1:
            return None
        zeros: dict[str, Any] = {"data": [[0.0] * width]}
        return {"columns": columns, **zeros} if columns and len(columns) == width else zeros
    rows: list[Any]
    if hasattr(value, "columns") and hasattr(value, "head"):  # a pandas DataFrame
        head = value.head(EXAMPLE_ROWS)
        columns = [_plain(c) for c in head.columns]
        rows = head.to_dict(orient="split")["data"]
    elif hasattr(value, "ndim") and hasattr(value, "tolist"):  # a numpy array
        if value.ndim not in (1, 2):
            raise InvalidArgument(
                f"{where}: input_example is an array of {value.ndim} dimensions; give rows of "
                "features (2 dimensions), as the model's predict takes them"
            )
        rows = [value.tolist()] if value.ndim == 1 else value[:EXAMPLE_ROWS].tolist()
    elif isinstance(value, (list, tuple)):
        first = value[0] if value else None
        if isinstance(first, dict):
            columns = [_plain(c) for c in first]
            rows = [[row.get(c) for c in first] for row in value[:EXAMPLE_ROWS]]
        elif first is not None and (isinstance(first, (list, tuple)) or hasattr(first, "ndim")):
            rows = [list(row) for row in value[:EXAMPLE_ROWS]]
        else:
            rows = [list(value)]  # one row of features
    else:
        raise InvalidArgument(
            f"{where}: input_example is a {type(value).__name__}; give a pandas DataFrame, a "
            "numpy array or a list of rows"
        )
    if not rows or not any(len(row) for row in rows):
        raise InvalidArgument(f"{where}: input_example has no rows; give at least one")
    data = [[_plain(v) for v in row] for row in rows[:EXAMPLE_ROWS]]
    if columns is not None and len(columns) == len(data[0]):
        return {"columns": columns, "data": data}
    return {"data": data}


def _plain(value: Any) -> Any:
    """``value`` as a JSON value: numpy scalars as Python numbers, NaN and infinities as
    None, dates as ISO text, anything else unknown as its text."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item") and type(value).__module__ == "numpy":
        return _plain(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)
