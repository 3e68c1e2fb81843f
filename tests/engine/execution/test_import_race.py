"""A cached rerun of a scikit-learn `.map` on the threads executor loads every model.

On a rerun the threads executor loads cached models on several worker threads at once, in
a process that has not imported scikit-learn yet. Unpickling a model imports its module
(``sklearn.linear_model._ridge``) before its package, holding the module's import lock;
two threads doing that for sibling modules used to form an import lock cycle, which
CPython breaks by raising ``_DeadlockError`` in one of them: the cached model was not
used, and often the recompute failed the same way. Only a fresh process shows it, so every
rerun here is a new ``glasspane run`` process, reading the cache that one first run filled.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

#: reruns of the cached pipeline, each in a fresh process; all must load every model. A
#: rerun costs about 2.4 s of CPU, mostly importing scikit-learn: 40 take 50 s (idle) to 95 s
#: (busy) on two cores. GLASSPANE_TEST_RERUNS=100 runs the hundred the issue asks for.
RERUNS = int(os.environ.get("GLASSPANE_TEST_RERUNS", "40"))
#: reruns at a time (each is one `glasspane run` process)
PARALLEL = 2

PIPELINE = """
from glasspane import pipeline, task

ESTIMATORS = [
    "Ridge",
    "RandomForestRegressor",
    "SVR",
    "KNeighborsRegressor",
    "DecisionTreeRegressor",
    "Lasso",
    "GradientBoostingRegressor",
    "KernelRidge",
]


@task
def data() -> tuple:
    import numpy as np

    X = np.random.default_rng(0).normal(size=(60, 4))
    return X, X @ np.array([1.0, -2.0, 0.5, 3.0])


@task(cache=False)  # read on every run: the cached fits downstream run as jobs on threads
def seed() -> int:
    return 0


@task
def fit(name: str, xy: tuple, seed: int):
    if name == "Ridge":
        from sklearn.linear_model import Ridge as Estimator
    elif name == "RandomForestRegressor":
        from sklearn.ensemble import RandomForestRegressor as Estimator
    elif name == "SVR":
        from sklearn.svm import SVR as Estimator
    elif name == "KNeighborsRegressor":
        from sklearn.neighbors import KNeighborsRegressor as Estimator
    elif name == "DecisionTreeRegressor":
        from sklearn.tree import DecisionTreeRegressor as Estimator
    elif name == "Lasso":
        from sklearn.linear_model import Lasso as Estimator
    elif name == "GradientBoostingRegressor":
        from sklearn.ensemble import GradientBoostingRegressor as Estimator
    else:
        from sklearn.kernel_ridge import KernelRidge as Estimator
    X, y = xy
    return Estimator().fit(X, y)


@task
def score(models: list, xy: tuple) -> list:
    from sklearn.metrics import r2_score

    X, y = xy
    return [round(float(r2_score(y, model.predict(X))), 6) for model in models]


@pipeline
def zoo():
    xy = data()
    return score(fit.map(ESTIMATORS, xy, seed()), xy)
"""

FITS = [f"fit[{i}]" for i in range(8)]


def _run(glasspane_cmd: list[str], pipeline: Path, env: dict[str, str], executor: str) -> dict:
    done = subprocess.run(
        [*glasspane_cmd, "run", f"{pipeline}:zoo", "--executor", executor, "--json"],
        env=env,
        cwd=pipeline.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    try:
        result = json.loads(done.stdout)
    except ValueError:
        result = {"state": None, "tasks": []}
    result["exit_code"] = done.returncode
    result["stderr_tail"] = done.stderr[-2000:]
    return result


def _not_loaded(result: dict) -> list[str]:
    """The fits and the score that did not come from the cache, each with why."""
    return [
        f"{t['node']}: {t['state']}, cached={t['cached']}, note={t['note']!r}, error={t['error']!r}"
        for t in result["tasks"]
        if t["node"] in (*FITS, "score") and (not t["cached"] or t["note"] is not None)
    ]


def test_cached_sklearn_map_reruns_on_threads_load_every_model(
    tmp_path: Path, glasspane_cmd: list[str], cli_env: dict[str, str]
):
    pipeline = tmp_path / "zoo.py"
    pipeline.write_text(PIPELINE)
    # one artifact root for every run: the first run fills the cache, each rerun reads it
    env = {**cli_env, "GLASSPANE_ARTIFACT_ROOT": str(tmp_path / "artifacts")}
    # The first run fills the cache one task at a time: on threads, the task bodies' own
    # imports of different scikit-learn modules race each other in a cold process, which is
    # the run loop's to prevent, not the loading of cached values tested here.
    first = _run(glasspane_cmd, pipeline, env, "inline")
    assert (first["exit_code"], first["state"]) == (0, "succeeded"), (
        f"first run: {first.get('error')}\n{first['stderr_tail']}"
    )
    assert [t["node"] for t in first["tasks"] if t["cached"]] == []
    database = Path(cli_env["GLASSPANE_HOME"]) / "glasspane.db"

    def rerun(i: int) -> tuple[int, dict]:
        home = tmp_path / f"home-{i}"
        home.mkdir()
        shutil.copy(database, home)  # the first run's metadata, so the rerun skips migrations
        return i, _run(glasspane_cmd, pipeline, {**env, "GLASSPANE_HOME": str(home)}, "threads")

    failures: list[str] = []
    started = time.monotonic()
    reruns = iter(range(RERUNS))
    with ThreadPoolExecutor(PARALLEL) as pool:
        pending: set[Future[tuple[int, dict]]] = {
            pool.submit(rerun, next(reruns)) for _ in range(PARALLEL)
        }
        finished = 0
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i, result = future.result()
                finished += 1
                problems = _not_loaded(result)
                if result["exit_code"] != 0 or result["state"] != "succeeded" or problems:
                    failures.append(
                        f"rerun {i}: exit {result['exit_code']}, state {result['state']}; "
                        + "; ".join(problems or [result["stderr_tail"]])
                    )
                nxt = next(reruns, None)
                if nxt is not None and not failures:  # stop at the first failure
                    pending.add(pool.submit(rerun, nxt))
    elapsed = time.monotonic() - started
    summary = f"{len(failures)} of {finished} reruns failed ({elapsed:.0f}s)"
    assert not failures, "\n".join([summary, *failures])
    assert finished == RERUNS
