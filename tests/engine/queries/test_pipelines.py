"""Pipelines and their versions, metric series per run and across a pipeline's runs."""

from __future__ import annotations

import pytest
from query_flows import Stores, features, load, other, retrain

from glasspane import pipeline, queries
from glasspane.errors import NotFound


@pipeline
def retrain_v2(n: int = 4):  # same name, another structure: a second version
    return features(load(n))


retrain_v2.name = "retrain"


def test_pipelines_and_versions_with_graphs(stores: Stores) -> None:
    first = retrain.run(n=3, executor="inline")
    retrain.run(n=4, executor="inline")
    other.run(x=1, executor="inline")
    listed = {p.name: p for p in queries.pipelines(stores.metadata)}
    assert list(listed) == ["other", "retrain"]
    assert (listed["retrain"].n_runs, listed["retrain"].n_versions) == (2, 1)
    assert listed["other"].last_state == "succeeded"

    [version] = queries.pipeline_versions(stores.metadata, "retrain")
    assert version.hash == queries.get_run(stores.metadata, first.run_id).version_hash
    assert version.n_runs == 2 and version.graph is not None
    assert {n["id"] for n in version.graph["nodes"]} == {"load", "train", "evaluate", "features"}
    light = queries.pipeline_versions(stores.metadata, "retrain", graphs=False)
    assert light[0].graph is None and light[0].hash == version.hash
    one = queries.pipeline_version(stores.metadata, "retrain", version.hash[:10])
    assert one == version
    with pytest.raises(
        NotFound, match="no pipeline `nope`; the pipelines with runs are: other, retrain"
    ):
        queries.pipeline_versions(stores.metadata, "nope")


def test_metric_series_of_a_run_and_across_runs(stores: Stores) -> None:
    runs = [retrain.run(n=3, lr=lr, executor="inline").run_id for lr in (0.3, 0.6, 0.9)]
    series = queries.run_metrics(stores.metadata, runs[0])
    loss = [(p.node, p.step, p.value) for p in series.metrics if p.key == "loss"]
    assert loss == [
        ("train", 0, pytest.approx(0.3)),
        ("train", 1, pytest.approx(0.15)),
        ("train", 2, pytest.approx(0.1)),
    ]
    assert [(p.node, p.key, p.value) for p in series.params] == [("train", "optimizer", "sgd")]

    across = queries.metric_across_runs(stores.metadata, "retrain", "loss")
    assert [(r.run_id, r.step) for r in across.runs] == [(run_id, 2) for run_id in runs]
    assert [r.value for r in across.runs] == pytest.approx([0.1, 0.2, 0.3])
    newest = queries.metric_across_runs(stores.metadata, "retrain", "loss", limit=2)
    assert [r.run_id for r in newest.runs] == runs[1:]
    assert queries.metric_across_runs(stores.metadata, "retrain", "nothing").runs == []
