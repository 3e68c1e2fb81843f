"""glasspane's model registry mirrored into MLflow's, against a real ``mlflow server``: a
registered model is logged with its flavour and registered as an MLflow version with the
alias, both version numbers are linked, a replay registers nothing twice, and aliases moved
with ``glasspane models`` move in MLflow too."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import glasspane
from glasspane import pipeline, task
from glasspane.config import load_settings
from glasspane.errors import ConfigError

pytest.importorskip("mlflow", reason='mlflow is not installed: pip install "glasspane[mlflow]"')

from mlflow.tracking import MlflowClient  # noqa: E402 - after the skip

pytestmark = [
    pytest.mark.usefixtures("mlflow_http_env"),
    # MLflow's own import of mlflow.pyfunc warns about its own type hints
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
]

X = [[0.0], [1.0], [2.0], [3.0]]
Y = [0, 0, 1, 1]
PROBE = np.array([[0.4], [2.6], [1.7]])


class Threshold:
    """A model that is no scikit-learn estimator: it goes to MLflow as a pyfunc model."""

    def __init__(self, cut: float) -> None:
        self.cut = cut

    def predict(self, rows: Any) -> Any:
        return (np.asarray(rows, dtype=float).sum(axis=1) > self.cut).astype(int)


def _fitted(c: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c).fit(X, Y)


@task(cache=False)
def fit(name: str, c: float, alias: str) -> float:
    glasspane.register_model(name, _fitted(c), alias=alias or None, metadata={"C": c})
    glasspane.log_metric("c", c)
    return c


@pipeline
def mlflow_registers(name: str, c: float = 1.0, alias: str = "champion"):
    return fit(name, c, alias)


@task(cache=False)
def cut(name: str) -> float:
    glasspane.register_model(name, Threshold(1.5))
    return 1.5


@pipeline
def mlflow_registers_plain(name: str):
    return cut(name)


@task(cache=False)
def table(name: str) -> int:
    glasspane.register_model(name, {"weights": [1, 2]})  # no predict: MLflow cannot load it
    return 1


@pipeline
def mlflow_registers_a_table(name: str):
    return table(name)


def _settings(uri: str, **options: Any) -> Any:
    options = {"tracking_uri": uri, **options}
    return load_settings(trackers=["mlflow"], tracker_options={"mlflow": options})


@dataclass
class Said:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    """``glasspane ARGS...`` with the MLflow tracker on, at tracking URI ``uri`` (in this
    process: a console script would import mlflow again, for seconds)."""
    from glasspane.cli.main import main

    def run(*args: str, uri: str) -> Said:
        monkeypatch.setenv("GLASSPANE_TRACKERS", "mlflow")
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Said(code, out, err)

    return run


def _load(uri: str) -> Any:
    """``mlflow.pyfunc.load_model(uri)``; imported here, where the test's warning filter
    applies (importing mlflow.pyfunc warns about MLflow's own type hints)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(uri)


def _dead_uri() -> str:
    """A tracking URI nothing answers at."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _name() -> str:
    return f"churn-{uuid.uuid4().hex[:8]}"


def test_a_registered_sklearn_model_is_an_mlflow_version_with_its_alias_and_link(
    mlflow_uri: str, cli: Any
) -> None:
    name = _name()
    with glasspane.Workspace(_settings(mlflow_uri)) as ws:
        result = ws.run(mlflow_registers, params={"name": name}, executor="threads")
        (stored,) = ws.store.tracker_links(result.run_id)
    assert result.state == "succeeded" and stored["state"] == "delivered"

    client = MlflowClient(mlflow_uri)
    (version,) = client.search_model_versions(f"name = '{name}'")
    assert version.version == "1"
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    assert {k: v for k, v in version.tags.items() if k != "glasspane.seq"} == {
        "glasspane.model": name, "glasspane.model_version": "1",
        "glasspane.run_id": result.run_id, "glasspane.node": "fit",
        "glasspane.alias": "champion",
    }  # fmt: skip
    child = client.get_run(version.run_id)  # logged in the task's child run
    assert child.data.tags["glasspane.node"] == "fit"
    assert child.data.tags["mlflow.parentRunId"] == stored["external_id"]

    loaded = _load(f"models:/{name}@champion")
    assert "sklearn" in loaded.metadata.flavors
    assert list(loaded.predict(PROBE)) == list(_fitted(1.0).predict(PROBE))

    shown = cli("models", "show", name, "--json", uri=mlflow_uri)
    assert shown.code == 0, shown.stderr
    (row,) = json.loads(shown.stdout)
    assert row["links"] == [
        {"registry": "mlflow", "external_name": name, "external_version": "1",
         "uri": f"models:/{name}/1"},
    ]  # fmt: skip
    table = cli("models", "show", name, uri=mlflow_uri).stdout.splitlines()
    assert table[0].split()[-1] == "LINKS" and table[1].split()[-1] == f"mlflow:{name}/1"


def test_a_model_that_only_predicts_goes_through_pyfunc_and_loads_back(mlflow_uri: str) -> None:
    name = _name()
    with glasspane.Workspace(_settings(mlflow_uri)) as ws:
        result = ws.run(mlflow_registers_plain, params={"name": name}, executor="threads")
        (link,) = ws.store.model_links(name)
    assert result.state == "succeeded"
    assert (link["version"], link["external_version"]) == (1, "1")
    loaded = _load(f"models:/{name}/1")
    assert "sklearn" not in loaded.metadata.flavors
    assert list(loaded.predict(PROBE)) == list(Threshold(1.5).predict(PROBE)) == [0, 1, 1]


def test_registered_model_name_and_registry_false(mlflow_uri: str) -> None:
    name, client = _name(), MlflowClient(mlflow_uri)
    named = _settings(mlflow_uri, registered_model_name="team.{name}")
    with glasspane.Workspace(named) as ws:
        ws.run(mlflow_registers, params={"name": name, "alias": ""})
        (link,) = ws.store.model_links(name)
    assert (link["external_name"], link["uri"]) == (f"team.{name}", f"models:/team.{name}/1")
    assert [v.version for v in client.search_model_versions(f"name = 'team.{name}'")] == ["1"]

    with glasspane.Workspace(_settings(mlflow_uri, registry=False)) as ws:
        ws.run(mlflow_registers, params={"name": name, "c": 2.0, "alias": ""})
        assert [k["version"] for k in ws.store.model_links(name)] == [1]  # 2 stays unlinked
    assert len(client.search_model_versions(f"name = 'team.{name}'")) == 1


def test_unusable_registry_options_are_said_before_anything_runs(mlflow_uri: str) -> None:
    with (
        glasspane.Workspace(_settings(mlflow_uri, registry="yes")) as ws,
        pytest.raises(ConfigError, match=r"option `registry` is 'yes'; give true or false"),
    ):
        ws.trackers()
    bad = _settings(mlflow_uri, registered_model_name="{model}")
    with (
        glasspane.Workspace(bad) as ws,
        pytest.raises(ConfigError, match=r"`registered_model_name` = '\{model\}' is not a"),
    ):
        ws.trackers()


def test_a_model_mlflow_cannot_save_stays_in_glasspane_and_is_said(
    mlflow_uri: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = _name()
    with glasspane.Workspace(_settings(mlflow_uri)) as ws, caplog.at_level(logging.WARNING):
        result = ws.run(mlflow_registers_a_table, params={"name": name})
        (stored,) = ws.store.tracker_links(result.run_id)
        assert ws.store.model_links(name) == []
        assert [v["version"] for v in ws.store.model_versions(name)] == [1]
    assert result.state == "succeeded" and stored["state"] == "delivered"  # not retried
    (said,) = [r.getMessage() for r in caplog.records if name in r.getMessage()]
    assert said.startswith(
        f"tracker `mlflow`: model `{name}` registered by run {result.run_id} (task `table`) was "
        "not registered in MLflow: it could not be saved in MLflow's format (InvalidArgument: "
        "a `dict` cannot be saved as an MLflow model"
    )
    client = MlflowClient(mlflow_uri)
    assert client.search_model_versions(f"name = '{name}'") == []
    (child,) = client.search_runs(
        [client.get_experiment_by_name("mlflow_registers_a_table").experiment_id],
        f"tags.`glasspane.run_id` = '{result.run_id}' and tags.`glasspane.node` = 'table'",
    )
    assert child.data.tags[f"glasspane.model_error.{name}"].startswith("InvalidArgument: a `dict`")


def test_replaying_a_run_registers_no_second_version(mlflow_uri: str) -> None:
    from glasspane.outbox import events_after, relays

    name = _name()
    client = MlflowClient(mlflow_uri)
    with glasspane.Workspace(_settings(mlflow_uri)) as ws:
        result = ws.run(mlflow_registers, params={"name": name}, executor="threads")
        second = ws.run(mlflow_registers, params={"name": name, "c": 2.0, "alias": ""})
        (fresh,) = relays(ws.settings, lambda: ws.store, ws.artifacts)  # a sync's tracker
        try:
            for run_id in (result.run_id, second.run_id):
                for event in events_after(ws.store, run_id, 0):
                    fresh.tracker.on_event(event)
        finally:
            fresh.close()
        links = [(k["version"], k["external_version"]) for k in ws.store.model_links(name)]
    assert links == [(1, "1"), (2, "2")]
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    assert client.get_model_version_by_alias(name, "champion").version == "1"
    (child,) = client.search_runs(
        [client.get_experiment_by_name("mlflow_registers").experiment_id],
        f"tags.`glasspane.run_id` = '{result.run_id}' and tags.`glasspane.node` = 'fit'",
    )
    outputs = client.get_run(child.info.run_id).outputs
    assert len(outputs.model_outputs) == 1  # the model was not logged again


def test_a_model_registered_while_mlflow_is_down_is_registered_and_linked_by_sync(
    mlflow_uri: str,
) -> None:
    name = _name()
    with glasspane.Workspace(_settings(_dead_uri())) as ws:
        result = ws.run(mlflow_registers, params={"name": name})
        (stored,) = ws.store.tracker_links(result.run_id)
    assert result.state == "succeeded" and stored["state"] == "pending"
    with glasspane.Workspace(_settings(mlflow_uri)) as ws:
        (done,) = ws.sync_trackers()
        assert done.error is None and done.run_id == result.run_id
        (link,) = ws.store.model_links(name)
    assert (link["version"], link["external_version"]) == (1, "1")
    client = MlflowClient(mlflow_uri)
    assert client.get_model_version_by_alias(name, "champion").tags["glasspane.run_id"] == (
        result.run_id
    )


def test_promote_and_alias_rm_move_the_alias_in_mlflow_too(mlflow_uri: str, cli: Any) -> None:
    name = _name()
    with glasspane.Workspace(_settings(mlflow_uri)) as ws:
        for c in (1.0, 2.0):
            ws.run(mlflow_registers, params={"name": name, "c": c, "alias": ""})
    client = MlflowClient(mlflow_uri)

    promoted = cli("models", "promote", name, "2", "--alias", "champion",
                    uri=mlflow_uri)  # fmt: skip
    assert promoted.code == 0, promoted.stderr
    assert promoted.stdout == (
        f"{name}@champion -> version 2\nmlflow: {name}@champion -> version 2\n"
    )
    assert client.get_model_version_by_alias(name, "champion").version == "2"

    removed = cli("models", "alias", "rm", name, "champion", uri=mlflow_uri)
    assert removed.code == 0, removed.stderr
    assert removed.stdout.splitlines()[1] == f"mlflow: removed {name}@champion"
    assert client.get_registered_model(name).aliases == {}


def test_promote_with_mlflow_unreachable_moves_glasspanes_alias_and_says_how_to_retry(
    mlflow_uri: str, cli: Any
) -> None:
    name = _name()
    with glasspane.Workspace(_settings(mlflow_uri)) as ws:
        ws.run(mlflow_registers, params={"name": name, "alias": ""})
    dead = _dead_uri()
    promoted = cli("models", "promote", name, "1", "--alias", "champion",
                    uri=dead)  # fmt: skip
    assert promoted.code == 0
    assert promoted.stdout == f"{name}@champion -> version 1\n"
    assert promoted.stderr.startswith(
        f"glasspane: warning: {name}@champion moved in glasspane, but not in tracker `mlflow`'s "
        "registry (tracker `mlflow` could not point alias"
    )
    assert promoted.stderr.rstrip().endswith(
        f"run `glasspane models promote {name} 1 --alias champion` again once it is reachable"
    )
    shown = cli("models", "show", name, "--json", uri=dead)
    assert json.loads(shown.stdout)[0]["aliases"] == ["champion"]
