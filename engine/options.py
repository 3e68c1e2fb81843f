"""Task options, declared once.

:class:`TaskOptions` is the single place a task's behaviour is described: the ``@task``
decorator, ``TaskDef.with_options`` and serialisation all go through it, so a new option
is added here and nowhere else.
"""

from __future__ import annotations

import difflib
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import DefinitionError, describe_validation


class TaskOptions(BaseModel):
    """How a task is retried, timed out, cached and stored.

    Attributes:
        name: display name and node-id prefix; defaults to the function's name.
        retries: extra attempts after a failure (0 = run once).
        retry_delay: seconds to wait before the first retry.
        backoff: multiplier applied to the delay after each retry (1 = constant).
        timeout: seconds an attempt may run before it is abandoned as ``timed_out``.
        cache: reuse an earlier output when code, version and inputs are unchanged.
        cache_expiration: seconds (or a ``timedelta``) after which a cached output is stale.
        version: replaces the source hash in the cache key (bump it to invalidate).
        tags: free-form labels shown in the UI.
        persist: store the output in the artifact store; ``False`` keeps it in memory only
            (no cache, no resume).
        resources: abstract resources a Dask worker must offer (``{"GPU": 1}``).
        track: hand the task's outputs to the configured trackers as artifacts (MLflow
            artifacts, W&B artifacts), besides storing them.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    name: str | None = None
    retries: int = Field(default=0, ge=0)
    retry_delay: float = Field(default=0.0, ge=0)
    backoff: float = Field(default=1.0, ge=1.0)
    timeout: float | None = Field(default=None, gt=0)
    cache: bool = True
    cache_expiration: float | None = Field(default=None, gt=0)
    version: str | None = None
    tags: tuple[str, ...] = ()
    persist: bool = True
    resources: dict[str, float] = Field(default_factory=dict)
    track: bool = False

    @field_validator("cache_expiration", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        if isinstance(value, timedelta):
            return value.total_seconds()
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags(cls, value: Any) -> Any:
        if isinstance(value, str):
            return (value,)
        return value  # other iterables are converted by the field; the rest rejected with a message

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before ``attempt`` (2 = first retry)."""
        if attempt <= 1:
            return 0.0
        return self.retry_delay * self.backoff ** (attempt - 2)

    @property
    def reads_cache(self) -> bool:
        return self.cache and self.persist


def make_options(where: str, base: TaskOptions | None = None, **changes: Any) -> TaskOptions:
    """Validate ``changes`` on top of ``base``; raise :class:`DefinitionError` naming ``where``."""
    values = base.model_dump() if base is not None else {}
    values.update(changes)
    try:
        return TaskOptions(**values)
    except ValidationError as exc:
        known = list(TaskOptions.model_fields)
        hints = []
        for name in (n for n in changes if n not in known):
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(
                f"`{name}` is not an option" + (f" (did you mean `{close[0]}`?)" if close else "")
            )
        accepted = f": {', '.join(known)}" if hints else ""
        raise DefinitionError(
            f"invalid options for {where}: {describe_validation(exc)}"
            f"{''.join(f'; {h}' for h in hints)}; see TaskOptions for the accepted options"
            f"{accepted}"
        ) from None
