"""The engine's API facade: run, inspect, retry and trace lineage.

The CLI, and later the UI and the scheduler, call these functions rather than the layers
below, so every entry point behaves the same. Stores are opened once per process per URL.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from .artifacts import ArtifactStore
from .config import Settings, load_settings
from .errors import (
    ConfigError,
    DefinitionError,
    GlasspaneError,
    NotFound,
    ParameterError,
    RunFailed,
)
from .execution.executors import Executor, make_executor
from .execution.planner import plan_run
from .execution.result import RunResult, TaskResult
from .execution.resume import Reusable, reusable_from_run
from .execution.runner import Progress, execute_run, new_run_id
from .store import MetadataStore
from .types import SUCCEEDED

if TYPE_CHECKING:
    from .dsl.pipeline import PipelineDef

_lock = threading.Lock()
_stores: dict[str, MetadataStore] = {}


def metadata_store(settings: Settings, *, create: bool = True) -> MetadataStore:
    """The process's :class:`MetadataStore` for the configured database URL.

    Args:
        create: create the database when it does not exist; readers pass False, so a
            mistyped URL or GLASSPANE_HOME creates nothing.

    Raises:
        NotFound: ``create`` is False and there is no database (the message names the
            setting that points there).
    """
    url = settings.resolved_database_url
    with _lock:
        store = _stores.get(url)
        if store is None:
            try:
                store = MetadataStore(url, create=create)
            except NotFound:
                raise _no_database(settings) from None
            _stores[url] = store
        return store


def artifact_store(settings: Settings) -> ArtifactStore:
    from .execution.worker import artifact_store as cached

    return cached(settings.resolved_artifact_root)


def run_pipeline(
    pipeline: PipelineDef[Any, Any],
    params: dict[str, Any],
    *,
    executor: str | Executor | None = None,
    raise_on_failure: bool = True,
    settings: Settings | None = None,
    progress: Progress | None = None,
    trigger: str = "manual",
    resumed_from: str | None = None,
    reuse: dict[str, Reusable] | None = None,
) -> RunResult:
    """Validate parameters, compile, and run ``pipeline``; see ``PipelineDef.run``."""
    from .loader import ref_for

    settings = settings or load_settings()
    graph = pipeline.compile(**params)  # parameter and definition errors: nothing written yet
    chosen = make_executor(
        executor,
        default=settings.resolved_executor,
        dask_address=settings.dask_address,
        dask_workers=settings.dask_workers,
        dask_lost_after=settings.dask_lost_after,
    )
    artifacts = artifact_store(settings)
    store = metadata_store(settings)
    run_id = new_run_id()
    plan = plan_run(graph, run_id, artifacts, reuse)
    if plan.jobs:  # a fully cached run never touches the executor (nor starts a cluster)
        artifacts.check_writable()  # an unwritable root: exit 2 now, not every task failing
        prepare = getattr(chosen, "prepare", None)  # an executor of the user's may have none
        if prepare is not None:
            prepare(plan.jobs)  # an unreachable cluster, resources no worker offers
    result = execute_run(
        graph,
        store=store,
        artifacts=artifacts,
        executor=chosen,
        pipeline_ref=ref_for(pipeline),
        params=graph.params,
        trigger=trigger,
        resumed_from=resumed_from,
        reuse=reuse,
        progress=progress,
        heartbeat_interval=settings.heartbeat_interval,
        run_id=run_id,
        plan=plan,
        raise_interrupt=raise_on_failure,
    )
    if raise_on_failure and result.state != SUCCEEDED:
        raise RunFailed(
            f"run {result.run_id} of pipeline `{result.pipeline}` {result.state}: "
            f"{result.error}; inspect it with `glasspane runs show {result.run_id}` and resume "
            f"it with `glasspane retry {result.run_id}`",
            result,
        ) from result.failure
    return result


def runs(
    *,
    limit: int = 50,
    pipeline: str | None = None,
    state: str | None = None,
    settings: Settings | None = None,
    missing_ok: bool = True,
) -> list[dict[str, Any]]:
    """Recent runs, newest first. A read: it never sweeps crashed runs (see :func:`sweep`).

    Args:
        missing_ok: with no database yet (nothing ever ran), return ``[]``; False raises
            :class:`NotFound` naming the setting that points there. No database is created.
    """
    settings = settings or load_settings()
    try:
        store = metadata_store(settings, create=False)
    except NotFound:
        if missing_ok:
            return []
        raise
    return store.list_runs(limit=limit, pipeline=pipeline, state=state)


def sweep_crashed(store: MetadataStore, settings: Settings) -> list[str]:
    """Mark runs whose driver stopped heart-beating as ``crashed`` (they can be retried)."""
    return store.mark_crashed(
        stale_after=max(settings.crash_after, 4 * settings.heartbeat_interval)
    )


def sweep(*, settings: Settings | None = None) -> list[str]:
    """The crash sweep as a maintenance step: mark runs whose driver stopped heart-beating
    (no heartbeat for ``crash_after`` seconds) ``crashed``, so they can be retried.

    Reads never sweep; ``glasspane runs sweep`` and the start of ``glasspane run`` do.

    Returns:
        The ids of the runs this call marked crashed; ``[]`` when there is no database yet
        (none is created).
    """
    settings = settings or load_settings()
    try:
        store = metadata_store(settings, create=False)
    except NotFound:
        return []
    return sweep_crashed(store, settings)


def get_run(run_id: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """One run with its tasks (accepts a unique id prefix). A read: it never sweeps."""
    settings = settings or load_settings()
    return _store_with_run(settings, run_id).get_run(run_id)


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """A stored run in the shape ``glasspane run --json`` prints."""
    tasks = [
        TaskResult(
            t["node"],
            t["task"],
            t["state"],
            bool(t["cached"]),
            t["attempts"] or 0,
            t.get("error"),
            t.get("duration"),
            t.get("note"),
            t.get("parent_node"),
        )
        for t in run["tasks"]
    ]
    result = RunResult(
        run["run_id"],
        run["pipeline"],
        run["state"],
        tasks,
        run.get("output"),
        run.get("error"),
        run.get("params") or {},
        run.get("resumed_from"),
    )
    data = result.to_dict()
    for key in ("created_at", "started_at", "ended_at", "duration", "trigger", "executor"):
        data[key] = run.get(key)
    for entry, task in zip(data["tasks"], run["tasks"]):
        entry["traceback"] = task.get("traceback")
    return data


def retry(
    run_id: str,
    *,
    pipeline: PipelineDef[Any, Any] | None = None,
    executor: str | Executor | None = None,
    raise_on_failure: bool = True,
    settings: Settings | None = None,
    progress: Progress | None = None,
    secrets: dict[str, Any] | None = None,
) -> RunResult:
    """Resume a failed, cancelled or crashed run as a new run linked to it.

    A task that succeeded in the old run is reused from the artifact store (even a
    ``cache=False`` one) when its cache key is the one it had there: same task, same code
    fingerprint (or ``version=``), same constants and same input content. A task whose code
    changed since, or whose inputs changed, runs again, and so does everything downstream
    whose inputs change with it; failed and not-yet-run tasks run. Each task's note says
    which. The old run keeps its state. The run uses the old run's parameters: secret ones
    (pydantic ``SecretStr``), which are never stored, are given again in ``secrets``; any
    other parameter is refused (start a new run to change it).
    """
    from .loader import load_pipeline

    settings = settings or load_settings()
    store = metadata_store(settings)
    sweep_crashed(store, settings)  # a run whose driver died can be resumed right away
    old = store.get_run(run_id)
    if old["state"] == SUCCEEDED:
        raise GlasspaneError(
            f"run {old['run_id']} succeeded; there is nothing to resume. Start a new run with "
            "`glasspane run` (cached tasks are reused automatically)"
        )
    if old["state"] in ("pending", "running"):
        raise GlasspaneError(
            f"run {old['run_id']} is still {old['state']}; wait for it to finish, or for its "
            "heartbeat to go stale, before resuming it"
        )
    if pipeline is None:
        ref = old.get("pipeline_ref")
        if not ref:
            raise DefinitionError(
                f"run {old['run_id']} was started from code glasspane cannot import again; "
                "pass the pipeline: glasspane.retry(run_id, pipeline=my_pipeline)"
            )
        pipeline = load_pipeline(ref)
    if pipeline.name != old["pipeline"]:
        raise DefinitionError(
            f"run {old['run_id']} is of pipeline `{old['pipeline']}`, not `{pipeline.name}`; "
            "pass the pipeline it ran"
        )
    params = _with_secrets(pipeline, old, dict(old.get("params") or {}), secrets or {})
    reuse = reusable_from_run(old)
    return run_pipeline(
        pipeline,
        params,
        executor=executor,
        raise_on_failure=raise_on_failure,
        settings=settings,
        progress=progress,
        trigger="retry",
        resumed_from=old["run_id"],
        reuse=reuse,
    )


def _with_secrets(
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
    ordinary = sorted(name for name in secrets if not _is_secret(fields[name].annotation))
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
        elif _is_secret(field.annotation) and params.get(name) is not None:
            missing.append(name)
    if missing:
        names = ", ".join(f"`{m}`" for m in missing)
        raise ParameterError(
            f"run {old['run_id']} had secret parameter{'s' if len(missing) > 1 else ''} {names}, "
            "which glasspane never stores; give them again: glasspane.retry(run_id, secrets="
            f"{{...}}) or `glasspane retry {old['run_id']} -p {missing[0]}=...`"
        )
    return params


def _is_secret(annotation: Any) -> bool:
    from pydantic import SecretBytes, SecretStr

    return annotation in (SecretStr, SecretBytes) or any(
        arg in (SecretStr, SecretBytes) for arg in getattr(annotation, "__args__", ())
    )


def lineage(
    run_id: str, node: str, *, direction: str = "upstream", settings: Settings | None = None
) -> dict[str, Any]:
    """The artifacts and task runs that fed ``node``'s output (upstream) or consumed it."""
    if direction not in ("upstream", "downstream"):
        raise ConfigError(f"direction must be `upstream` or `downstream`, not `{direction}`")
    settings = settings or load_settings()
    store = _store_with_run(settings, run_id)
    run = store.get_run(run_id)
    nodes = {t["node"] for t in run["tasks"]}
    if node not in nodes:
        raise NotFound(
            f"run {run['run_id']} has no node `{node}`; its nodes are: "
            f"{', '.join(sorted(nodes)[:30])}"
        )
    return store.lineage(run["run_id"], node, direction=direction)


def clear_cache(task: str | None = None, *, settings: Settings | None = None) -> int:
    """Forget cached outputs (all, or one task's); artifacts already recorded stay readable."""
    settings = settings or load_settings()
    return artifact_store(settings).clear_keys(task)


def _no_database(settings: Settings) -> NotFound:
    """No database where the settings point: say which setting, and what to do."""
    from .store import database_location

    where = database_location(settings.resolved_database_url)
    source = settings.source("database_url" if settings.database_url else "home")
    if source == "the default":
        return NotFound(
            f"no glasspane database exists at {where} (the default, under ~/.glasspane): "
            "nothing has run here yet, or set GLASSPANE_HOME or GLASSPANE_DATABASE_URL to where "
            "your runs are recorded"
        )
    return NotFound(
        f"no glasspane database exists at {where} ({source} points there): nothing has run "
        f"with this setting yet, or fix {source}"
    )


def _store_with_run(settings: Settings, run_id: str) -> MetadataStore:
    """The store to look ``run_id`` up in; with no database, no run has that id."""
    try:
        return metadata_store(settings, create=False)
    except NotFound:
        # `glasspane runs list` says where the database should be and which setting says so
        raise NotFound(f"no run `{run_id}`; list runs with `glasspane runs list`") from None


def task_logs(
    run_id: str, node: str, attempt: int | None = None, *, settings: Settings | None = None
) -> dict[str, Any]:
    """What one task run printed and logged, attempt by attempt, with its tracebacks.

    Args:
        run_id: the run's id or a unique prefix of it.
        node: the node id of the task run.
        attempt: only this attempt (1 is the first); None for all.

    Returns:
        ``{"run_id", "node", "task", "state", "cached", "cache_key", "note", "error",
        "attempts", "stdout", "stderr", "log_tail", "traceback"}``: ``attempts`` as
        :meth:`MetadataStore.attempts` returns them (each with its own text); the other text
        fields are the task run's, all attempts together (the final attempt's traceback).
        ``note`` says why there are no attempts (a cache hit and its key, or a task that
        never ran).

    Raises:
        NotFound: no database, run, node or attempt (the message lists what exists).
    """
    settings = settings or load_settings()
    store = _store_with_run(settings, run_id)
    run = store.get_run(run_id)
    attempts = store.attempts(run["run_id"], node)
    task = next(t for t in run["tasks"] if t["node"] == node)
    where = f"task run {run['run_id']}/{node}"
    if task["cached"]:
        note = f"cache hit: its output was reused from cache key {task['cache_key']}"
        if task.get("note"):
            note += f" ({task['note']})"
        note += ", so the task did not run in this run"
    elif not attempts:
        note = f"the task did not run in this run (state {task['state']})"
        if task.get("error") or task.get("note"):
            note += f": {task.get('error') or task.get('note')}"
    else:
        note = task.get("note")
    if attempt is not None:
        chosen = [a for a in attempts if a["attempt"] == attempt]
        if not chosen:
            have = ", ".join(str(a["attempt"]) for a in attempts)
            raise NotFound(
                f"{where} has no attempt {attempt}; "
                + (f"its attempts are: {have}" if have else f"it has no attempts: {note}")
            )
        attempts = chosen
    return {
        "run_id": run["run_id"],
        "node": node,
        "task": task["task"],
        "state": task["state"],
        "cached": task["cached"],
        "cache_key": task["cache_key"],
        "note": note,
        "error": task.get("error"),
        "attempts": attempts,
        **{key: task.get(key) for key in ("stdout", "stderr", "log_tail", "traceback")},
    }


def cached_tasks(*, settings: Settings | None = None) -> dict[str, int]:
    """How many cache entries the artifact store holds per task name, by name."""
    from collections import Counter

    settings = settings or load_settings()
    counts = Counter(
        entry["task"]
        for entry in artifact_store(settings).key_entries()
        if isinstance(entry.get("task"), str)
    )
    return dict(sorted(counts.items()))
