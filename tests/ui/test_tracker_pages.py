"""A team's tracker history in the pane: runs created straight in a real ``mlflow server``
(with ``MlflowClient``, not by glasspane) on the pipeline page and in the JSON API, paged with
MLflow's own page token; an MLflow run as a side of the compare view; and an unreachable
tracker said in a message, never a 500.

Each test gets an experiment of its own (the tracker's ``experiment`` option), so the shared
server's other experiments never show.
"""

from __future__ import annotations

import re
import socket
import uuid
from collections.abc import Iterator
from html import unescape
from typing import Any

import pytest
from page_checks import by_id, by_id_html, get_page
from starlette.testclient import TestClient

from glasspane import Workspace
from glasspane.config import Settings
from glasspane.ui.app import create_app

HOSTILE = "<img src=x onerror=alert(1)>"


class Team:
    """An MLflow experiment of the team's own runs, made with MlflowClient."""

    def __init__(self, uri: str, experiment: str) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=uri)
        self.experiment = experiment
        self.experiment_id = self.client.create_experiment(experiment)
        self.clock = 1_700_000_000_000

    def run(self, name: str, params: dict[str, str], metrics: dict[str, float], **tags: str) -> str:
        """A finished run, started one minute after the previous one; its MLflow id."""
        self.clock += 60_000
        run = self.client.create_run(
            self.experiment_id, start_time=self.clock, run_name=name, tags=tags
        )
        run_id = run.info.run_id
        for key, value in params.items():
            self.client.log_param(run_id, key, value)
        for key, value in metrics.items():
            self.client.log_metric(run_id, key, value, step=0)
        self.client.set_terminated(run_id, "FINISHED", end_time=self.clock + 1000)
        return str(run_id)


@pytest.fixture
def team(mlflow_uri: str) -> Team:
    return Team(mlflow_uri, f"team-{uuid.uuid4().hex[:8]}/mapped")


def tracked_client(ui_workspace: Workspace, **options: Any) -> Iterator[TestClient]:
    settings = Settings(
        home=ui_workspace.settings.home, trackers=["mlflow"], tracker_options={"mlflow": options}
    )
    ws = Workspace(settings)
    try:
        with TestClient(create_app(ws), base_url="http://127.0.0.1") as client:
            yield client
    finally:
        ws.close()


@pytest.fixture
def tracked(ui_workspace: Workspace, team: Team) -> Iterator[TestClient]:
    """The UI over the shared runs, with the mlflow tracker reading ``team``'s experiment."""
    prefix = team.experiment.rsplit("/", 1)[0]
    yield from tracked_client(ui_workspace, experiment=prefix + "/{pipeline}")


def rows(html: str, section: str = "tracker-mlflow-runs") -> list[str]:
    """The MLflow run ids a tracker table lists, in order."""
    return re.findall(r'<tr data-external-id="([0-9a-f]+)"', by_id_html(html, section))


def test_the_pipeline_page_lists_runs_glasspane_did_not_create(
    tracked: TestClient, team: Team, ui_runs: Any
) -> None:
    old = team.run("baseline", {"n": "100", "label": HOSTILE}, {"acc": 0.81, "loss": 0.42})
    newer = team.run("tuned", {"n": "200"}, {"acc": 0.86})
    ours = team.run("mapped-abc", {"n": "3"}, {}, **{"glasspane.run_id": ui_runs.succeeded})
    html = get_page(tracked, "/pipelines/mapped")  # also: every value escaped, CSP kept
    assert by_id(html, "tracker-mlflow-experiment") == team.experiment
    assert rows(html) == [ours, newer, old]  # newest first
    table = by_id_html(html, "tracker-mlflow-runs")
    row = re.search(rf'<tr data-external-id="{old}".*?</tr>', table, re.S)
    assert row is not None
    cells = unescape(row.group(0))
    assert "baseline ↗" in cells and "FINISHED" in cells and "not by glasspane" in cells
    assert '<td class="mono" data-param="n">100</td>' in cells
    assert f'data-param="label">{HOSTILE}</td>' in cells  # escaped on the page itself
    assert 'data-metric="acc">0.81</td>' in cells and 'data-metric="loss">0.42</td>' in cells
    assert f'href="{team.client.tracking_uri}/#/experiments/{team.experiment_id}/runs/{old}"' in (
        cells
    )
    mine = re.search(rf'<tr data-external-id="{ours}"[^>]*>.*?</tr>', table, re.S)
    assert mine is not None and f'data-run-id="{ui_runs.succeeded}"' in mine.group(0)
    assert f'href="/runs/{ui_runs.succeeded}"' in mine.group(0)  # its glasspane run
    assert f"/compare?runs={ui_runs.succeeded},mlflow:{ours}" in mine.group(0)
    assert 'id="tracker-mlflow-next"' not in html  # one page holds them all
    assert "Recent runs" in html and 'id="launch-form"' in html  # the page as before


def test_pages_of_tracker_runs_follow_mlflows_page_token(tracked: TestClient, team: Team) -> None:
    made = [team.run(f"r{i}", {"i": str(i)}, {"score": i / 10}) for i in range(5)]
    newest_first = made[::-1]
    seen: list[str] = []
    url: str | None = "/pipelines/mapped?page_size=2"
    pages = 0
    while url is not None:
        html = get_page(tracked, url)
        page = rows(html)
        assert len(page) == (2 if pages < 2 else 1)
        seen += page
        pages += 1
        found = re.search(r'id="tracker-mlflow-next" href="([^"]+)"', html)
        url = unescape(found.group(1)) if found else None
        if url is not None:
            assert "page_token=" in url and "tracker=mlflow" in url and "page_size=2" in url
        if pages > 1:
            assert 'id="tracker-mlflow-first"' in html
    assert pages == 3 and seen == newest_first  # page 2 holds the 3rd and 4th newest


def test_a_bad_page_size_says_what_to_give(tracked: TestClient) -> None:
    html = get_page(tracked, "/pipelines/mapped?page_size=5000", status=400)
    assert "page_size must be a whole number from 1 to 200" in html


def test_the_api_lists_the_same_runs_page_by_page(tracked: TestClient, team: Team) -> None:
    made = [team.run(f"r{i}", {"i": str(i)}, {"score": float(i)}) for i in range(3)]
    first = tracked.get(
        "/api/trackers/mlflow/runs", params={"pipeline": "mapped", "max_results": 2}
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert [r["external_id"] for r in body["runs"]] == [made[2], made[1]]
    assert body["runs"][0]["params"] == {"i": "2"} and body["runs"][0]["metrics"] == {"score": 2.0}
    assert body["runs"][0]["experiment"] == team.experiment
    assert body["runs"][0]["glasspane_run_id"] is None and body["next_page_token"]
    second = tracked.get(
        "/api/trackers/mlflow/runs",
        params={
            "experiment": team.experiment,
            "max_results": 2,
            "page_token": body["next_page_token"],
        },
    ).json()
    assert [r["external_id"] for r in second["runs"]] == [made[0]]
    assert second["next_page_token"] is None
    one = tracked.get(f"/api/trackers/mlflow/runs/{made[0]}").json()
    assert one["name"] == "r0" and one["status"] == "FINISHED"
    html = get_page(tracked, "/pipelines/mapped")  # the page shows what the API answers
    assert rows(html) == [made[2], made[1], made[0]]


@pytest.mark.parametrize(
    ("url", "status", "message"),
    [
        ("/api/trackers/wandb/runs?pipeline=mapped", 404, "no tracker `wandb` is configured here"),
        ("/api/trackers/mlflow/runs", 422, "give `experiment` or `pipeline`"),
        ("/api/trackers/mlflow/runs?pipeline=mapped&max_results=0", 422, "max_results"),
        ("/api/trackers/mlflow/runs/0123456789abcdef", 404, "has no run 0123456789abcdef"),
        ("/api/compare/tracker?runs=abcd,wandb:x1", 404, "no tracker `wandb` is configured"),
    ],
)
def test_api_errors_are_json_with_a_message(
    tracked: TestClient, url: str, status: int, message: str
) -> None:
    answer = tracked.get(url)
    assert answer.status_code == status, answer.text
    assert message in answer.json()["error"]


def test_compare_takes_an_mlflow_run_as_either_side(
    tracked: TestClient, team: Team, ui_runs: Any
) -> None:
    # the glasspane run: mapped(n=3), label=HOSTILE, its task logged loss 0.5 then 0.25
    theirs = team.run("sklearn-old", {"n": "5", "label": HOSTILE, "solver": "lbfgs"}, {"loss": 0.4})
    html = get_page(tracked, f"/compare?runs={ui_runs.succeeded},mlflow:{theirs}")
    assert by_id(html, "compare-left") == ui_runs.succeeded
    assert by_id(html, "compare-right") == "sklearn-old ↗"
    params = by_id_html(html, "compare-params")
    assert '<tr class="diff" data-param="n" data-equal="false"><th>n</th>' in params
    assert 'data-param="label" data-equal="true"' in params  # the same text in MLflow
    assert 'class="diff" data-param="solver" data-equal="false"' in params  # only in MLflow
    metrics = by_id_html(html, "compare-metrics")
    assert re.search(
        r'data-metric="loss"><th>loss.*?0\.25.*?0\.4 <span class="delta up">\+0\.15<', metrics, re.S
    )
    assert "1 of" not in by_id(html, "compare-summary") and "parameters differ" in html
    swapped = get_page(tracked, f"/compare?runs=mlflow:{theirs},{ui_runs.succeeded}")
    assert by_id(swapped, "compare-left") == "sklearn-old ↗"
    assert by_id(swapped, "compare-right") == ui_runs.succeeded
    api = tracked.get(
        "/api/compare/tracker", params={"runs": f"{ui_runs.succeeded},mlflow:{theirs}"}
    )
    assert api.status_code == 200, api.text
    diff = {p["key"]: p for p in api.json()["params"]}
    assert diff["n"] == {"key": "n", "left": 3, "right": "5", "equal": False}
    assert api.json()["right"]["tracked"]["external_id"] == theirs


def test_compare_with_a_tracker_run_that_does_not_exist(tracked: TestClient, ui_runs: Any) -> None:
    html = get_page(tracked, f"/compare?runs={ui_runs.succeeded},mlflow:00ff00ff", status=404)
    assert "has no run 00ff00ff" in html
    html = get_page(tracked, f"/compare?runs={ui_runs.succeeded},wandb:abc", status=404)
    assert "no tracker `wandb` is configured here" in html


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unreachable(ui_workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    pytest.importorskip("mlflow")
    for variable, value in (
        ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0"),  # restored when the test ends
        ("MLFLOW_HTTP_REQUEST_TIMEOUT", "3"),
        ("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0"),
    ):
        monkeypatch.setenv(variable, value)
    yield from tracked_client(ui_workspace, tracking_uri=f"http://127.0.0.1:{_closed_port()}")


def test_an_unreachable_tracker_is_a_message_not_a_500(
    unreachable: TestClient, ui_runs: Any
) -> None:
    html = get_page(unreachable, "/pipelines/mapped")
    message = by_id(html, "tracker-mlflow-error")
    assert message.startswith("The runs in MLflow cannot be shown: tracker mlflow could not list")
    assert "check that the server is up and reachable" in message
    assert "sends it again later" not in message  # a read delivers nothing
    assert "Recent runs" in html and ui_runs.succeeded in html  # the rest of the page is there
    answer = unreachable.get("/api/trackers/mlflow/runs", params={"pipeline": "mapped"})
    assert answer.status_code == 502 and "could not" in answer.json()["error"]
    html = get_page(unreachable, f"/compare?runs={ui_runs.succeeded},mlflow:00ff00ff", status=502)
    assert "Tracker unavailable" in html


def test_the_tracker_api_conforms_to_its_document(
    ui_workspace: Workspace, team: Team, ui_runs: Any
) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from test_openapi import checks

    theirs = team.run("r", {"n": "1"}, {"acc": 1.0})
    settings = Settings(
        home=ui_workspace.settings.home,
        trackers=["mlflow"],
        tracker_options={
            "mlflow": {"experiment": team.experiment.rsplit("/", 1)[0] + "/{pipeline}"}
        },
    )
    ws = Workspace(settings)
    try:
        app = create_app(ws, allowed_hosts=("testserver",))
        schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
        cases: list[tuple[str, dict[str, str], dict[str, Any]]] = [
            ("/api/trackers/{name}/runs", {"name": "mlflow"}, {"pipeline": "mapped"}),
            ("/api/trackers/{name}/runs", {"name": "mlflow"}, {"experiment": team.experiment}),
            (
                "/api/trackers/{name}/runs/{external_id}",
                {"name": "mlflow", "external_id": theirs},
                {},
            ),
            ("/api/compare/tracker", {}, {"runs": f"{ui_runs.succeeded},mlflow:{theirs}"}),
        ]
        for path, path_parameters, query in cases:
            case = schema[path]["GET"].Case(path_parameters=path_parameters, query=query)
            response = case.call()
            assert response.status_code == 200, (path, response.text)
            case.validate_response(response, checks=checks())
    finally:
        ws.close()
