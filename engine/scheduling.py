"""Registering schedules in a workspace: from code (``glasspane schedule sync``), from the
shell (``glasspane schedule add``), pausing, resuming and removing them.

A schedule is stored by its stable name with its pipeline reference and its definition (the
:class:`~glasspane.schedules.Schedule` fields as JSON); registering the same name again
updates it in place, never creating a second identity. The fire times themselves come from
the pure functions of :mod:`glasspane.schedules`; the loop that launches them is
:mod:`glasspane.scheduler`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from .dsl.pipeline import PipelineDef, validate_params
from .errors import DefinitionError, InvalidArgument, ParameterError
from .loader import canonical_ref, load_module, module_ref, split_ref
from .schedules import Schedule, next_fire_times, schedule_of, spec_of
from .store import MetadataStore


@dataclass(frozen=True)
class Registered:
    """A schedule :func:`register` or :func:`sync` wrote.

    Attributes:
        name: the schedule's name.
        pipeline_ref: the pipeline it launches (``/abs/file.py:name`` or ``module:name``).
        outcome: ``created``, ``updated`` or ``unchanged``.
        next_fire_at: its next fire time (UTC), or None (``after`` schedules, paused ones).
    """

    name: str
    pipeline_ref: str
    outcome: str
    next_fire_at: datetime | None


@dataclass(frozen=True)
class Synced:
    """What :func:`sync` did: the schedules it registered, and the ones registered earlier
    from the same file or module that it no longer declares (left as they are: remove them
    with ``glasspane schedule remove``)."""

    registered: list[Registered]
    undeclared: list[str]


def first_fire(schedule: Schedule, now: datetime) -> datetime | None:
    """The first fire time at ``now`` or later (a schedule is active from the instant it is
    created or resumed, that instant included, as :func:`~glasspane.schedules.due` counts);
    None for an ``after`` schedule."""
    if schedule.kind == "after":
        return None
    times = next_fire_times(schedule, now - timedelta(microseconds=1), 1)
    return times[0] if times else None


def register(
    store: MetadataStore, reference: str, schedule: Schedule, *, now: datetime | None = None
) -> Registered:
    """Register ``schedule`` (its ``name`` set) for pipeline ``reference``, or update the
    schedule of that name in place; a schedule created paused starts paused.

    Raises:
        DefinitionError: the reference is malformed, or the schedule has no name.
    """
    split_ref(reference)
    if not schedule.name:
        raise DefinitionError("a schedule needs a name to be registered; pass name=...")
    reference = canonical_ref(reference)
    now = now or datetime.now(timezone.utc)
    next_fire_at = first_fire(schedule, now)
    outcome = store.upsert_schedule(
        schedule.name, reference, spec_of(schedule), next_fire_at, at=now
    )
    if outcome == "created" and schedule.paused:
        store.pause_schedule(schedule.name)
    row = store.get_schedule(schedule.name)
    return Registered(
        schedule.name, reference, outcome, None if row["paused"] else row["next_fire_at"]
    )


def add(
    store: MetadataStore,
    reference: str,
    schedule: Schedule,
    *,
    now: datetime | None = None,
) -> Registered:
    """Register ``schedule`` for pipeline ``reference`` after importing the pipeline to check
    the schedule's params against its signature (``glasspane schedule add``).

    Raises:
        DefinitionError: the pipeline cannot be imported, or the params do not fit it.
    """
    from .loader import load_pipeline

    pipeline = load_pipeline(reference)
    if schedule.name is None:
        schedule = schedule.model_copy(update={"name": pipeline.name})
    if schedule.after == pipeline.name:
        raise DefinitionError(
            f"schedule `{schedule.name}` would run pipeline `{pipeline.name}` after itself, "
            "which would never stop; name another pipeline with --after"
        )
    _check_params(pipeline, schedule)
    return register(store, pipeline.ref or reference, schedule, now=now)


def _check_params(pipeline: PipelineDef[Any, Any], schedule: Schedule) -> None:
    try:
        validate_params(pipeline.params_model, pipeline.name, schedule.params)
    except ParameterError as exc:
        raise DefinitionError(
            f"schedule `{schedule.name}`: its params do not fit pipeline `{pipeline.name}`: {exc}"
        ) from None


def sync(store: MetadataStore, target: str, *, now: datetime | None = None) -> Synced:
    """Register every schedule that the pipelines in ``target`` (a ``.py`` file or an
    importable module) declare, by name, updating those registered before.

    Raises:
        DefinitionError: ``target`` cannot be imported, declares no schedule, or two of its
            pipelines declare schedules of the same name.
    """
    if ":" in target:
        raise DefinitionError(
            f"`{target}` names one pipeline; pass the file or module that declares schedules "
            f"(`{target.rpartition(':')[0]}`): every schedule in it is registered"
        )
    module = load_module(target)
    found: dict[str, tuple[str, Schedule]] = {}
    for attr, value in sorted(vars(module).items()):
        if not isinstance(value, PipelineDef) or value.schedule is None:
            continue
        if value.fn.__module__ != module.__name__:
            continue  # imported from elsewhere: registered where it is declared
        schedule = value.schedule
        assert schedule.name is not None  # @pipeline names it
        if schedule.name in found:
            raise DefinitionError(
                f"`{target}`: pipelines `{found[schedule.name][0].rpartition(':')[2]}` and "
                f"`{attr}` both declare schedule `{schedule.name}`; give one of them "
                "Schedule(name=...)"
            )
        found[schedule.name] = (f"{module_ref(target)}:{attr}", schedule)
    if not found:
        raise DefinitionError(
            f"no pipeline in `{target}` declares a schedule; declare one with "
            '@pipeline(schedule="0 3 * * *") or @pipeline(schedule=Schedule(...)), or register '
            "one from the shell: glasspane schedule add FILE.py:NAME --cron EXPR"
        )
    registered = [register(store, ref, schedule, now=now) for ref, schedule in found.values()]
    prefix = module_ref(target) + ":"
    undeclared = [
        row["name"]
        for row in store.list_schedules()
        if row["pipeline_ref"].startswith(prefix) and row["name"] not in found
    ]
    return Synced(registered, undeclared)


def resume(store: MetadataStore, name: str, *, now: datetime | None = None) -> bool:
    """Resume schedule ``name`` from now: what it missed while paused is not caught up.
    False if it was not paused. Raises NotFound."""
    schedule = schedule_of(store.get_schedule(name))
    now = now or datetime.now(timezone.utc)
    return store.resume_schedule(name, first_fire(schedule, now), at=now)


def upcoming(row: dict[str, Any], count: int, *, now: datetime | None = None) -> list[datetime]:
    """The next ``count`` fire times of a stored schedule (UTC; none for ``after`` schedules);
    a paused one's as if it were resumed now."""
    if count < 1:
        raise InvalidArgument(f"count must be 1 or more, not {count}")
    schedule = schedule_of(row)
    if schedule.kind == "after":
        return []
    return next_fire_times(schedule, now or datetime.now(timezone.utc), count)


__all__ = [
    "Registered",
    "Synced",
    "add",
    "first_fire",
    "register",
    "resume",
    "schedule_of",
    "spec_of",
    "sync",
    "upcoming",
]
