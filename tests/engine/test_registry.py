"""glasspane's own model registry: versions registered by tasks on every executor, aliases,
references, the run and task that produced each version, and the errors a user can cause."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import glasspane
from glasspane import pipeline, register_model, task
from glasspane.config import Settings
from glasspane.errors import GlasspaneError, InvalidArgument, NotFound, RunFailed

EXECUTORS = ["inline", "threads", pytest.param("dask", marks=pytest.mark.dask)]


@task
def train(c: float, alias: str | None = None) -> float:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(C=c, max_iter=500).fit(X, y)
    register_model("iris", model, alias=alias, metadata={"C": c, "accuracy": model.score(X, y)})
    return c


@pipeline
def retrain(c: float = 1.0, alias: str | None = None):
    return train(c, alias)


@pytest.fixture
def ws(tmp_path: Path) -> glasspane.Workspace:
    with glasspane.Workspace(Settings(home=tmp_path / "home")) as workspace:
        yield workspace


@pytest.mark.parametrize("executor", EXECUTORS)
def test_each_registration_is_a_new_version_with_its_run_and_task(
    ws: glasspane.Workspace, executor: str
) -> None:
    first = ws.run(retrain, {"c": 0.5}, executor=executor)
    second = ws.run(retrain, {"c": 2.0, "alias": "champion"}, executor=executor)
    versions = ws.store.model_versions("iris")
    assert [(v["version"], v["run_id"], v["node_id"]) for v in versions] == [
        (2, second.run_id, "train"),
        (1, first.run_id, "train"),
    ]
    assert versions[0]["aliases"] == ["champion"] and versions[1]["aliases"] == []
    assert versions[0]["meta"]["C"] == 2.0 and versions[0]["meta"]["accuracy"] > 0.9
    assert versions[0]["task_state"] == "succeeded"
    champion = glasspane.load_model("iris@champion", workspace=ws)
    assert isinstance(champion, LogisticRegression) and champion.C == 2.0
    assert glasspane.load_model("iris/1", workspace=ws).C == 0.5
    assert glasspane.load_model("iris", workspace=ws).C == 2.0  # the latest


def test_a_cached_rerun_registers_nothing(ws: glasspane.Workspace) -> None:
    ws.run(retrain, {"c": 0.5})
    ws.run(retrain, {"c": 0.5})  # the task is answered from the cache: it does not run
    assert [v["version"] for v in ws.store.model_versions("iris")] == [1]


def test_promote_moves_an_alias_and_says_where_it_was(ws: glasspane.Workspace) -> None:
    ws.run(retrain, {"c": 0.5, "alias": "champion"})
    ws.run(retrain, {"c": 2.0})
    assert ws.store.set_model_alias("iris", "champion", 2) == 1
    assert ws.store.resolve_model("iris@champion")["version"] == 2
    assert ws.store.set_model_alias("iris", "staging", 1) is None
    assert ws.store.remove_model_alias("iris", "staging") == 1
    with pytest.raises(NotFound, match="model `iris` has no alias `staging` \\(its aliases: "):
        ws.store.resolve_model("iris@staging")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("iris/9", "model `iris` has no version 9 (its versions: 1 to 1)"),
        ("iris@gold", "model `iris` has no alias `gold` (its aliases: none); set it with "
         "`glasspane models promote iris VERSION --alias gold`"),
        ("churn", "no model `churn` is registered (registered: `iris`)"),
    ],
)  # fmt: skip
def test_a_reference_to_nothing_names_what_there_is(
    ws: glasspane.Workspace, ref: str, message: str
) -> None:
    ws.run(retrain, {"c": 0.5})
    with pytest.raises(NotFound) as caught:
        glasspane.load_model(ref, workspace=ws)
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("iris/x", "model reference 'iris/x': the version after `/` is a number from 1"),
        ("iris@1", "alias '1' is a number"),
        ("bad name", "model 'bad name' is not a valid name"),
    ],
)
def test_a_malformed_reference_says_what_a_reference_looks_like(
    ws: glasspane.Workspace, ref: str, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", "\\(")):
        glasspane.load_model(ref, workspace=ws)


def test_register_model_outside_a_task_says_where_to_call_it() -> None:
    with pytest.raises(GlasspaneError, match="was called outside a running task"):
        register_model("iris", object())


@task
def bad_metadata() -> int:
    register_model("iris", LogisticRegression(), metadata={"when": object()})
    return 1


@pipeline
def registers_bad_metadata():
    return bad_metadata()


@task
def loads_inside() -> int:
    glasspane.load_model("iris")
    return 1


@pipeline
def loads_in_a_task():
    return loads_inside()


def test_bad_metadata_and_loading_inside_a_task_fail_the_task_saying_why(
    ws: glasspane.Workspace,
) -> None:
    with pytest.raises(RunFailed, match="metadata must be JSON values"):
        ws.run(registers_bad_metadata)
    with pytest.raises(RunFailed, match="no model `iris` is registered \\(registered: none yet\\)"):
        ws.run(loads_in_a_task)
    assert ws.store.model_versions() == []  # nothing half-registered


def test_versions_are_recorded_on_postgresql(postgres_db_url: str) -> None:
    settings = Settings(database_url=postgres_db_url, home=Path(postgres_db_url.rsplit("/", 1)[1]))
    with glasspane.Workspace(settings) as ws:
        ws.run(retrain, {"c": 0.5, "alias": "champion"})
        ws.run(retrain, {"c": 2.0})
        assert [v["version"] for v in ws.store.model_versions("iris")] == [2, 1]
        assert glasspane.load_model("iris@champion", workspace=ws).C == 0.5
