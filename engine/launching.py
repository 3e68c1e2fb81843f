"""Launching a run in a child process (``Workspace.launch``): queued at once, taken over
by ``glasspane run --run-id`` in the child, crashed if the child exits before that."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from typing import Any

from .config import Settings
from .execution.runner import new_run_id
from .loader import canonical_ref, split_ref
from .store import MetadataStore


def launch(
    store: MetadataStore,
    settings: Settings,
    reference: str,
    params: dict[str, Any] | None,
    trigger: str,
    executor: str | None,
) -> str:
    """Queue a run of ``reference``, start its child process, return the run id."""
    split_ref(reference)  # a malformed reference: an error here, not in the child
    reference = canonical_ref(reference)
    run_id = new_run_id()
    store.queue_run(
        run_id=run_id,
        pipeline_name=reference.rpartition(":")[2],
        pipeline_ref=reference,
        params=dict(params or {}),
        trigger=trigger,
        executor=executor,
    )
    command = [sys.executable, "-m", "glasspane.cli.main", "run", reference]
    for name, value in (params or {}).items():
        text = value if isinstance(value, str) else json.dumps(value)
        command += ["-p", f"{name}={text}"]
    command += ["--run-id", run_id, "--trigger", trigger, "--json"]
    if executor:
        command += ["--executor", executor]
    env = dict(os.environ)
    env.update(
        GLASSPANE_HOME=str(settings.home),
        GLASSPANE_DATABASE_URL=settings.resolved_database_url,
        GLASSPANE_ARTIFACT_ROOT=settings.resolved_artifact_root,
    )
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
    return run_id
