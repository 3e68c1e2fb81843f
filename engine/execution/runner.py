"""The run loop: one function that takes a compiled graph to a recorded, finished run.

It creates the run row, plans (cache hits and resumed outputs are resolved here, on the
driver), hands the remaining jobs to the executor, records the events the jobs report in
batches from one recorder thread, keeps the run's heartbeat, and sets the final state with
compare-and-set so that a terminal state is never overwritten. Only this module's driver
process writes to the metadata store.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..artifacts import ArtifactStore
from ..dsl.tracing import Ref, substitute
from ..events import RunFinished, wire
from ..graph import Graph
from ..listeners import Dispatcher, Listener
from ..store import MetadataStore
from ..types import (
    CANCELLED,
    FAILED,
    RUNNING,
    SUCCEEDED,
    UPSTREAM_FAILED,
    ArtifactInfo,
)
from .executors.base import Execution, Executor
from .fusion import assign_estimates
from .job import Job
from .model_reads import shared
from .outcomes import describe, task_finished
from .planner import Plan, plan_run
from .recording import Heartbeat, Recorder
from .result import RunResult, TaskResult, jsonable
from .resume import Reusable
from .worker import execute_job


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def execute_run(
    graph: Graph,
    *,
    store: MetadataStore,
    artifacts: ArtifactStore,
    executor: Executor,
    pipeline_ref: str | None,
    params: Mapping[str, Any],
    params_schema: dict[str, Any] | None = None,
    trigger: str = "manual",
    resumed_from: str | None = None,
    reuse: Mapping[str, Reusable] | None = None,
    listeners: Sequence[Listener] = (),
    strict_listeners: bool = False,
    heartbeat_interval: float = 5.0,
    run_id: str | None = None,
    plan: Plan | None = None,
    raise_interrupt: bool = True,
) -> RunResult:
    """Run ``graph`` to a terminal state and return its :class:`RunResult`.

    ``plan`` (from :func:`~glasspane.execution.planner.plan_run` with the same ``run_id``)
    lets the caller look at what must execute before the run is recorded. On Ctrl-C or
    SIGTERM the run is recorded as cancelled, then the interrupt is re-raised unless
    ``raise_interrupt`` is false (the result, with state ``cancelled``, is returned).

    ``listeners`` hear every event of the run (see :mod:`glasspane.listeners`); the call
    returns once they have heard ``RunFinished``. With ``strict_listeners``, a listener that
    raises fails the run.
    """
    run_id = run_id or new_run_id()
    version_id = store.ensure_pipeline_version(
        graph.pipeline,
        graph.version_hash,
        graph.to_json(),
        reference=pipeline_ref,
        params_schema=params_schema,
    )
    store.create_run(
        run_id=run_id,
        pipeline_name=graph.pipeline,
        version_id=version_id,
        pipeline_ref=pipeline_ref,
        params=jsonable(dict(params)),
        executor=executor.name,
        trigger=trigger,
        resumed_from=resumed_from,
        nodes=[(node.id, node.task.name) for node in graph],
    )
    store.set_run_state(run_id, RUNNING)
    began = time.time()
    dispatcher = Dispatcher(run_id, listeners, strict_listeners)
    recorder = Recorder(store, run_id, dispatcher)
    recorder.keep_outputs = {ref.node for ref in graph.output_refs()}
    recorder.emit(
        wire(
            "run_started", "", pipeline=graph.pipeline, version=graph.version_hash,
            reference=pipeline_ref, params=jsonable(dict(params)), trigger=trigger,
            executor=executor.name, resumed_from=resumed_from, nodes=len(graph),
        )
    )  # fmt: skip
    cancel = threading.Event()
    heartbeat = Heartbeat(store, run_id, heartbeat_interval, cancel.set)
    execution = Execution()
    interrupted: BaseException | None = None
    try:
        if plan is None:
            plan = plan_run(graph, run_id, artifacts, reuse)
        if plan.jobs:
            _recall_durations(store, graph, plan.jobs)
        for event in plan.events:
            recorder.emit(event)
        if plan.jobs:
            for job in plan.jobs:  # where a task's glasspane.load_model reads the registry
                job.metadata_url = store.url
            want = {r.node for r in graph.output_refs()} - set(plan.resolved)
            with shared(store):
                execution = executor.execute(plan.jobs, recorder.emit, want, cancel, execute_job)
    except (KeyboardInterrupt, SystemExit) as exc:
        cancel.set()
        execution.cancelled = True
        interrupted = exc
    except Exception as exc:  # noqa: BLE001 - an engine error ends the run as failed
        execution.errors["<run>"] = exc
    finally:
        heartbeat.stop()
    cancelled = execution.cancelled or cancel.is_set()
    _settle(graph, recorder, execution, cancelled)
    problem: str | None = None
    try:
        recorder.close()
    except Exception as exc:  # noqa: BLE001 - the run must still end, saying why
        problem = (
            f"the metadata store could not record this run's task events ({describe(exc)}); "
            "the recorded tasks may be incomplete: check the database, then run again"
        )
    try:
        result = _result(
            graph,
            run_id,
            recorder,
            execution,
            artifacts,
            plan_resolved(recorder, {ref.node for ref in graph.output_refs()}),
            cancelled,
            params,
            resumed_from,
        )
    except Exception as exc:  # noqa: BLE001 - e.g. an output's blob vanished meanwhile
        result = _result(
            graph, run_id, recorder, execution, artifacts, {}, cancelled, params, resumed_from,
            load_output=False,
        )  # fmt: skip
        problem = problem or (
            f"the pipeline's output could not be loaded ({describe(exc)}); run it again"
        )
    if dispatcher.strict_any:
        dispatcher.drain()
        problem = problem or dispatcher.failure
    if problem is not None and result.state != CANCELLED:
        result.state, result.error, result.output = FAILED, problem, None
    if heartbeat.lost:  # someone else ended the run (a crash sweep): report, never overwrite
        stored = store.get_run(run_id)
        result.state, result.error = stored["state"], stored.get("error")
    finished = RunFinished(
        run_id=run_id, seq=recorder.seq + 1, state=result.state, error=result.error,
        duration=round(time.time() - began, 6),
    )  # fmt: skip
    if heartbeat.lost:
        recorder.finish(finished)
    else:  # the final state and RunFinished in one transaction: a follower sees both or neither
        store.set_run_state(
            run_id, result.state, error=result.error, output=jsonable(result.output),
            log=[finished.to_dict()],
        )  # fmt: skip
        recorder.finish(finished, logged=True)
    dispatcher.close()
    if interrupted is not None and raise_interrupt:
        raise interrupted
    return result


def _recall_durations(store: MetadataStore, graph: Graph, jobs: Sequence[Job]) -> None:
    """Give each job the upper estimate of its duration (which decides batching on Dask)
    from the pipeline's recent runs in the store: the same in every process, whatever it
    has run before."""
    try:
        durations = store.task_durations(graph.pipeline)
    except Exception:  # noqa: BLE001 - an estimate only: the run goes on without it
        return
    assign_estimates(jobs, durations)


def plan_resolved(recorder: Recorder, nodes: Iterable[str]) -> dict[str, list[ArtifactInfo]]:
    """Outputs of those of ``nodes`` that finished successfully, from their task_finished
    events (only the pipeline's outputs are read: not one record per node of a large map)."""
    found = {}
    for node in nodes:
        event = recorder.finished.get(node)
        if event is not None and event["state"] == SUCCEEDED and event.get("parent") is None:
            found[node] = [ArtifactInfo.from_dict(o["artifact"]) for o in event["outputs"]]
    return found


def _settle(graph: Graph, recorder: Recorder, execution: Execution, cancelled: bool) -> None:
    """Give every node that reported no outcome its final state, driver-side."""
    recorder.barrier()
    failed: set[str] = set()
    for node in graph:
        event = recorder.finished.get(node.id)
        if event is not None:
            if event["state"] != SUCCEEDED:
                failed.add(node.id)
            continue
        now = time.time()
        if cancelled:
            state, error = CANCELLED, "the run was cancelled"
            failed.add(node.id)
        elif any(u in failed for u in node.upstream):
            state, error = UPSTREAM_FAILED, "an upstream task failed"
            failed.add(node.id)
        else:
            exc = execution.errors.get(node.id) or execution.errors.get("<run>")
            state = FAILED
            error = (
                f"{type(exc).__name__}: {exc}"
                if exc is not None
                else "the executor reported no outcome for this task"
            )
            failed.add(node.id)
            recorder.emit(
                task_finished(
                    node.id,
                    node.task.name,
                    state,
                    ended=now,
                    error=error,
                    attempts=recorder.attempts.get(node.id, 0),
                    map_index=node.map_index,
                )
            )
            continue
        recorder.emit(
            {
                "kind": "task_skipped",
                "node": node.id,
                "task": node.task.name,
                "state": state,
                "ts": now,
                "error": error,
            }
        )
    recorder.barrier()


def _result(
    graph: Graph,
    run_id: str,
    recorder: Recorder,
    execution: Execution,
    artifacts: ArtifactStore,
    resolved: dict[str, list[ArtifactInfo]],
    cancelled: bool,
    params: Mapping[str, Any],
    resumed_from: str | None,
    load_output: bool = True,
) -> RunResult:
    tasks: list[TaskResult] = []
    states: dict[str, str] = {}
    for event in recorder.finished.values():
        if event.get("parent") is not None:
            tasks.append(_task_result(event))
    static = []
    for node in graph:
        finished = recorder.finished.get(node.id)
        if finished is not None:
            static.append(_task_result(finished))
        else:
            skipped = recorder.skipped.get(node.id, {})
            static.append(
                TaskResult(
                    node.id,
                    node.task.name,
                    skipped.get("state", CANCELLED),
                    False,
                    recorder.attempts.get(node.id, 0),
                    skipped.get("error"),
                )
            )
        states[node.id] = static[-1].state
    children = {t.parent: [] for t in tasks}  # type: dict[str | None, list[TaskResult]]
    for t in tasks:
        children[t.parent].append(t)
    ordered: list[TaskResult] = []
    for t in static:
        ordered.append(t)
        ordered.extend(sorted(children.get(t.node, []), key=lambda c: _map_pos(c.node)))
    if cancelled:
        state = CANCELLED
    elif all(s == SUCCEEDED for s in states.values()):
        state = SUCCEEDED
    else:
        state = FAILED
    error = None
    if state == FAILED:
        bad = [t for t in static if t.state not in (SUCCEEDED, UPSTREAM_FAILED)]
        error = "; ".join(f"task `{t.node}` {t.state}: {t.error}" for t in bad[:5]) or None
    elif state == CANCELLED:
        error = "the run was cancelled"
    output = None
    if state == SUCCEEDED and load_output:

        def value_of(ref: Ref) -> Any:
            if ref.node in execution.values:
                return execution.values[ref.node].output(ref.output)
            return artifacts.get(resolved[ref.node][ref.output or 0])

        output = substitute(graph.output, value_of)
    failure = None
    if state == FAILED:
        first = next((n.id for n in graph if n.id in execution.failures), None)
        if first is not None:
            failure = execution.failures[first].cause or execution.failures[first]
    return RunResult(
        run_id,
        graph.pipeline,
        state,
        ordered,
        output,
        error,
        dict(params),
        resumed_from,
        failure,
    )


def _map_pos(node_id: str) -> int:
    try:
        return int(node_id.rsplit("[", 1)[1].rstrip("]"))
    except (IndexError, ValueError):
        return 0


def _task_result(event: dict[str, Any]) -> TaskResult:
    return TaskResult.from_record(event)
