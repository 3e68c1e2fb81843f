"""Launching a run in a child process (``Workspace.launch``, ``Workspace.launch_retry``):
queued at once, taken over by ``glasspane run --run-id`` (or ``glasspane retry --run-id``)
in the child, crashed if the child exits before that.

Parameters reach the child in the environment variable :data:`PARAMS_ENV` (JSON), never on
its command line, which any user of the machine can read; the child removes the variable
before running anything. The queued row stores the parameters with the secret ones masked,
as the pipeline's stored schema names them (all of them when no schema is stored yet).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from typing import Any

from .config import Settings
from .dsl.pipeline import describe_params
from .errors import NotFound
from .execution.runner import new_run_id
from .loader import canonical_ref, split_ref
from .param_schema import model_from_schema, secret_names
from .store import MetadataStore, launches

#: the environment variable a launched child reads its parameters (or secrets) from
PARAMS_ENV = "GLASSPANE_LAUNCH_PARAMS"
MASK = "**********"


def launch(
    store: MetadataStore,
    settings: Settings,
    reference: str,
    params: dict[str, Any] | None,
    trigger: str,
    executor: str | None,
    *,
    schedule_name: str | None = None,
    scheduled_for: datetime | None = None,
    upstream_run_id: str | None = None,
    max_active: int | None = None,
) -> str:
    """Queue a run of ``reference``, start its child process, return the run id. A run for
    a fire time (``scheduled_for``) passes it to a pipeline that declares a
    ``scheduled_for`` parameter (``glasspane run --scheduled-for``)."""
    split_ref(reference)  # a malformed reference: an error here, not in the child
    reference = canonical_ref(reference)
    name = reference.rpartition(":")[2]
    params = dict(params or {})
    run_id = new_run_id()
    store.queue_run(
        run_id=run_id,
        pipeline_name=name,
        pipeline_ref=reference,
        params=_masked(store, name, params),
        trigger=trigger,
        executor=executor,
        schedule_name=schedule_name,
        scheduled_for=scheduled_for,
        upstream_run_id=upstream_run_id,
        max_active=max_active,
    )
    command = ["run", reference, "--run-id", run_id, "--trigger", trigger]
    if scheduled_for is not None:
        command += ["--scheduled-for", scheduled_for.astimezone(timezone.utc).isoformat()]
    _start(store, settings, run_id, command, executor, params)
    return run_id


def launch_retry(
    store: MetadataStore,
    settings: Settings,
    run_id: str,
    secrets: dict[str, Any] | None,
    trigger: str,
    executor: str | None,
) -> str:
    """Queue a retry of ``run_id`` (checked to be over), start its child process (``glasspane
    retry``), return the new run's id."""
    from .retry_params import check_retryable, check_secrets

    old = store.get_run(run_id)
    check_retryable(old)
    schema = store.read(launches.pipeline_schema, old["pipeline"])
    if schema is not None:  # else the child checks, and a mistake crashes the queued run
        model = model_from_schema(old["pipeline"], schema)
        secret = {name: name in secret_names(schema) for name in model.model_fields}
        check_secrets(old["pipeline"], describe_params(model), secret, old, dict(secrets or {}))
    if not old.get("pipeline_ref"):
        raise NotFound(
            f"run {old['run_id']} does not record where its pipeline is imported from, so it "
            "cannot be retried in another process; retry it from Python: "
            "glasspane.retry(run_id, pipeline=my_pipeline)"
        )
    new_id = new_run_id()
    store.queue_run(
        run_id=new_id,
        pipeline_name=old["pipeline"],
        pipeline_ref=old["pipeline_ref"],
        params=dict(old.get("params") or {}),  # stored masked already
        trigger=trigger,
        executor=executor,
    )
    command = ["retry", old["run_id"], "--run-id", new_id]
    _start(store, settings, new_id, command, executor, dict(secrets or {}))
    return new_id


def _masked(store: MetadataStore, pipeline: str, params: dict[str, Any]) -> dict[str, Any]:
    schema = store.read(launches.pipeline_schema, pipeline)
    if schema is None:
        return {name: MASK for name in params}  # which ones are secret is not known yet
    secret = secret_names(schema)
    return {name: MASK if name in secret else value for name, value in params.items()}


def _start(
    store: MetadataStore,
    settings: Settings,
    run_id: str,
    command: list[str],
    executor: str | None,
    params: dict[str, Any],
) -> None:
    """Start ``glasspane COMMAND`` as the child that takes over ``run_id``; a thread records
    the run as crashed if the child exits before taking it over."""
    command = [sys.executable, "-m", "glasspane.cli.main", *command, "--json"]
    if executor:
        command += ["--executor", executor]
    env = dict(os.environ)
    env.update(
        GLASSPANE_HOME=str(settings.home),
        GLASSPANE_DATABASE_URL=settings.resolved_database_url,
        GLASSPANE_ARTIFACT_ROOT=settings.resolved_artifact_root,
    )
    env[PARAMS_ENV] = json.dumps(params)
    logs = settings.home.expanduser() / "launches"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{run_id}.log"
    with open(log_path, "wb") as log:
        child = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )  # fmt: skip

    def watch() -> None:
        code = child.wait()
        text = log_path.read_text(errors="replace").strip().splitlines()[-20:]
        store.launch_failed(
            run_id,
            f"the launched process (pid {child.pid}) exited with code {code} before "
            f"starting the run: {chr(10).join(text) or 'no output'}; see {log_path}",
        )

    threading.Thread(target=watch, name=f"glasspane-launch-{run_id}", daemon=True).start()


def launched_params() -> dict[str, Any]:
    """The parameters :func:`launch` passed this process (removed from its environment, so
    tasks and the worker processes they start never see them); ``{}`` when not launched."""
    raw = os.environ.pop(PARAMS_ENV, None)
    return json.loads(raw) if raw else {}
