"""A pipeline run with the W&B tracker turned on by settings alone, read back offline.

``trackers=["wandb"]`` with ``tracker_options={"wandb": {...}}`` attaches the tracker to every
run of the Workspace (through the outbox relay); a ``.map`` grid search then lands in one W&B
run, each candidate's metrics against its own steps, read back from the run's transaction log
with W&B's own tooling (``wandb_records``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("wandb")

from wandb_records import read_run, transaction_logs  # noqa: E402

import glasspane  # noqa: E402
from glasspane import log_metric, log_param, pipeline, task  # noqa: E402
from glasspane.config import load_settings  # noqa: E402

EPOCHS = 3


@task(cache=False)  # two runs of one Workspace each log every candidate
def fit(c: float, epochs: int = EPOCHS) -> float:
    for epoch in range(epochs):
        log_metric("loss", c / (epoch + 1), step=epoch)
    log_param("solver", "lbfgs")
    return c / epochs


@task(track=True)
def best(scores: list[float]) -> dict[str, float]:
    glasspane.log_artifact({"best": min(scores)}, name="summary")
    return {"best": min(scores)}


@task
def boom(score: float) -> float:
    raise ValueError(f"no good: {score}")


@pipeline
def grid(n: int = 3):
    scores = fit.map(c=[0.1, 1.0, 10.0][:n])
    return best(scores)


@pipeline
def broken():
    return boom(fit(c=2.0))


@pytest.fixture
def wandb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """W&B silent, its files under tmp_path; the W&B service this process started is stopped
    afterwards. Offline mode comes from the tracker's options, not the environment."""
    root = tmp_path / "wandb-dir"
    root.mkdir()
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    for name in ("WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(name, raising=False)
    yield root
    import wandb

    wandb.teardown()


def workspace(wandb_dir: Path) -> glasspane.Workspace:
    options = {"project": "grid-tests", "mode": "offline", "dir": str(wandb_dir)}
    settings = load_settings(trackers=["wandb"], tracker_options={"wandb": options})
    return glasspane.Workspace(settings)


@pytest.mark.parametrize(
    "executor", ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]
)
def test_a_grid_search_is_one_wandb_run_with_a_history_per_candidate(
    wandb_dir: Path, executor: str
) -> None:
    with workspace(wandb_dir) as ws:
        result = ws.run(grid, executor=executor)
        (stored,) = ws.store.tracker_links(result.run_id)

    (path,) = transaction_logs(wandb_dir)
    run = read_run(path)
    assert stored["state"] == "delivered"
    assert stored["external_id"] == run.run_id == result.run_id
    assert stored["url"] == str(path.parent)
    assert (run.project, run.group) == ("grid-tests", "grid")
    assert run.name == f"grid-{result.run_id[:8]}"
    assert "trigger:manual" in run.tags
    assert run.config["n"] == 3
    assert run.config["glasspane.run_id"] == result.run_id
    for index, c in enumerate((0.1, 1.0, 10.0)):
        node = f"fit[{index}]"
        assert run.config[node] == {"c": c, "epochs": EPOCHS, "solver": "lbfgs"}
        assert run.metrics[f"{node}/loss"] == f"{node}/step"
        assert run.series(f"{node}/loss", f"{node}/step") == [
            (epoch, c / (epoch + 1)) for epoch in range(EPOCHS)
        ]
        assert run.summary[f"{node}/loss"] == pytest.approx(c / EPOCHS)
    names = sorted(artifact["name"] for artifact in run.artifacts)
    assert names == ["grid-best-best", "grid-best-summary"]
    files = sorted(a["manifest"]["contents"][0]["path"] for a in run.artifacts)
    assert files == ["best.json", "summary.json"]
    assert run.summary["glasspane.state"] == "succeeded"
    assert (run.exit_code, run.state) == (0, "finished")


def test_a_failed_pipeline_run_fails_its_wandb_run(wandb_dir: Path) -> None:
    with workspace(wandb_dir) as ws:
        result = ws.run(broken, raise_on_failure=False)

    run = read_run(transaction_logs(wandb_dir)[0])
    assert run.run_id == result.run_id
    assert run.config["fit"] == {"c": 2.0, "epochs": EPOCHS, "solver": "lbfgs"}
    assert run.summary["glasspane.state"] == "failed"
    assert (run.exit_code, run.state) == (1, "failed")


def test_two_runs_at_once_in_one_workspace_are_two_wandb_runs(wandb_dir: Path) -> None:
    results: list[glasspane.RunResult] = []
    with workspace(wandb_dir) as ws:
        ws.trackers()  # made once, before both threads use them

        def one(n: int) -> None:
            results.append(ws.run(grid, {"n": n}, executor="threads"))

        threads = [threading.Thread(target=one, args=(n,)) for n in (2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=240)

    assert len(results) == 2
    for result in results:
        run = read_run(transaction_logs(wandb_dir, result.run_id)[0])
        n = run.config["n"]
        assert sorted(k for k in run.config if k.startswith("fit[")) == [
            f"fit[{i}]" for i in range(n)
        ]
        assert len(run.history) == n * EPOCHS
        assert run.exit_code == 0
