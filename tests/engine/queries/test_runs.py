"""Runs: pages with keyset pagination and filters, one run, its graph, one task run."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from query_flows import Stores, fails, other, retrain

import glasspane
from glasspane import queries
from glasspane.errors import InvalidArgument, NotFound


def test_pages_walk_every_run_once_newest_first_and_stay_put_while_runs_start(
    stores: Stores,
) -> None:
    ids = [retrain.run(n=3, lr=0.1 * i, executor="inline").run_id for i in range(1, 6)]
    newest_first = ids[::-1]

    first = queries.list_runs(stores.metadata, limit=2)
    assert [r.run_id for r in first.runs] == newest_first[:2]
    assert first.next_cursor is not None
    # a run started between two pages lands before the first page, and shifts no page
    started = retrain.run(n=3, lr=9.0, executor="inline").run_id
    second = queries.list_runs(stores.metadata, limit=2, cursor=first.next_cursor)
    third = queries.list_runs(stores.metadata, limit=2, cursor=second.next_cursor)
    assert [r.run_id for r in second.runs] == newest_first[2:4]
    assert [r.run_id for r in third.runs] == newest_first[4:]
    assert third.next_cursor is None
    assert queries.list_runs(stores.metadata, limit=1).runs[0].run_id == started


def test_a_summary_has_counts_timings_and_params(stores: Stores) -> None:
    first = retrain.run(n=4, lr=0.5, executor="inline")
    again = retrain.run(n=4, lr=0.5, executor="inline")
    [latest, earliest] = queries.list_runs(stores.metadata).runs
    assert (latest.run_id, earliest.run_id) == (again.run_id, first.run_id)
    assert earliest.params == {"n": 4, "lr": 0.5}
    assert (earliest.n_tasks, earliest.n_succeeded, earliest.n_cached) == (4, 4, 0)
    assert (latest.n_tasks, latest.n_cached) == (4, 4)
    assert earliest.state == "succeeded" and earliest.trigger == "manual"
    assert earliest.duration is not None and earliest.duration >= 0
    assert earliest.created_at.tzinfo is not None
    assert earliest.version_hash == latest.version_hash


def test_filters_by_pipeline_state_trigger_time_and_tag(stores: Stores) -> None:
    good = retrain.run(n=3, executor="inline").run_id
    other_run = other.run(x=2, executor="inline").run_id
    failed = fails.run(x=1, executor="inline", raise_on_failure=False).run_id
    retried = glasspane.retry(failed, executor="inline", raise_on_failure=False).run_id

    def ids(**filters: object) -> set[str]:
        return {r.run_id for r in queries.list_runs(stores.metadata, **filters).runs}  # type: ignore[arg-type]

    assert ids(pipeline="other") == {other_run}
    assert ids(state="failed") == {failed, retried}
    assert ids(state=["succeeded", "failed"]) == {good, other_run, failed, retried}
    assert ids(trigger="retry") == {retried}
    assert ids(tag="data") == {good}  # retrain's `load` task is tagged "data"
    assert ids(tag="nothing") == set()
    now = datetime.now(timezone.utc)
    assert ids(since=now) == set()
    assert ids(until=now) == {good, other_run, failed, retried}
    [cut] = [r for r in queries.list_runs(stores.metadata).runs if r.run_id == failed]
    assert ids(since=cut.created_at) == {failed, retried}
    assert ids(until=cut.created_at, since=now - timedelta(hours=1)) == {good, other_run}


def test_bad_arguments_say_what_to_pass(stores: Stores) -> None:
    with pytest.raises(
        InvalidArgument, match="is not one a page of runs returned; pass `next_cursor`"
    ):
        queries.list_runs(stores.metadata, cursor="garbage!")
    with pytest.raises(
        InvalidArgument, match="unknown run state `done`; use one of .*pending, running"
    ):
        queries.list_runs(stores.metadata, state="done")
    with pytest.raises(InvalidArgument, match="a page holds 1 to 500 runs, not 0"):
        queries.list_runs(stores.metadata, limit=0)
    with pytest.raises(InvalidArgument, match="`since` must be timezone-aware"):
        queries.list_runs(stores.metadata, since=datetime(2026, 1, 1))
    with pytest.raises(NotFound, match="no run `nosuchrun`"):
        queries.get_run(stores.metadata, "nosuchrun")


def test_run_detail_has_every_task_run(stores: Stores) -> None:
    result = fails.run(x=7, executor="inline", raise_on_failure=False)
    run = queries.get_run(stores.metadata, result.run_id[:6])  # a unique prefix will do
    assert run.run_id == result.run_id and run.state == "failed"
    assert "bad input 7" in (run.error or "")
    assert run.pipeline_ref is not None and run.pipeline_ref.endswith(":fails")
    tasks = {t.node: t for t in run.tasks}
    assert tasks["flaky"].state == "failed" and tasks["flaky"].attempts == 2
    assert tasks["other_step"].state == "upstream_failed"
    assert (run.n_tasks, run.n_failed, run.n_succeeded) == (2, 1, 0)
    # the detail is as of its last event: following from there finds nothing more
    events = list(glasspane.follow(run.run_id))
    assert run.last_seq == events[-1].seq and events[-1].kind == "run_finished"


def test_graph_has_each_nodes_state_and_the_edges(stores: Stores) -> None:
    result = fails.run(x=1, executor="inline", raise_on_failure=False)
    graph = queries.run_graph(stores.metadata, result.run_id)
    assert {n.id: n.state for n in graph.nodes} == {
        "flaky": "failed",
        "other_step": "upstream_failed",
    }
    assert [(e.source, e.target, e.args) for e in graph.edges] == [("flaky", "other_step", ["x"])]
    assert graph.output == ["other_step"]
    tagged = queries.run_graph(stores.metadata, retrain.run(executor="inline").run_id)
    assert {n.id: n.tags for n in tagged.nodes}["load"] == ["data"]


def test_task_detail_has_attempts_traceback_output_and_cache(stores: Stores) -> None:
    failed = fails.run(x=3, executor="inline", raise_on_failure=False)
    flaky = queries.task_detail(stores.metadata, failed.run_id, "flaky")
    assert [a.attempt for a in flaky.attempts] == [1, 2]
    assert all(a.state == "failed" for a in flaky.attempts)
    assert "RuntimeError: bad input 3" in (flaky.attempts[0].traceback or "")
    assert "RuntimeError: bad input 3" in (flaky.traceback or "")
    assert flaky.attempts[1].stdout == "about to fail\n"
    assert flaky.cache_hit is False and flaky.outputs == []

    first = retrain.run(n=5, lr=0.2, executor="inline")
    train = queries.task_detail(stores.metadata, first.run_id, "train")
    assert train.state == "succeeded" and train.cache_hit is False
    assert "training with lr=0.2" in (train.stdout or "")
    assert train.metrics == {"loss": pytest.approx(0.2 / 3)}
    assert train.params == {"optimizer": "sgd"}
    assert [(i.name, i.type_name) for i in train.inputs] == [("frame", "pandas.DataFrame")]
    [model] = train.outputs
    assert model.type_name.endswith("Model") and model.materializer == "pickle"
    assert train.cache_key is not None

    again = retrain.run(n=5, lr=0.2, executor="inline")
    hit = queries.task_detail(stores.metadata, again.run_id, "train")
    assert hit.cache_hit is True and hit.cache_key == train.cache_key and hit.attempts == []
    assert hit.outputs[0].content_hash == model.content_hash
    with pytest.raises(NotFound, match="has no node `nope`; its nodes are: evaluate, features"):
        queries.task_detail(stores.metadata, again.run_id, "nope")


def test_records_serve_as_json_with_a_schema(stores: Stores) -> None:
    result = retrain.run(executor="inline")
    detail = queries.get_run(stores.metadata, result.run_id)
    data = detail.model_dump(mode="json")
    assert data["created_at"].endswith("Z") and data["tasks"][0]["node"] == "load"
    assert queries.RunDetail.model_validate_json(detail.model_dump_json()) == detail
    schema = queries.RunPage.model_json_schema()
    assert schema["properties"]["next_cursor"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert "RunSummary" in schema["$defs"]


def test_a_queued_run_is_listed_and_read_before_its_process_takes_it_over(stores: Stores) -> None:
    from glasspane.queries import get_run, list_runs, run_graph

    stores.metadata.queue_run(
        run_id="q0000000001",
        pipeline_name="later",
        pipeline_ref="/srv/flows.py:later",
        params={"n": 3},
        trigger="ui",
        executor=None,
    )
    [summary] = [r for r in list_runs(stores.metadata).runs if r.run_id == "q0000000001"]
    assert (summary.state, summary.pipeline, summary.version_hash) == ("queued", "later", None)
    detail = get_run(stores.metadata, "q0000000001")
    assert detail.state == "queued" and detail.pipeline_ref == "/srv/flows.py:later"
    assert detail.tasks == [] and detail.params == {"n": 3}
    graph = run_graph(stores.metadata, "q0000000001")
    assert graph.nodes == [] and graph.edges == []
