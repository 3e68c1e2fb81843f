"""Read back what W&B wrote offline, with W&B's own tool.

An offline W&B run is a directory ``<dir>/wandb/offline-run-<time>-<id>/`` holding the run's
transaction log ``run-<id>.wandb`` (the records ``wandb sync`` uploads). ``wandb leet inspect
--json`` prints its records as JSON lines, and ``--summary --json`` W&B's own reading of them
(config and summary as they end up, exit code, state); :func:`read_run` combines both into a
:class:`WandbRunLog` the tests assert on.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _inspect(path: Path, *flags: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *flags, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"wandb leet inspect {path} failed: {done.stderr or done.stdout}")
    return done.stdout


@dataclass
class WandbRunLog:
    """One offline W&B run, as its transaction log holds it."""

    file: Path
    run_id: str
    project: str
    name: str
    group: str
    tags: list[str]
    config: dict[str, Any]
    summary: dict[str, Any]
    exit_code: int | None
    state: str | None
    #: every history row (``run.log``), in order
    history: list[dict[str, Any]] = field(default_factory=list)
    #: metric definitions (``define_metric``): name -> step metric ("" when none)
    metrics: dict[str, str] = field(default_factory=dict)
    #: logged artifacts: their records (name, type, manifest, metadata)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    #: how many ``run`` records (one per process that opened the run)
    run_records: int = 0

    def series(self, key: str, step_key: str) -> list[tuple[Any, Any]]:
        """``(step, value)`` of every history row holding ``key``, in order."""
        return [(row.get(step_key), row[key]) for row in self.history if key in row]


def transaction_logs(wandb_dir: Path, run_id: str | None = None) -> list[Path]:
    """The ``run-<id>.wandb`` files under ``wandb_dir`` (``WANDB_DIR``), oldest first."""
    pattern = f"run-{run_id}.wandb" if run_id else "run-*.wandb"
    return sorted(wandb_dir.glob(f"wandb/offline-run-*/{pattern}"))


def read_run(path: Path) -> WandbRunLog:
    """The run in transaction log ``path`` (a ``.wandb`` file or its run directory)."""
    if path.is_dir():
        (path,) = path.glob("run-*.wandb")
    view = json.loads(_inspect(path, "--summary"))
    records = [json.loads(line) for line in _inspect(path).splitlines() if line.strip()]
    runs = [r["run"] for r in records if r["type"] == "run"]
    assert runs, f"{path} has no run record"
    log = WandbRunLog(
        file=path,
        run_id=runs[0]["run_id"],
        project=runs[0].get("project", ""),
        name=view.get("name", ""),
        group=runs[0].get("run_group", ""),
        tags=list(view.get("tags") or []),
        config={k: v for k, v in (view.get("config") or {}).items() if k != "_wandb"},
        summary=dict(view.get("summary") or {}),
        exit_code=view.get("exit_code"),
        state=view.get("state"),
        run_records=len(runs),
    )
    for record in records:
        kind = record["type"]
        if kind == "history":
            log.history.append(record["history"]["item"])
        elif kind == "metric":
            metric = record["metric"]
            name = metric.get("name") or metric.get("glob_name", "")
            log.metrics[name] = metric.get("step_metric", "")
        elif kind == "artifact":
            log.artifacts.append(record["artifact"])
    return log
