"""The worker-side wrapper: run one job where the executor put it.

``execute_job`` is the same on every executor. It computes the job's cache key from the
content hashes of its inputs, reuses the resumed run's output when that run computed it
with the same key, returns a verified cached output when there is one (early cut-off), and
otherwise runs the function with retries, backoff and a timeout, stores each output
through its materializer, records the key, and reports what happened through ``emit`` as
small event dicts. It returns only the value (a :class:`NodeValue`); the driver gets the
outcome from the events. It never writes to the metadata database; it reads it only where a
task loads a model, or to check that a cached result of such a task still holds (see
:mod:`.model_reads`).
"""

from __future__ import annotations

import contextvars
import inspect
import os
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

from ..artifacts import ArtifactStore
from ..cache import cache_key
from ..dsl.tracing import Ref, find_refs, substitute
from ..errors import ArtifactError, SerializationError, TaskError, TaskTimeout
from ..types import FAILED, SUCCEEDED, TIMED_OUT, ArtifactInfo
from .context import Captured, TaskContext, artifact_logged, reset_context, set_context
from .imports import install as install_import_guard
from .job import Emit, Job, NodeValue, Spawn, TaskFailed, unloadable_error
from .lookup import cached_entry, entry_outputs
from .model_reads import entry_models, loaded_event, stale_reason
from .outcomes import (
    attempt_finished,
    cache_hit,
    constants,
    describe,
    input_record,
    key_parts,
    task_finished,
    task_started,
)
from .outputs import split_outputs, store_outputs
from .resume import decide, ran_note

_stores: dict[str, ArtifactStore] = {}
_stores_lock = threading.Lock()
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep


def artifact_store(root: str) -> ArtifactStore:
    """One :class:`ArtifactStore` per root per process."""
    with _stores_lock:
        store = _stores.get(root)
        if store is None:
            store = _stores[root] = ArtifactStore(root)
        return store


def execute_job(
    job: Job, deps: Mapping[str, NodeValue], emit: Emit, spawn: Spawn | None = None
) -> NodeValue:
    """Run ``job`` (or reuse its output); raise :class:`TaskFailed` after reporting."""
    if job.unloadable is not None:
        started = time.time()
        error = TaskError(unloadable_error(job))
        return fail(job, emit, FAILED, error, None, 0, started, [], None)
    store = artifact_store(job.store_root)

    def ref_hash(ref: Ref) -> str:
        if ref.node in deps:
            return deps[ref.node].output_hash(ref.output)
        return job.stored[(ref.node, ref.output)].content_hash

    inputs = _input_records(job, deps)
    if job.expand_arg is not None:
        from .expansion import expand

        return expand(job, deps, store, emit, spawn, inputs, ref_hash)

    opts = job.task.options
    key = cache_key(job.task.identity, job.cache_version, job.args, ref_hash, job.const_digests)
    notes: list[str] = []
    old = job.reuse.get(job.node_id)
    reused, reason = decide(old, key, job.cache_version, input_hashes(inputs))
    if reused and old is not None:
        try:
            values = tuple(store.get(info) for info in old.outputs)
        except ArtifactError as exc:
            notes.append(f"the output of run {old.run_id} could not be read ({exc}); recomputed")
        else:
            emit(_hit(job, key, inputs, list(old.outputs), reason))
            return NodeValue(values, tuple(i.content_hash for i in old.outputs), old.outputs, key)
    entry = cached_entry(store, key, opts.cache_expiration) if opts.reads_cache else None
    loads = entry_models(entry)
    stale = stale_reason(loads, job.metadata_url) if loads else None
    if stale is not None:
        notes.append(f"cached output not reused: {stale}; recomputed")
    elif entry is not None:
        infos = entry_outputs(entry)
        try:
            values = tuple(store.get(info) for info in infos)
        except ArtifactError as exc:
            notes.append(f"cached output could not be used ({exc}); recomputed")
        else:
            for load in loads:  # the cached task run names the models too (lineage)
                where = {"task": job.task.name, "parent": job.parent, "map_index": job.map_index}
                emit(loaded_event(job.node_id, load, **where))
            note = f"cache hit; {reason}" if reason else None
            emit(_hit(job, key, inputs, infos, "; ".join([*notes, note] if note else notes)))
            hashes = tuple(i.content_hash for i in infos)
            return NodeValue(values, hashes, tuple(infos), key, tuple(loads))
    if reason:
        notes.insert(0, ran_note(reason) or "")
    started = time.time()
    note = "; ".join(notes) or None
    try:
        args = {
            name: substitute(value, lambda r: resolve(job, deps, store, r))
            for name, value in job.args.items()
        }
    except ArtifactError as exc:
        return fail(job, emit, FAILED, exc, key, 0, started, inputs, note)
    return _run_attempts(job, args, key, store, emit, inputs, started, note)


def _hit(
    job: Job, key: str, inputs: list[dict[str, Any]], infos: list[ArtifactInfo], note: str | None
) -> dict[str, Any]:
    return cache_hit(
        job.node_id, job.task.name, key, inputs, infos,
        note=note or None, parent=job.parent, map_index=job.map_index, parts=_parts(job),
    )  # fmt: skip


def _track(job: Job, value: NodeValue, emit: Emit) -> None:
    """Hand a ``track=True`` task's stored outputs to the trackers."""
    for index, info in enumerate(value.artifacts):
        if info.uri is None:
            continue
        name = job.node_id if len(value.artifacts) == 1 else f"{job.node_id}.{index}"
        extension = info.uri.rsplit(".", 1)[-1]
        emit(artifact_logged(job.node_id, name, f"{name}.{extension}", info.to_dict()))


def _parts(job: Job) -> dict[str, Any]:
    return key_parts(job.cache_version, job.const_digests, job.task.options.cache)


def input_hashes(inputs: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Argument name -> content hashes of the inputs it consumed, from input records."""
    found: dict[str, list[str]] = {}
    for item in inputs:
        found.setdefault(item["name"], []).append(item["artifact"]["content_hash"])
    return found


def _run_attempts(
    job: Job,
    args: dict[str, Any],
    key: str,
    store: ArtifactStore,
    emit: Emit,
    inputs: list[dict[str, Any]],
    started: float,
    note: str | None,
) -> NodeValue:
    opts = job.task.options
    attempts = opts.retries + 1
    ctx = TaskContext(
        job.run_id, job.node_id, job.task.name, tee=job.tee, emit=emit, artifacts=store,
        metadata_url=job.metadata_url,
    )  # fmt: skip
    text = Captured()  # every attempt's, for the task run; each attempt's goes with its event
    for attempt in range(1, attempts + 1):
        delay = opts.delay_before(attempt)
        if delay:
            time.sleep(delay)
        ctx.attempt = attempt
        ctx.models = []  # the cache entry keeps the loads of the attempt that succeeded
        given = constants(job.args) if attempt == 1 else None
        emit(task_started(job.node_id, job.task.name, attempt, job.parent, job.map_index, given))
        error: BaseException
        try:
            result = _call(job, args, ctx)
            values = split_outputs(job, result)
        except TaskTimeout as exc:
            state, error = TIMED_OUT, exc
        except TaskError as exc:  # wrong return shape: retrying cannot help
            state, error = FAILED, exc
            attempts = attempt
        except Exception as exc:
            state, error = FAILED, exc
        else:
            try:
                value = store_outputs(job, values, store, key, ctx.models)
            except (SerializationError, ArtifactError) as exc:
                mine = ctx.take()
                return fail(
                    job, emit, FAILED, exc, key, attempt, started, inputs, note,
                    (text + mine, mine),
                )  # fmt: skip
            if opts.track:
                _track(job, value, emit)
            mine = ctx.take()
            # the final attempt's outcome travels in task_finished (one event fewer per task)
            emit(
                finished(
                    job,
                    SUCCEEDED,
                    cached=False,
                    key=key,
                    attempts=attempt,
                    started=started,
                    inputs=inputs,
                    outputs=list(value.artifacts),
                    note=note,
                    text=text + mine,
                    attempt_text=mine,
                )
            )
            return value
        mine = ctx.take()
        if attempt == attempts:
            return fail(
                job, emit, state, error, key, attempt, started, inputs, note,
                (text + mine, mine),
            )  # fmt: skip
        text = text + mine
        emit(attempt_finished(job.node_id, attempt, state, error, mine, user_traceback(error)))
    raise AssertionError("unreachable")  # pragma: no cover


def _call(job: Job, args: dict[str, Any], ctx: TaskContext) -> Any:
    task = job.task
    install_import_guard()  # task bodies importing on several threads: see .imports
    positional, keywords = _call_args(task.signature, args)
    token = set_context(ctx)
    try:
        timeout = task.options.timeout
        if timeout is None:
            return task.fn(*positional, **keywords)
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = task.fn(*positional, **keywords)
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                box["error"] = exc

        thread = threading.Thread(
            target=contextvars.copy_context().run,
            args=(target,),
            name=f"glasspane-{job.node_id}",
            daemon=True,
        )
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            raise TaskTimeout(
                f"task `{job.node_id}` ran past its timeout of {timeout:g}s and was abandoned; "
                "raise `timeout=` on the task or make it faster"
            )
        if "error" in box:
            raise box["error"]
        return box["value"]
    finally:
        reset_context(token)


_BY_NAME = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def _call_args(
    signature: inspect.Signature, args: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """How to call a function of ``signature`` with ``args`` (parameter name -> value).

    Every argument goes by name where the signature allows it, which skips
    ``Signature.bind_partial`` (measurable on short tasks); positional-only
    parameters, ``*args`` and ``**kwargs`` go through it.
    """
    if all(p.kind in _BY_NAME for p in signature.parameters.values()):
        return (), args
    bound = signature.bind_partial()
    bound.arguments.update(args)
    return bound.args, bound.kwargs


def resolve(job: Job, deps: Mapping[str, NodeValue], store: ArtifactStore, ref: Ref) -> Any:
    """The value of ``ref`` for ``job``: from a dependency, or loaded from the store."""
    if ref.node in deps:
        return deps[ref.node].output(ref.output)
    return store.get(job.stored[(ref.node, ref.output)])


def _input_records(job: Job, deps: Mapping[str, NodeValue]) -> list[dict[str, Any]]:
    records = [job.element] if job.element is not None else []
    for name, value in job.args.items():
        for ref in find_refs(value):
            if ref.node in deps:
                dep = deps[ref.node]
                index = 0 if ref.output is None else ref.output
                info = (
                    dep.artifacts[index]
                    if index < len(dep.artifacts)
                    else ArtifactInfo(dep.hashes[index], None, None, "unknown", None, 0, None)
                )
            else:
                info = job.stored[(ref.node, ref.output)]
            records.append(input_record(name, ref.node, info))
    return records


def user_traceback(error: BaseException) -> str:
    """The traceback of ``error`` from the first frame of the user's code on (the task's
    function), without glasspane's own frames; just the exception line if it has none.

    The exception's ``__traceback__`` is cut the same way, so that a ``RunFailed`` chained
    from it prints the plain traceback a direct call would have.
    """
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    if tb is not error.__traceback__:
        error.__traceback__ = tb
    return "".join(traceback.format_exception(type(error), error, tb))


def fail(
    job: Job,
    emit: Emit,
    state: str,
    error: BaseException,
    key: str | None,
    attempts: int,
    started: float,
    inputs: list[dict[str, Any]],
    note: str | None,
    texts: tuple[Captured, Captured] | None = None,
) -> NodeValue:
    tb = user_traceback(error)
    message = describe(error)
    if note and "could not be" in note:  # a broken cached copy first: keep that visible
        message = f"{message} (before that: {note})"
    emit(
        finished(
            job,
            state,
            key=key,
            attempts=attempts,
            started=started,
            inputs=inputs,
            note=note,
            error=message,
            traceback=tb,
            text=texts[0] if texts else None,
            attempt_text=texts[1] if texts else None,
        )
    )
    raise TaskFailed(job.node_id, state, message, error, tb)


def finished(
    job: Job, state: str, *, key: str | None, outputs: Any = (), **fields: Any
) -> dict[str, Any]:
    """This job's ``task_finished`` event."""
    return task_finished(
        job.node_id,
        job.task.name,
        state,
        cache_key=key,
        outputs=outputs,
        parent=job.parent,
        map_index=job.map_index,
        key_parts=_parts(job) if key is not None else None,
        **fields,
    )
