"""The engine's API facade: run, inspect, retry and trace lineage.

The CLI, and later the UI and the scheduler, call these functions rather than the layers
below, so every entry point behaves the same. Each function works in the default
:class:`~glasspane.workspace.Workspace` of its settings (or the ``workspace`` given).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from .artifacts import ArtifactStore
from .config import Settings, load_settings
from .errors import ConfigError, NotFound
from .events import Event
from .execution.executors import DEFAULT_POOL, Executor
from .execution.result import RunResult, TaskResult
from .execution.resume import Reusable
from .listeners import Listener
from .store import MetadataStore
from .workspace import Workspace

if TYPE_CHECKING:
    from .dsl.pipeline import PipelineDef


def metadata_store(settings: Settings, *, create: bool = True) -> MetadataStore:
    """The :class:`MetadataStore` of the default Workspace for ``settings``.

    Args:
        create: create the database when it does not exist; readers pass False, so a
            mistyped URL or GLASSPANE_HOME creates nothing.

    Raises:
        NotFound: ``create`` is False and there is no database (the message names the
            setting that points there).
    """
    ws = default_workspace(settings)
    return ws.store if create else ws.reader()


def artifact_store(settings: Settings) -> ArtifactStore:
    return default_workspace(settings).artifacts


def run_pipeline(
    pipeline: PipelineDef[Any, Any],
    params: dict[str, Any],
    *,
    executor: str | Executor | None = None,
    raise_on_failure: bool = True,
    settings: Settings | None = None,
    listeners: Sequence[Listener] = (),
    trigger: str = "manual",
    resumed_from: str | None = None,
    reuse: dict[str, Reusable] | None = None,
    workspace: Workspace | None = None,
    run_id: str | None = None,
) -> RunResult:
    """Validate parameters, compile, and run ``pipeline``; see ``PipelineDef.run``."""
    if workspace is not None and settings is not None:
        raise ConfigError("pass settings or workspace, not both: a Workspace has its settings")
    ws = workspace or default_workspace(settings)
    return ws.run(
        pipeline,
        params,
        executor=executor,
        raise_on_failure=raise_on_failure,
        listeners=listeners,
        trigger=trigger,
        resumed_from=resumed_from,
        reuse=reuse,
        run_id=run_id,
    )


def follow(
    run_id: str,
    *,
    after: int = 0,
    timeout: float | None = None,
    settings: Settings | None = None,
) -> Iterator[Event]:
    """The events of ``run_id`` as the process running it records them, until it finishes;
    see :meth:`Workspace.follow <glasspane.workspace.Workspace.follow>`."""
    return default_workspace(settings).follow(run_id, after=after, timeout=timeout)


def cancel(run_id: str, *, settings: Settings | None = None) -> bool:
    """Ask the process running ``run_id`` to cancel it; False when it is already over. See
    :meth:`Workspace.cancel <glasspane.workspace.Workspace.cancel>`."""
    return default_workspace(settings).cancel(run_id)


def runs(
    *,
    limit: int = 50,
    pipeline: str | None = None,
    state: str | None = None,
    trigger: str | Sequence[str] | None = None,
    schedule: str | None = None,
    settings: Settings | None = None,
    missing_ok: bool = True,
) -> list[dict[str, Any]]:
    """Recent runs, newest first. A read: it never sweeps crashed runs (see :func:`sweep`).

    The filters and the summaries' keys are those of :meth:`MetadataStore.list_runs`.

    Args:
        trigger: only runs started this way (``schedule``, ``backfill``...), or any of several.
        schedule: only runs the schedule of this name launched.
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
    return store.list_runs(
        limit=limit, pipeline=pipeline, state=state, trigger=trigger, schedule=schedule
    )


def sweep(*, settings: Settings | None = None) -> list[str]:
    """The crash sweep as a maintenance step: mark runs whose driver stopped heart-beating
    (no heartbeat for ``crash_after`` seconds) ``crashed``, so they can be retried.

    Reads never sweep; ``glasspane runs sweep`` and the start of ``glasspane run`` do.

    Returns:
        The ids of the runs this call marked crashed; ``[]`` when there is no database yet
        (none is created).
    """
    return default_workspace(settings).sweep()


def get_run(run_id: str, *, settings: Settings | None = None) -> dict[str, Any]:
    """One run with its tasks (accepts a unique id prefix). A read: it never sweeps."""
    settings = settings or load_settings()
    return _store_with_run(settings, run_id).get_run(run_id)


def run_summary(run: dict[str, Any]) -> dict[str, Any]:
    """A stored run in the shape ``glasspane run --json`` prints."""
    tasks = [TaskResult.from_record(t) for t in run["tasks"]]
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
    for key in (
        "created_at",
        "started_at",
        "ended_at",
        "duration",
        "trigger",
        "schedule",
        "scheduled_for",
        "upstream_run_id",
        "executor",
    ):
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
    listeners: Sequence[Listener] = (),
    secrets: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
    new_run_id: str | None = None,
) -> RunResult:
    """Resume a failed, cancelled or crashed run as a new run linked to it.

    A task that succeeded in the old run is reused from the artifact store (even a
    ``cache=False`` one) when its cache key is the one it had there: same task, same code
    fingerprint (or ``version=``), same constants and same input content. A task whose code
    changed since, or whose inputs changed, runs again, and so does everything downstream
    whose inputs change with it; failed and not-yet-run tasks run. Each task's note says
    which. The old run keeps its state. The run uses the old run's parameters: secret ones
    (pydantic ``SecretStr``), which are never stored, are given again in ``secrets``; any
    other parameter is refused (start a new run to change it). ``new_run_id`` is that of a
    retry ``Workspace.launch_retry`` queued.
    """
    ws = workspace or default_workspace(settings)
    return ws.retry(
        run_id,
        pipeline=pipeline,
        executor=executor,
        raise_on_failure=raise_on_failure,
        listeners=listeners,
        secrets=secrets,
        new_run_id=new_run_id,
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


# ---- the default Workspaces ------------------------------------------------------------------

_defaults: dict[tuple[str, str], Workspace] = {}
_defaults_lock = threading.Lock()


def default_workspace(settings: Settings | None = None) -> Workspace:
    """The module-level API's Workspace for ``settings`` (default: the loaded settings).

    One per database URL and artifact root, all sharing the process's Dask executors.
    """
    settings = settings or load_settings()
    key = (settings.resolved_database_url, settings.resolved_artifact_root)
    with _defaults_lock:
        ws = _defaults.get(key)
        if ws is None or ws._closed:
            ws = _defaults[key] = Workspace(settings, executors=DEFAULT_POOL)
        else:
            ws.settings = settings  # the same stores; the latest executor/heartbeat settings
        return ws


def close_default_workspaces() -> None:
    """Close every default Workspace's stores (the shared Dask executors stay)."""
    with _defaults_lock:
        workspaces = list(_defaults.values())
        _defaults.clear()
    for ws in workspaces:
        ws.close()
