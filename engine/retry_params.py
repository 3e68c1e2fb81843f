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
    secret = {name: is_secret(field.annotation) for name, field in fields.items()}
    check_secrets(pipeline.name, pipeline.describe_params(), secret, old, secrets)
    params.update(secrets)
    return params


def check_secrets(
    pipeline: str,
    described: str,
    secret: dict[str, bool],
    old: dict[str, Any],
    secrets: dict[str, Any],
) -> None:
    """Raise unless ``secrets`` gives exactly the secret parameters run ``old`` had.

    Args:
        pipeline: its name; ``described``: its parameters, for messages.
        secret: each parameter of the pipeline (in order) -> whether it is secret.

    Raises:
        ParameterError: an unknown or a non-secret parameter is given, or a secret one the
            old run had is missing.
    """
    unknown = sorted(set(secrets) - set(secret))
    if unknown:
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for "
            f"pipeline `{pipeline}`; it takes: {described}"
        )
    ordinary = sorted(name for name in secrets if not secret[name])
    if ordinary:
        name = ordinary[0]
        ref = old.get("pipeline_ref") or f"FILE.py:{pipeline}"
        given = ", ".join(f"`{n}`" for n in ordinary)
        raise ParameterError(
            f"retry takes only secret parameters, and {given} of pipeline `{pipeline}` "
            f"{'is not one' if len(ordinary) == 1 else 'are not'}: run {old['run_id']} "
            f"computed its outputs with `{name}={old.get('params', {}).get(name)!r}`, which a "
            "retry reuses; to run with a new value, start a new run: "
            f"`glasspane run {ref} -p {name}=...` (or `{pipeline}.run({name}=...)`)"
        )
    had = old.get("params") or {}
    missing = [n for n, s in secret.items() if s and n not in secrets and had.get(n) is not None]
    if missing:
        names = ", ".join(f"`{m}`" for m in missing)
        raise ParameterError(
            f"run {old['run_id']} had secret parameter{'s' if len(missing) > 1 else ''} {names}, "
            "which glasspane never stores; give them again: glasspane.retry(run_id, secrets="
            f"{{...}}) or `glasspane retry {old['run_id']} -p {missing[0]}=...`"
        )


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
