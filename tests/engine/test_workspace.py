"""The Workspace: what it owns, that two of them share nothing, and following a run's events
from another process."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

import glasspane
from glasspane import Workspace, pipeline, task
from glasspane.errors import ConfigError, GlasspaneError, NotFound
from glasspane.events import MetricLogged, OutputLogged, RunFinished, RunStarted, TaskFinished


@task
def square(x: int) -> int:
    return x * x


@task
def add(values: list[int]) -> int:
    return sum(values)


@pipeline
def squares(n: int = 3):
    return add(square.map(x=list(range(n))))


def test_a_workspace_records_in_its_own_home(tmp_path: Path, glasspane_home: Path) -> None:
    with Workspace(home=tmp_path / "ws") as ws:
        result = squares.run(n=4, workspace=ws)
        assert result.output == 14
        assert (tmp_path / "ws" / "glasspane.db").exists()
        assert [r["run_id"] for r in ws.store.list_runs()] == [result.run_id]
    assert not (glasspane_home / "glasspane.db").exists()  # the default home saw nothing
    with pytest.raises(GlasspaneError, match="this Workspace is closed"):
        ws.run(squares, {"n": 1})


def test_two_workspaces_share_nothing(tmp_path: Path) -> None:
    one, two = Workspace(home=tmp_path / "one"), Workspace(home=tmp_path / "two")
    try:
        first = one.run(squares, {"n": 5})
        second = two.run(squares, {"n": 5})
        assert first.output == second.output == 30
        assert not any(t.cached for t in second.tasks)  # not one's artifacts
        assert one.store is not two.store and one.artifacts.root != two.artifacts.root
        assert [r["run_id"] for r in one.store.list_runs()] == [first.run_id]
        assert [r["run_id"] for r in two.store.list_runs()] == [second.run_id]
        with pytest.raises(NotFound):
            two.store.get_run(first.run_id)
        assert all(t.cached for t in one.run(squares, {"n": 5}).tasks)
    finally:
        one.close()
        two.close()


@pytest.mark.dask
def test_two_workspaces_run_on_their_own_clusters_and_closing_one_releases_it(
    tmp_path: Path,
) -> None:
    one, two = Workspace(home=tmp_path / "one"), Workspace(home=tmp_path / "two")
    try:
        assert one.run(squares, {"n": 3}, executor="dask").output == 5
        assert two.run(squares, {"n": 3}, executor="dask").output == 5
        first, second = one.executor("dask"), two.executor("dask")
        assert first is not second
        cluster = first._cluster  # type: ignore[attr-defined]
        assert cluster is not second._cluster  # type: ignore[attr-defined]
        workers = [w.pid for w in cluster.workers.values() if hasattr(w, "pid")]
        one.close()
        assert cluster.status.name == "closed"
        deadline = time.time() + 15
        while any(_alive(pid) for pid in workers) and time.time() < deadline:
            time.sleep(0.1)
        assert not any(_alive(pid) for pid in workers)  # no worker process left behind
        assert two.run(squares, {"n": 4}, executor="dask").output == 14  # two goes on
    finally:
        one.close()
        two.close()


def _alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return (
        Path(f"/proc/{pid}/status").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text()
    )


def test_workspace_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="settings or home, not both"):
        Workspace(glasspane.load_settings(), home=tmp_path)
    with pytest.raises(ConfigError, match="settings or workspace, not both"):
        squares.run(n=1, workspace=Workspace(home=tmp_path), settings=glasspane.load_settings())


def test_follow_a_finished_run_yields_its_events_then_stops(tmp_path: Path) -> None:
    with Workspace(home=tmp_path) as ws:
        result = ws.run(squares, {"n": 2})
        events = list(ws.follow(result.run_id[:6], timeout=10))
        assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        later = list(ws.follow(result.run_id, after=events[-3].seq, timeout=10))
        assert later == events[-2:]
        with pytest.raises(NotFound):
            list(ws.follow("nosuchrun", timeout=1))


LIVE = """
import time
from pathlib import Path

from glasspane import log_metric, pipeline, task


@task
def train(gate: str) -> float:
    for epoch in range(3):
        log_metric("loss", 1.0 / (epoch + 1), step=epoch)
        print("epoch", epoch)
        deadline = time.time() + 60
        while not Path(f"{gate}.{epoch}").exists() and time.time() < deadline:
            time.sleep(0.02)
    return 0.25


@pipeline
def live(gate: str):
    return train(gate)
"""


@pytest.mark.dask
def test_a_second_process_follows_a_live_dask_run_within_a_second(
    tmp_path: Path, cli_env: dict[str, str], glasspane_cmd: list[str]
) -> None:
    (tmp_path / "live.py").write_text(LIVE)
    gate = tmp_path / "gate"
    child = subprocess.Popen(
        [*glasspane_cmd, "run", "live.py:live", "--executor", "dask", "-p", f"gate={gate}"],
        cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        home = Path(cli_env["GLASSPANE_HOME"])
        ws = Workspace(home=home)
        deadline = time.time() + 120
        runs: list[dict] = []
        while not runs and time.time() < deadline:  # the child creates the database and run
            time.sleep(0.1)
            try:
                runs = ws.reader().list_runs()
            except NotFound:  # not created, or not migrated yet
                pass
        assert runs, "the run never started"
        lags: list[float] = []
        seen = []
        for event in ws.follow(runs[0]["run_id"], timeout=120):
            seen.append(event)
            if isinstance(event, MetricLogged):
                lags.append(time.time() - event.ts)
                (tmp_path / f"gate.{event.step}").touch()  # let the task go on
        kinds = [e.kind for e in seen]
        assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
        metrics = [e for e in seen if isinstance(e, MetricLogged)]
        assert [(m.key, m.step) for m in metrics] == [("loss", 0), ("loss", 1), ("loss", 2)]
        # each metric was heard while the task waited for it to be heard: live, not at the end
        assert max(lags) < 1.0, lags
        assert any(isinstance(e, OutputLogged) and "epoch 0" in e.text for e in seen)
        [done] = [e for e in seen if isinstance(e, TaskFinished)]
        assert done.state == "succeeded"
        assert child.wait(60) == 0
    finally:
        for epoch in range(3):
            (tmp_path / f"gate.{epoch}").touch()
        if child.poll() is None:
            child.kill()
        child.wait(30)
    ws.close()


def test_queries_run_on_a_workspace_stores(tmp_path: Path) -> None:
    from glasspane import queries

    with Workspace(home=tmp_path) as ws:
        with pytest.raises(NotFound, match="no glasspane database exists"):
            ws.query(queries.list_runs)  # a read creates nothing
        result = ws.run(squares, {"n": 3})
        page = ws.query(queries.list_runs, state="succeeded")
        assert [r.run_id for r in page.runs] == [result.run_id]
        [total] = [t for t in ws.query(queries.get_run, result.run_id).tasks if t.node == "add"]
        digest = ws.store.get_run(result.run_id)["tasks"][-1]["outputs"][0]["content_hash"]
        detail = ws.query(queries.artifact, digest[:12])  # gets the artifact store too
        assert detail.content_hash == digest and total.state == "succeeded"
