"""WandbTracker, fed glasspane's typed events directly, read back from what W&B wrote.

W&B runs offline here (``WANDB_MODE=offline``, everything under ``tmp_path``); each test reads
the run's transaction log back with W&B's own ``wandb leet inspect`` (see ``wandb_records``),
so what is asserted is what ``wandb sync`` would upload.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("wandb")

from wandb_records import read_run, transaction_logs  # noqa: E402

from glasspane.artifacts import ArtifactStore  # noqa: E402
from glasspane.errors import ConfigError  # noqa: E402
from glasspane.events import (  # noqa: E402
    ArtifactLogged,
    Event,
    MetricLogged,
    OutputLogged,
    ParamLogged,
    RunFinished,
    RunStarted,
    TaskFinished,
    TaskStarted,
)
from glasspane.integrations.wandb import WandbTracker, wandb_run_id  # noqa: E402
from glasspane.tracking import TrackerContext, TrackerError, make  # noqa: E402
from glasspane.types import ArtifactInfo  # noqa: E402

RUN = "0a1b2c3d4e5f"


@pytest.fixture
def wandb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """W&B offline and silent, its files (runs, staging, cache, settings) under tmp_path; the
    W&B service this process started is stopped afterwards."""
    root = tmp_path / "wandb-dir"
    root.mkdir()
    env = {
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(root),
        "WANDB_DATA_DIR": str(tmp_path / "wandb-data"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(name, raising=False)
    yield root
    import wandb

    wandb.teardown()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "a"))


def tracker_for(store: ArtifactStore, **options: object) -> WandbTracker:
    context = TrackerContext(
        name="wandb",
        options={"project": "glasspane-tests", **options},
        artifacts=store,
        run_url=lambda run_id: f"http://127.0.0.1:8265/runs/{run_id}",
    )
    return WandbTracker(context)


@pytest.fixture
def tracker(wandb_dir: Path, store: ArtifactStore) -> Iterator[WandbTracker]:
    tracker = tracker_for(store)
    yield tracker
    tracker.close()


def grid_run(run_id: str, report: ArtifactInfo, *, state: str = "succeeded") -> list[Event]:
    """A `.map` grid search: two nodes logging their own steps, interleaved."""
    events: list[Event] = [
        RunStarted(
            run_id=run_id, seq=1, pipeline="retrain", version="v-3f2a", trigger="schedule",
            params={"n_rows": 500, "C": [0.1, 1.0], "api_key": "**********"},
        ),
        TaskStarted(run_id=run_id, seq=2, node="train[0]", task="train", params={"C": 0.1}),
        TaskStarted(run_id=run_id, seq=3, node="train[1]", task="train", params={"C": 1.0}),
    ]  # fmt: skip
    seq = 4
    for step in (1, 2, 3):
        for i, node in enumerate(("train[0]", "train[1]")):
            loss = 1.0 / (step + i)
            events.append(
                MetricLogged(run_id=run_id, seq=seq, node=node, key="loss", value=loss, step=step)
            )
            seq += 1
    events += [
        ParamLogged(run_id=run_id, seq=seq, node="train[1]", key="solver", value="lbfgs"),
        OutputLogged(run_id=run_id, seq=seq + 1, node="train[1]", attempt=1, stream="stdout",
                     text="fitting\n"),
        TaskFinished(run_id=run_id, seq=seq + 2, node="train[1]", task="train", state="succeeded"),
        ArtifactLogged(run_id=run_id, seq=seq + 3, node="evaluate", name="report",
                       filename="report.html", artifact=report),
        RunFinished(run_id=run_id, seq=seq + 4, state=state,
                    error=None if state == "succeeded" else "task `evaluate` failed"),
    ]  # fmt: skip
    return events


@pytest.fixture
def report(store: ArtifactStore, tmp_path: Path) -> ArtifactInfo:
    path = tmp_path / "report.html"
    path.write_text("<h1>accuracy 0.93</h1>")
    return store.put_file(path)


def deliver(tracker: WandbTracker, events: list[Event], times: int = 1) -> None:
    for event in events:
        for _ in range(times):
            tracker.on_event(event)


# ---- the run ---------------------------------------------------------------------------------


def test_run_id_is_derived_from_the_glasspane_run_id() -> None:
    assert wandb_run_id(RUN) == RUN
    odd = wandb_run_id("Nightly/Run:7")
    assert odd == wandb_run_id("Nightly/Run:7")
    assert re.fullmatch(r"gp-[0-9a-f]{24}", odd)
    assert wandb_run_id("Nightly/Run:8") != odd


def test_a_run_becomes_one_wandb_run_with_its_params_and_node_constants(
    tracker: WandbTracker, wandb_dir: Path, report: ArtifactInfo
) -> None:
    deliver(tracker, grid_run(RUN, report))

    (path,) = transaction_logs(wandb_dir)
    run = read_run(path)
    assert run.run_id == RUN
    assert run.project == "glasspane-tests"
    assert run.group == "retrain"
    assert run.name == "retrain-0a1b2c3d"
    assert set(run.tags) == {"glasspane", "trigger:schedule"}
    assert run.config == {
        "n_rows": 500,
        "C": [0.1, 1],
        "api_key": "**********",  # secrets stay masked
        "glasspane.run_id": RUN,
        "glasspane.version": "v-3f2a",
        "glasspane.url": f"http://127.0.0.1:8265/runs/{RUN}",
        "train[0]": {"C": 0.1},
        "train[1]": {"C": 1, "solver": "lbfgs"},
    }


def test_each_node_keeps_its_metric_history_with_its_steps(
    tracker: WandbTracker, wandb_dir: Path, report: ArtifactInfo
) -> None:
    events = grid_run(RUN, report)
    deliver(tracker, events)

    run = read_run(transaction_logs(wandb_dir)[0])
    assert run.metrics["train[0]/loss"] == "train[0]/step"
    assert run.metrics["train[1]/loss"] == "train[1]/step"
    assert run.series("train[0]/loss", "train[0]/step") == [(1, 1.0), (2, 0.5), (3, 1 / 3)]
    assert run.series("train[1]/loss", "train[1]/step") == [(1, 0.5), (2, 1 / 3), (3, 0.25)]
    # stamped when the task logged them, not when they were delivered
    stamps = [row["_timestamp"] for row in run.history if "train[0]/loss" in row]
    assert stamps == [e.ts for e in events if isinstance(e, MetricLogged) and e.node == "train[0]"]
    # the summary holds each metric's last value, and how the run ended
    assert run.summary["train[0]/loss"] == 1 / 3
    assert run.summary["train[1]/loss"] == 0.25
    assert run.summary["glasspane.state"] == "succeeded"
    assert run.exit_code == 0
    assert run.state == "finished"


def test_a_logged_artifact_is_a_wandb_artifact_with_the_file(
    tracker: WandbTracker, wandb_dir: Path, report: ArtifactInfo
) -> None:
    deliver(tracker, grid_run(RUN, report))

    (artifact,) = read_run(transaction_logs(wandb_dir)[0]).artifacts
    assert artifact["type"] == "glasspane-output"
    assert artifact["name"] == "retrain-evaluate-report"
    (entry,) = artifact["manifest"]["contents"]
    data = b"<h1>accuracy 0.93</h1>"
    assert entry["path"] == "report.html"
    assert int(entry["size"]) == len(data)
    assert entry["digest"] == base64.b64encode(hashlib.md5(data).digest()).decode()
    assert f'"glasspane.content_hash":"{report.content_hash}"' in artifact["metadata"]


def test_a_failed_run_finishes_with_a_nonzero_exit_code(
    tracker: WandbTracker, wandb_dir: Path, report: ArtifactInfo
) -> None:
    deliver(tracker, grid_run(RUN, report, state="failed"))

    run = read_run(transaction_logs(wandb_dir)[0])
    assert run.exit_code == 1
    assert run.state == "failed"
    assert run.summary["glasspane.state"] == "failed"
    assert run.summary["glasspane.error"] == "task `evaluate` failed"


def test_an_event_delivered_twice_is_logged_once(
    tracker: WandbTracker, wandb_dir: Path, report: ArtifactInfo
) -> None:
    deliver(tracker, grid_run(RUN, report), times=2)
    deliver(tracker, grid_run(RUN, report))  # the whole run again, after it finished

    (path,) = transaction_logs(wandb_dir)
    run = read_run(path)
    assert run.run_records == 1
    assert run.series("train[0]/loss", "train[0]/step") == [(1, 1.0), (2, 0.5), (3, 1 / 3)]
    assert len(run.history) == 6
    assert len(run.artifacts) == 1
    assert run.exit_code == 0


def test_a_replay_in_a_new_process_continues_the_same_wandb_run(
    wandb_dir: Path, store: ArtifactStore, report: ArtifactInfo
) -> None:
    events = grid_run(RUN, report)
    first = tracker_for(store)
    deliver(first, events[:5])
    first.close()  # the driver stopped before the run ended
    fresh = tracker_for(store)  # the outbox replays the whole run to a new tracker
    deliver(fresh, events)
    fresh.close()

    earlier, later = (read_run(path) for path in transaction_logs(wandb_dir, RUN))
    assert earlier.run_id == later.run_id == RUN  # one W&B run once synced, never a second
    assert (earlier.exit_code, earlier.summary["glasspane.state"]) == (1, "interrupted")
    assert (later.exit_code, later.summary["glasspane.state"]) == (0, "succeeded")
    assert fresh.link(RUN) is not None and fresh.link(RUN).external_id == RUN
    # offline, the new process cannot read what the first wrote (see the module docstring):
    # the later log holds the whole history again
    assert len(later.history) == 6


def test_link_names_the_wandb_run_and_its_offline_directory(
    tracker: WandbTracker, wandb_dir: Path, report: ArtifactInfo
) -> None:
    assert tracker.link(RUN) is None
    events = grid_run(RUN, report)
    deliver(tracker, events[:1])

    link = tracker.link(RUN)
    assert link is not None
    assert (link.tracker, link.external_id) == ("wandb", RUN)
    assert link.url is not None and (Path(link.url) / f"run-{RUN}.wandb").exists()
    deliver(tracker, events[1:])
    assert tracker.link(RUN) == link


def test_two_runs_tracked_at_once_from_two_threads_are_two_wandb_runs(
    tracker: WandbTracker, wandb_dir: Path, report: ArtifactInfo
) -> None:
    run_ids = ["aaaaaaaaaaaa", "bbbbbbbbbbbb"]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def drive(run_id: str) -> None:
        try:
            events = grid_run(run_id, report)
            deliver(tracker, events[:1])
            barrier.wait(timeout=60)  # both W&B runs are open from here on
            deliver(tracker, events[1:])
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=drive, args=(run_id,)) for run_id in run_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []

    logs = {run_id: read_run(transaction_logs(wandb_dir, run_id)[0]) for run_id in run_ids}
    for run_id, run in logs.items():
        assert run.run_id == run_id
        assert run.config["glasspane.run_id"] == run_id
        assert len(run.history) == 6
        assert run.exit_code == 0
    assert len(transaction_logs(wandb_dir)) == 2


# ---- configuration ---------------------------------------------------------------------------


def test_project_comes_from_the_option_then_wandb_project_then_glasspane(
    wandb_dir: Path, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = [RunStarted(run_id=RUN, seq=1, pipeline="retrain", version="v1")]
    tracker = WandbTracker(TrackerContext(name="wandb", artifacts=store))
    deliver(tracker, started)
    tracker.close()
    monkeypatch.setenv("WANDB_PROJECT", "from-env")
    tracker = WandbTracker(TrackerContext(name="wandb", artifacts=store))
    deliver(tracker, [RunStarted(run_id="cccccccccccc", seq=1, pipeline="retrain", version="v1")])
    tracker.close()

    assert read_run(transaction_logs(wandb_dir, RUN)[0]).project == "glasspane"
    run = read_run(transaction_logs(wandb_dir, "cccccccccccc")[0])
    assert run.project == "from-env"
    # closed before the run ended: finished as interrupted, not as a success
    assert (run.exit_code, run.summary["glasspane.state"]) == (1, "interrupted")


def test_an_unknown_option_is_refused(wandb_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"tracker `wandb` does not know option\(s\) projet"):
        WandbTracker(TrackerContext(name="wandb", options={"projet": "x"}))


def test_it_is_made_through_its_entry_point(wandb_dir: Path) -> None:
    tracker = make("wandb", TrackerContext(name="wandb"))
    assert isinstance(tracker, WandbTracker)
    assert tracker.name == "wandb"


def test_without_wandb_making_it_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # what an environment without it sees
    with pytest.raises(ConfigError, match=r'pip install "glasspane\[wandb\]"'):
        make("wandb", TrackerContext(name="wandb"))


def test_importing_the_module_does_not_import_wandb() -> None:
    code = "import sys, glasspane.integrations.wandb; print('wandb' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- failures --------------------------------------------------------------------------------


def test_a_refused_run_raises_tracker_error_and_is_not_taken(
    wandb_dir: Path, store: ArtifactStore
) -> None:
    tracker = tracker_for(store, mode="sometimes")
    started = RunStarted(run_id=RUN, seq=1, pipeline="retrain", version="v1")
    with pytest.raises(
        TrackerError, match=r"tracker `wandb` could not take run_started #1 of run "
    ):
        tracker.on_event(started)
    assert tracker.link(RUN) is None
    assert transaction_logs(wandb_dir) == []


def test_an_artifact_without_stored_bytes_raises_tracker_error(
    tracker: WandbTracker, wandb_dir: Path
) -> None:
    tracker.on_event(RunStarted(run_id=RUN, seq=1, pipeline="retrain", version="v1"))
    in_memory = ArtifactInfo("ab" * 32, None, None, "dict", "pickle", 10)
    logged = ArtifactLogged(
        run_id=RUN, seq=2, node="train", name="model", filename="model.pkl", artifact=in_memory
    )
    with pytest.raises(TrackerError, match=r"tracker `wandb`: artifact abababababab has no stored"):
        tracker.on_event(logged)
    tracker.on_event(RunFinished(run_id=RUN, seq=3, state="succeeded"))
    assert read_run(transaction_logs(wandb_dir)[0]).artifacts == []
