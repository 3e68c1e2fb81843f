"""glasspane's own model registry, as user code sees it: ``register_model`` inside a task,
``load_model`` by reference (``churn``, ``churn/3``, ``churn@champion``).

A registration stores the model in the artifact store (like a task output) and reports it to
the run's driver, which records the new version in the metadata store with the task run that
registered it — and through that task run's lineage, the data it was trained on (see
:mod:`glasspane.store.registry`). Aliases (``champion``), not stages, name the version to use;
``glasspane models promote`` moves them.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .errors import GlasspaneError, InvalidArgument
from .events import wire
from .execution.context import current_context as current
from .store.registry import check_name, parse_ref
from .types import ArtifactInfo

if TYPE_CHECKING:
    from .workspace import Workspace


def register_model(
    name: str, model: Any, *, alias: str | None = None, metadata: dict[str, Any] | None = None
) -> None:
    """Register ``model`` as a new version of model ``name`` (numbered from 1 per name) from
    inside a running task; with ``alias``, point that alias (``"champion"``) at it.

    ``metadata`` (JSON values) is kept with the version. The model is stored like a task
    output (pickle for a scikit-learn estimator), and the version is recorded with the run
    and task that registered it.

    Raises:
        GlasspaneError: called outside a running task.
        InvalidArgument: a bad model or alias name, or metadata that is not JSON.
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
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(
            f"register_model({name!r}) in task `{ctx.task}`: metadata must be JSON values "
            f"(numbers, strings, lists, dicts): {exc}"
        ) from None
    info = ctx.artifacts.put(model, where=f"register_model({name!r}) in task `{ctx.task}`")
    ctx.emit(
        wire(
            "model_registered", ctx.node_id, name=name, alias=alias, metadata=metadata,
            artifact=info.to_dict(),
        )
    )  # fmt: skip


def load_model(ref: str, *, workspace: Workspace | None = None) -> Any:
    """The model ``ref`` names: ``"churn"`` (its latest version), ``"churn/3"`` or
    ``"churn@champion"``, loaded from the artifact store of ``workspace`` (default: the one
    the configuration describes).

    Raises:
        GlasspaneError: called inside a running task (not supported yet: load it before the
            run and pass it in, or pass the reference as a parameter and load it outside).
        InvalidArgument: ``ref`` is not a model reference.
        NotFound: no such model, version or alias (naming what there is).
    """
    if current() is not None:
        raise GlasspaneError(
            f"load_model({ref!r}) inside a task is not supported yet: a task's workers may "
            "have no access to the metadata store; load the model outside the run and pass it "
            "to the pipeline"
        )
    parse_ref(ref)  # a malformed reference is said before any store is opened
    if workspace is None:
        from .api import default_workspace

        workspace = default_workspace()
    row = workspace.reader().resolve_model(ref)
    info = ArtifactInfo(
        content_hash=row["content_hash"], uri=row["uri"], digest=row["digest"],
        type_name=row["type_name"], materializer=row["materializer"], size=row["size"],
    )  # fmt: skip
    return workspace.artifacts.get(info)
