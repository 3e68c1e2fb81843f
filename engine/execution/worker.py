"""The worker-side wrapper: run one job where the executor put it.

``execute_job`` is the same on every executor. It computes the job's cache key from the
content hashes of its inputs, returns a verified cached output when there is one (early
cut-off), and otherwise runs the function with retries, backoff and a timeout, stores
each output through its materializer, records the key, and reports what happened through
``emit`` as small event dicts. It returns only the value (a :class:`NodeValue`); the
driver gets the outcome from the events. It never touches the metadata database.
"""

from __future__ import annotations

import contextvars
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Any

from ..artifacts import ArtifactStore
from ..cache import cache_key, entry_is_fresh, make_entry
from ..dsl.tracing import Ref, find_refs, substitute
from ..errors import ArtifactError, SerializationError, TaskError, TaskTimeout
from ..hashing import content_hash
from ..types import FAILED, SUCCEEDED, TIMED_OUT, ArtifactInfo
from .context import TaskContext, reset_context, set_context
from .job import Emit, Job, NodeValue, Spawn, TaskFailed
from .outcomes import describe, input_record, task_finished

_stores: dict[str, ArtifactStore] = {}
_stores_lock = threading.Lock()


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
    """Run ``job`` (or reuse its cached output); raise :class:`TaskFailed` after reporting."""
    store = artifact_store(job.store_root)
    if job.node_id in job.reuse:
        return _reuse(job, store, emit)

    def ref_hash(ref: Ref) -> str:
        if ref.node in deps:
            return deps[ref.node].output_hash(ref.output)
        return job.stored[(ref.node, ref.output)].content_hash

    inputs = _input_records(job, deps)
    if job.expand_arg is not None:
        return _expand(job, deps, store, emit, spawn, inputs)

    opts = job.task.options
    key = cache_key(
        job.task.identity, job.task.cache_version, job.args, ref_hash, job.const_digests
    )
    note = None
    if opts.reads_cache:
        entry = store.read_key(key)
        if entry is not None and entry_is_fresh(entry, opts.cache_expiration):
            infos = [ArtifactInfo.from_dict(o) for o in entry["outputs"]]
            try:
                values = tuple(store.get(info) for info in infos)
            except ArtifactError as exc:
                note = f"cached output could not be used ({exc}); recomputed"
            else:
                now = time.time()
                emit(
                    _finished(
                        job,
                        SUCCEEDED,
                        cached=True,
                        key=key,
                        attempts=0,
                        started=now,
                        inputs=inputs,
                        outputs=infos,
                        note=None,
                    )
                )
                return NodeValue(values, tuple(i.content_hash for i in infos), tuple(infos))

    started = time.time()
    try:
        args = {
            name: substitute(value, lambda r: _resolve(job, deps, store, r))
            for name, value in job.args.items()
        }
    except ArtifactError as exc:
        return _fail(job, emit, FAILED, exc, key, 0, started, inputs, note)
    return _run_attempts(job, args, key, store, emit, inputs, started, note)


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
    ctx = TaskContext(job.run_id, job.node_id, job.task.name, tee=job.tee)
    for attempt in range(1, attempts + 1):
        delay = opts.delay_before(attempt)
        if delay:
            time.sleep(delay)
        ctx.attempt = attempt
        emit(
            {
                "kind": "task_started",
                "node": job.node_id,
                "task": job.task.name,
                "attempt": attempt,
                "ts": time.time(),
                "parent": job.parent,
                "map_index": job.map_index,
            }
        )
        error: BaseException
        try:
            result = _call(job, args, ctx)
            values = _split(job, result)
        except TaskTimeout as exc:
            state, error = TIMED_OUT, exc
        except TaskError as exc:  # wrong return shape: retrying cannot help
            return _fail(job, emit, FAILED, exc, key, attempt, started, inputs, note, ctx)
        except Exception as exc:
            state, error = FAILED, exc
        else:
            try:
                value = _store(job, values, store, key)
            except (SerializationError, ArtifactError) as exc:
                return _fail(job, emit, FAILED, exc, key, attempt, started, inputs, note, ctx)
            # the final attempt's outcome travels in task_finished (one event fewer per task)
            emit(
                _finished(
                    job,
                    SUCCEEDED,
                    cached=False,
                    key=key,
                    attempts=attempt,
                    started=started,
                    inputs=inputs,
                    outputs=list(value.artifacts),
                    note=note,
                    ctx=ctx,
                )
            )
            return value
        if attempt == attempts:
            return _fail(job, emit, state, error, key, attempt, started, inputs, note, ctx)
        _attempt_done(emit, job, attempt, state, error)
    raise AssertionError("unreachable")  # pragma: no cover


def _call(job: Job, args: dict[str, Any], ctx: TaskContext) -> Any:
    task = job.task
    bound = task.signature.bind_partial()
    bound.arguments.update(args)
    token = set_context(ctx)
    try:
        timeout = task.options.timeout
        if timeout is None:
            return task.fn(*bound.args, **bound.kwargs)
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = task.fn(*bound.args, **bound.kwargs)
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


def _split(job: Job, result: Any) -> tuple[Any, ...]:
    n = job.n_outputs
    if n is None:
        return (result,)
    if not isinstance(result, tuple) or len(result) != n:
        got = (
            f"a tuple of {len(result)}"
            if isinstance(result, tuple)
            else f"a {type(result).__name__}"
        )
        raise TaskError(
            f"task `{job.node_id}` is annotated to return a tuple of {n} values but returned "
            f"{got}; return exactly {n} values or change the return annotation"
        )
    return result


def _store(job: Job, values: tuple[Any, ...], store: ArtifactStore, key: str | None) -> NodeValue:
    opts = job.task.options
    try:
        hashes = tuple(content_hash(v) for v in values)
    except SerializationError as exc:
        bad = next(type(v).__name__ for v in values if not _hashable(v))
        raise SerializationError(
            f"task `{job.node_id}` returned `{bad}`, which cannot be hashed or serialized "
            f"({exc}); return a picklable value, or register a materializer and a hasher for "
            f"`{bad}` with glasspane.register_materializer / glasspane.register_hasher"
        ) from exc
    if not opts.persist:
        infos = tuple(_memory_info(v, h) for v, h in zip(values, hashes))
        return NodeValue(values, hashes, infos)
    where = f"task `{job.node_id}`"
    infos = tuple(store.put(v, content_hash=h, where=where) for v, h in zip(values, hashes))
    if opts.reads_cache and key is not None:
        store.write_key(key, make_entry(job.task.name, [i.to_dict() for i in infos]))
    return NodeValue(values, hashes, infos)


def _hashable(value: Any) -> bool:
    try:
        content_hash(value)
    except SerializationError:
        return False
    return True


def _memory_info(value: Any, digest: str) -> ArtifactInfo:
    from ..artifacts import preview, type_name

    return ArtifactInfo(digest, None, None, type_name(value), None, 0, preview(value))


def _resolve(job: Job, deps: Mapping[str, NodeValue], store: ArtifactStore, ref: Ref) -> Any:
    if ref.node in deps:
        return deps[ref.node].output(ref.output)
    return store.get(job.stored[(ref.node, ref.output)])


def _input_records(job: Job, deps: Mapping[str, NodeValue]) -> list[dict[str, Any]]:
    records = []
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


def _reuse(job: Job, store: ArtifactStore, emit: Emit) -> NodeValue:
    infos = job.reuse[job.node_id]
    values = tuple(store.get(info) for info in infos)
    emit(
        _finished(
            job,
            SUCCEEDED,
            cached=True,
            key=None,
            attempts=0,
            started=time.time(),
            inputs=[],
            outputs=infos,
            note="reused from the resumed run",
        )
    )
    return NodeValue(values, tuple(i.content_hash for i in infos), tuple(infos))


def _expand(
    job: Job,
    deps: Mapping[str, NodeValue],
    store: ArtifactStore,
    emit: Emit,
    spawn: Spawn | None,
    inputs: list[dict[str, Any]],
) -> NodeValue:
    """Run an expander: one child job per element of the expanded list."""
    started = time.time()
    arg = job.expand_arg or ""
    emit(
        {
            "kind": "task_started",
            "node": job.node_id,
            "task": job.task.name,
            "attempt": 1,
            "ts": started,
            "parent": None,
            "map_index": None,
        }
    )
    try:
        items = substitute(job.args[arg], lambda r: _resolve(job, deps, store, r))
    except ArtifactError as exc:
        return _fail(job, emit, FAILED, exc, None, 1, started, inputs, None)
    if not isinstance(items, (list, tuple)):
        error: Exception = TaskError(
            f"`{job.task.name}.map(expand(...))` needs a list for argument `{arg}`, but the "
            f"upstream task returned {type(items).__name__}; return a list from it"
        )
        return _fail(job, emit, FAILED, error, None, 1, started, inputs, None)
    children = []
    for i, item in enumerate(items):
        args = dict(job.args)
        args[arg] = item
        digests = dict(job.const_digests)
        digests[arg] = ["const", content_hash(item)]
        children.append(
            Job(
                job.run_id,
                f"{job.node_id}[{i}]",
                job.task,
                args,
                job.deps,
                job.stored,
                digests,
                job.store_root,
                job.n_outputs,
                None,
                job.reuse,
                job.node_id,
                i,
                job.tee,
            )
        )
    if spawn is None:  # pragma: no cover - every executor passes one
        raise RuntimeError(f"executor gave no way to run the children of `{job.node_id}`")
    results = spawn(children, deps) if children else []
    failed = [c.node_id for c, r in zip(children, results) if isinstance(r, BaseException)]
    if failed:
        error = TaskFailed(
            job.node_id,
            FAILED,
            f"{len(failed)} of {len(children)} mapped elements failed: {', '.join(failed[:10])}",
        )
        return _fail(job, emit, FAILED, error, None, 1, started, inputs, None)
    values = [r.output(None) if job.n_outputs is None else r.values for r in results]  # type: ignore[union-attr]
    try:
        value = _store(job, (values,), store, None)
    except (SerializationError, ArtifactError) as exc:
        return _fail(job, emit, FAILED, exc, None, 1, started, inputs, None)
    emit(
        _finished(
            job,
            SUCCEEDED,
            cached=False,
            key=None,
            attempts=1,
            started=started,
            inputs=inputs,
            outputs=list(value.artifacts),
            note=None,
        )
    )
    return value


def _attempt_done(
    emit: Emit, job: Job, attempt: int, state: str, error: BaseException | None
) -> None:
    emit(
        {
            "kind": "attempt_finished",
            "node": job.node_id,
            "attempt": attempt,
            "state": state,
            "ts": time.time(),
            "error": describe(error) if error else None,
        }
    )


def _fail(
    job: Job,
    emit: Emit,
    state: str,
    error: BaseException,
    key: str | None,
    attempts: int,
    started: float,
    inputs: list[dict[str, Any]],
    note: str | None,
    ctx: TaskContext | None = None,
) -> NodeValue:
    tb = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    emit(
        _finished(
            job,
            state,
            key=key,
            attempts=attempts,
            started=started,
            inputs=inputs,
            note=note,
            ctx=ctx,
            error=describe(error),
            traceback=tb,
        )
    )
    raise TaskFailed(job.node_id, state, describe(error))


def _finished(
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
        **fields,
    )
