"""The parameters of a retry (the old run's, with its secret ones given again), and whether
a run can be retried at all.

A retry reuses outputs computed with the old run's parameter values, so only secret
parameters (pydantic ``SecretStr`` / ``SecretBytes``, which are never stored) may be given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import GlasspaneError, ParameterError, RunStillActive
from .types import SUCCEEDED, TERMINAL_STATES

if TYPE_CHECKING:
    from .dsl.pipeline import PipelineDef


def with_secrets(
    pipeline: PipelineDef[Any, Any],
    old: dict[str, Any],
    params: dict[str, Any],
    secrets: dict[str, Any],
) -> dict[str, Any]:
    """The old run's parameters with its secret ones given again (they were never stored).

    Only secret parameters may be given: the retry reuses outputs computed with the old
    run's values of every other parameter, so a new value would be recorded against
    outputs it did not produce.
    """
    fields = pipeline.params_model.model_fields
    unknown = sorted(set(secrets) - set(fields))
    if unknown:
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for "
            f"pipeline `{pipeline.name}`; it takes: {pipeline.describe_params()}"
        )
    ordinary = sorted(name for name in secrets if not is_secret(fields[name].annotation))
    if ordinary:
        name = ordinary[0]
        ref = old.get("pipeline_ref") or f"FILE.py:{pipeline.name}"
        given = ", ".join(f"`{n}`" for n in ordinary)
        raise ParameterError(
            f"retry takes only secret parameters, and {given} of pipeline `{pipeline.name}` "
            f"{'is not one' if len(ordinary) == 1 else 'are not'}: run {old['run_id']} "
            f"computed its outputs with `{name}={old.get('params', {}).get(name)!r}`, which a "
            "retry reuses; to run with a new value, start a new run: "
            f"`glasspane run {ref} -p {name}=...` (or `{pipeline.name}.run({name}=...)`)"
        )
    missing = []
    for name, field in fields.items():
        if name in secrets:
            params[name] = secrets[name]
        elif is_secret(field.annotation) and params.get(name) is not None:
            missing.append(name)
    if missing:
        names = ", ".join(f"`{m}`" for m in missing)
        raise ParameterError(
            f"run {old['run_id']} had secret parameter{'s' if len(missing) > 1 else ''} {names}, "
            "which glasspane never stores; give them again: glasspane.retry(run_id, secrets="
            f"{{...}}) or `glasspane retry {old['run_id']} -p {missing[0]}=...`"
        )
    return params


def is_secret(annotation: Any) -> bool:
    from pydantic import SecretBytes, SecretStr

    return annotation in (SecretStr, SecretBytes) or any(
        arg in (SecretStr, SecretBytes) for arg in getattr(annotation, "__args__", ())
    )


def check_retryable(old: dict[str, Any]) -> None:
    """Raise unless run ``old`` (a ``get_run`` dict) can be resumed: it must be over, and
    not have succeeded.

    Raises:
        RunStillActive: it is queued, pending or running.
        GlasspaneError: it succeeded (nothing to resume).
    """
    if old["state"] == SUCCEEDED:
        raise GlasspaneError(
            f"run {old['run_id']} succeeded; there is nothing to resume. Start a new run "
            "with `glasspane run` (cached tasks are reused automatically)"
        )
    if old["state"] not in TERMINAL_STATES:
        raise RunStillActive(
            f"run {old['run_id']} is still {old['state']}; wait for it to finish (or cancel "
            "it: glasspane cancel RUN), or for its heartbeat to go stale, before resuming it"
        )
