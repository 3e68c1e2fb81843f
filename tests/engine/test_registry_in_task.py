"""``glasspane.load_model`` inside a task, on every executor: the version the reference names
when the task runs, recorded as the task's input (lineage), never a cached result computed
with another version; and the ``input_example`` a registered version keeps."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import glasspane
from glasspane import expand, pipeline, queries, register_model, task
from glasspane.config import Settings
from glasspane.errors import GlasspaneError, RunFailed
from glasspane.events import ModelLoaded

EXECUTORS = ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]


@task
def train(c: float, alias: str | None = None) -> float:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(C=c, max_iter=500).fit(X, y)
    register_model("iris", model, alias=alias)
    return c


@pipeline
def retrain(c: float = 1.0, alias: str | None = None):
    return train(c, alias)


@task
def score(ref: str) -> float:
    model = glasspane.load_model(ref)
    glasspane.load_model(ref)  # twice: still one input
    X, _ = load_iris(return_X_y=True)
    assert len(model.predict(X[:3])) == 3
    return float(model.C)


@pipeline
def scoring(ref: str = "iris@champion"):
    return score(ref)


@pytest.fixture
def ws(tmp_path: Path) -> glasspane.Workspace:
    with glasspane.Workspace(Settings(home=tmp_path / "home")) as workspace:
        yield workspace


class Loads:
    """A listener keeping the ModelLoaded events it hears."""

    def __init__(self) -> None:
        self.seen: list[ModelLoaded] = []

    def on_event(self, event: object) -> None:
        if isinstance(event, ModelLoaded):
            self.seen.append(event)


def _model_inputs(ws: glasspane.Workspace, run_id: str, node: str = "score") -> list[str]:
    detail = ws.query(queries.task_detail, run_id, node)
    return [item.name for item in detail.inputs if item.name.startswith("model:")]


def _check_lineage(ws: glasspane.Workspace, run_id: str, trained_in: str) -> None:
    """The loading task's lineage leads to the stored model and the task that registered it."""
    walk = ws.query(queries.lineage, run_id, "score")
    (model,) = [a for a in walk.artifacts if a.type_name.endswith("LogisticRegression")]
    assert (model.produced_by.run_id, model.produced_by.node) == (trained_in, "train")
    edges = {(e.source, e.target) for e in walk.edges}
    assert (model.content_hash, f"{run_id}/score") in edges
    assert (f"{trained_in}/train", model.content_hash) in edges


def _promote_a_new_champion(ws: glasspane.Workspace, executor: str) -> str:
    second = ws.run(retrain, {"c": 2.0}, executor=executor)
    assert ws.store.set_model_alias("iris", "champion", 2) == 1
    return second.run_id


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_task_loads_the_champion_and_records_it_as_its_input(
    ws: glasspane.Workspace, executor: str
) -> None:
    trained = ws.run(retrain, {"c": 0.5, "alias": "champion"}, executor=executor)
    listener = Loads()
    first = ws.run(scoring, executor=executor, listeners=[listener])
    assert first.output == 0.5
    assert _model_inputs(ws, first.run_id) == ["model:iris/1"]
    _check_lineage(ws, first.run_id, trained.run_id)
    assert [(e.ref, e.name, e.version) for e in listener.seen] == [("iris@champion", "iris", 1)]

    retrained = _promote_a_new_champion(ws, executor)
    second = ws.run(scoring, executor=executor)
    assert second.output == 2.0  # the new champion, not the cached result of version 1
    task_run = second.task("score")
    assert not task_run.cached
    assert "model `iris@champion` now names version 2" in (task_run.note or "")
    assert _model_inputs(ws, second.run_id) == ["model:iris/2"]
    _check_lineage(ws, second.run_id, retrained)
    why = ws.query(queries.task_detail, second.run_id, "score").cache
    assert not why.hit and "input `model:iris/2` is new" in why.reasons

    third = ws.run(scoring, executor=executor)  # nothing moved: the cache answers
    assert third.output == 2.0 and third.task("score").cached
    assert _model_inputs(ws, third.run_id) == ["model:iris/2"]  # a hit names the model too
    _check_lineage(ws, third.run_id, retrained)


def test_a_numbered_version_is_cached_and_latest_follows_new_versions(
    ws: glasspane.Workspace,
) -> None:
    ws.run(retrain, {"c": 0.5, "alias": "champion"})
    assert ws.run(scoring, {"ref": "iris/1"}).output == 0.5
    assert ws.run(scoring, {"ref": "iris"}).output == 0.5
    ws.run(retrain, {"c": 2.0})
    pinned = ws.run(scoring, {"ref": "iris/1"})
    assert pinned.output == 0.5 and pinned.task("score").cached  # a version never changes
    latest = ws.run(scoring, {"ref": "iris"})
    assert latest.output == 2.0 and not latest.task("score").cached


PUBLISHING = {"down": True}


@task
def publish(c: float) -> float:
    if PUBLISHING["down"]:
        raise RuntimeError("publishing is down")
    return c


@pipeline
def score_and_publish():
    return publish(score("iris@champion"))


def test_a_retry_after_a_promotion_loads_the_new_champion(
    ws: glasspane.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws.run(retrain, {"c": 0.5, "alias": "champion"})
    monkeypatch.setitem(PUBLISHING, "down", True)
    failed = ws.run(score_and_publish, raise_on_failure=False)
    assert failed.state == "failed" and failed.task("score").state == "succeeded"
    _promote_a_new_champion(ws, "inline")
    monkeypatch.setitem(PUBLISHING, "down", False)
    retried = ws.retry(failed.run_id, pipeline=score_and_publish)
    assert retried.output == 2.0  # not the score of version 1 the failed run computed
    assert not retried.task("score").cached
    assert _model_inputs(ws, retried.run_id) == ["model:iris/2"]


@task
def letters() -> list[str]:
    return ["a", "b"]


@task
def score_each(letter: str) -> str:
    return f"{letter}{glasspane.load_model('iris@champion').C}"


@pipeline
def scoring_each():
    return score_each.map(expand(letters()))


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_mapped_task_that_loads_the_champion_follows_a_promotion(
    ws: glasspane.Workspace, executor: str
) -> None:
    ws.run(retrain, {"c": 0.5, "alias": "champion"}, executor=executor)
    assert ws.run(scoring_each, executor=executor).output == ["a0.5", "b0.5"]
    _promote_a_new_champion(ws, executor)
    rerun = ws.run(scoring_each, executor=executor)
    assert rerun.output == ["a2.0", "b2.0"]
    assert _model_inputs(ws, rerun.run_id, "score_each[0]") == ["model:iris/2"]
    cached = ws.run(scoring_each, executor=executor)
    assert cached.output == ["a2.0", "b2.0"] and cached.task("score_each[1]").cached
    detail = ws.query(queries.task_detail, cached.run_id, "score_each[1]")
    assert (detail.task, detail.parent_node, detail.map_index) == ("score_each", "score_each", 1)
    assert _model_inputs(ws, cached.run_id, "score_each[1]") == ["model:iris/2"]


def test_a_task_loading_on_postgresql_follows_a_promotion(postgres_db_url: str) -> None:
    settings = Settings(database_url=postgres_db_url, home=Path(postgres_db_url.rsplit("/", 1)[1]))
    with glasspane.Workspace(settings) as ws:
        for executor, (old, new) in (("threads", (0.5, 2.0)), ("dask", (0.25, 4.0))):
            trained = ws.run(retrain, {"c": old, "alias": "champion"}, executor=executor)
            first = ws.run(scoring, executor=executor)
            assert first.output == old
            _check_lineage(ws, first.run_id, trained.run_id)
            retrained = ws.run(retrain, {"c": new}, executor=executor)
            latest = ws.store.model_versions("iris")[0]["version"]
            ws.store.set_model_alias("iris", "champion", latest)
            second = ws.run(scoring, executor=executor)
            assert second.output == new and not second.task("score").cached
            assert _model_inputs(ws, second.run_id) == [f"model:iris/{latest}"]
            _check_lineage(ws, second.run_id, retrained.run_id)


@task
def score_missing() -> float:
    return glasspane.load_model("iris@gold").C


@pipeline
def scoring_missing():
    return score_missing()


def test_a_reference_to_nothing_fails_the_task_naming_what_there_is(
    ws: glasspane.Workspace,
) -> None:
    ws.run(retrain, {"c": 0.5})
    with pytest.raises(RunFailed, match="model `iris` has no alias `gold` \\(its aliases: none"):
        ws.run(scoring_missing)


def test_an_unreachable_metadata_store_says_what_to_do(tmp_path: Path) -> None:
    from glasspane.execution.context import TaskContext, reset_context, set_context

    url = f"sqlite:///{tmp_path}/elsewhere/glasspane.db"  # a file only the driver's machine has
    ctx = TaskContext("run1", "score", "score", emit=lambda event: None, metadata_url=url)
    ctx.artifacts = object()
    token = set_context(ctx)
    try:
        with pytest.raises(GlasspaneError) as caught:
            glasspane.load_model("iris@champion")
    finally:
        reset_context(token)
    message = str(caught.value)
    assert message.startswith(
        "load_model('iris@champion') in task `score`: the run's metadata store "
        f"`{url}` cannot be read where the task runs ("
    )
    assert message.endswith(
        "make the database reachable from the workers (GLASSPANE_DATABASE_URL pointing at a "
        "PostgreSQL server they can reach, not a SQLite file of the driver's machine), or load "
        "the model before the run and pass it to the pipeline"
    )


# ---- input_example ---------------------------------------------------------------------------


@task
def train_frame(example: str) -> int:
    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    given = {"frame": X, "array": X.to_numpy(), "rows": X.to_numpy().tolist(), "none": None}
    register_model("iris", model, input_example=given[example])
    return 1


@pipeline
def retrain_frame(example: str = "frame"):
    return train_frame(example)


@pytest.mark.parametrize("example", ["frame", "array", "rows", "none"])
def test_a_version_keeps_five_rows_of_its_input_example(
    ws: glasspane.Workspace, example: str
) -> None:
    ws.run(retrain_frame, {"example": example})
    X, _ = load_iris(return_X_y=True, as_frame=True)
    stored = ws.store.model_versions("iris")[0]["input_example"]
    assert stored == ws.store.resolve_model("iris")["input_example"]
    assert stored["columns"] == list(X.columns)  # the frame's, or the model's feature names
    if example == "none":
        assert stored["data"] == [[0.0, 0.0, 0.0, 0.0]]
    else:
        assert stored["data"] == X.head(5).to_numpy().tolist()
    # what a deployment posts as its sample prediction
    model = glasspane.load_model("iris", workspace=ws)
    assert len(model.predict(pd.DataFrame(**stored))) == len(stored["data"])


def test_input_example_values_become_json() -> None:
    from glasspane.registry import example_of

    frame = pd.DataFrame(
        {
            "n": np.array([1, 2], dtype=np.int64),
            "x": [np.nan, 1.5],
            "when": pd.to_datetime(["2026-01-01", "2026-01-02"]),
            "ok": [True, False],
        }
    )
    assert example_of(frame, None, "here") == {
        "columns": ["n", "x", "when", "ok"],
        "data": [[1, None, "2026-01-01T00:00:00", True], [2, 1.5, "2026-01-02T00:00:00", False]],
    }
    rows = [{"a": np.float32(0.5), "b": 1}, {"a": 2.0, "b": np.int8(3)}]
    assert example_of(rows, None, "here") == {"columns": ["a", "b"], "data": [[0.5, 1], [2.0, 3]]}
    assert example_of(np.arange(3), None, "here") == {"data": [[0, 1, 2]]}  # one row
    assert example_of(None, object(), "here") is None  # nothing to go by


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("a,b", "input_example is a str; give a pandas DataFrame, a numpy array or a list of rows"),
        ([], "input_example has no rows; give at least one"),
        (np.zeros((2, 2, 2)), "input_example is an array of 3 dimensions"),
    ],
)
def test_a_bad_input_example_says_what_to_give(value: object, message: str) -> None:
    from glasspane.errors import InvalidArgument
    from glasspane.registry import example_of

    where = "register_model('iris') in task `t`"
    with pytest.raises(InvalidArgument, match=f"^{re.escape(where)}: {message}"):
        example_of(value, None, where)


@task(cache=False)
def score_after(trained: float, ref: str) -> float:
    return float(glasspane.load_model(ref).C)


@pipeline
def train_then_score(c: float = 1.0):
    return score_after(train(c, "champion"), "iris@champion")


@pytest.mark.parametrize("executor", EXECUTORS)
def test_a_task_loads_the_version_a_task_before_it_registered_in_the_same_run(
    ws: glasspane.Workspace, executor: str
) -> None:
    ws.run(retrain, {"c": 0.5, "alias": "champion"}, executor=executor)  # the old champion
    for c in (2.0, 3.0):  # each run promotes a new champion, then scores it
        result = ws.run(train_then_score, {"c": c}, executor=executor)
        assert result.output == c, "the scoring task loaded a champion older than its run's"
    versions = ws.store.model_versions("iris")
    assert [(v["version"], v["aliases"], v["node_id"]) for v in versions][:2] == [
        (3, ["champion"], "train"), (2, [], "train"),
    ]  # fmt: skip
    assert versions[0]["task_state"] == "succeeded"
