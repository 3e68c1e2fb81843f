"""The contract every deploy target keeps, run against each built-in target for real: a test
module subclasses :class:`DeployerContract` and sets ``target``.

- a deployed version answers MLflow's scoring protocol at its URL in every accepted input
  format, with the model's own predictions, and refuses bad payloads with a 4xx and a message;
- the deployment records the version it serves; ``deployments list`` checks health live and
  shows a killed server down; ``stop`` stops it (twice is fine);
- a redeploy is blue/green: the new version serves after it, the old process is gone; a new
  version that fails its checks is rejected with the reason while the old one keeps serving.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

import glasspane
from glasspane import pipeline, register_model, task
from glasspane.config import Settings
from glasspane.deploying import DeployError

IRIS = load_iris(as_frame=True)
X: pd.DataFrame = IRIS.data
Y = IRIS.target


@task(cache=False)
def train_iris(c: float, broken: bool = False) -> float:
    model = LogisticRegression(C=c, max_iter=500).fit(X, Y)
    if broken:  # it loads and answers /health, but every prediction fails
        model.coef_ = model.coef_[:, :2]
    register_model("iris", model, metadata={"C": c})
    return c


@pipeline
def iris_pipeline(c: float = 1.0, broken: bool = False):
    return train_iris(c, broken)


def payloads() -> dict[str, tuple[str, Any]]:
    rows = X.iloc[:5]
    return {
        "dataframe_split": ("application/json", {"dataframe_split": rows.to_dict("split")}),
        "dataframe_records": ("application/json", {"dataframe_records": rows.to_dict("records")}),
        "instances": ("application/json", {"instances": rows.to_dict("records")}),
        "inputs": ("application/json", {"inputs": rows.to_dict("list")}),
        "csv": ("text/csv", rows.to_csv(index=False)),
    }


def post(url: str, body: Any, content_type: str) -> httpx.Response:
    content = body if isinstance(body, str | bytes) else json.dumps(body, default=list)
    return httpx.post(
        f"{url}/invocations", content=content, headers={"Content-Type": content_type}, timeout=30
    )


class DeployerContract:
    """Subclass with ``target`` set; the tests deploy for real."""

    target: ClassVar[str]
    #: whether each response names the serving version in ``X-Glasspane-Model``
    version_header: ClassVar[bool] = True
    #: whether a redeploy keeps the deployment's URL (and so serves without a gap)
    same_url: ClassVar[bool] = True

    @pytest.fixture(scope="class")
    @classmethod
    def ws(cls, tmp_path_factory: pytest.TempPathFactory) -> Iterator[glasspane.Workspace]:
        home = tmp_path_factory.mktemp("deploy-home")
        with glasspane.Workspace(Settings(home=home)) as workspace:
            workspace.run(iris_pipeline, {"c": 0.05}, executor="threads")  # version 1
            workspace.run(iris_pipeline, {"c": 5.0}, executor="threads")  # version 2
            workspace.run(iris_pipeline, {"broken": True}, executor="threads")  # version 3
            workspace.store.set_model_alias("iris", "champion", 1)
            yield workspace
            for row in workspace.reader().deployments():
                glasspane.stop_deployment(row["name"], workspace=workspace)

    def deploy(self, ws: glasspane.Workspace, ref: str, name: str) -> Any:
        return glasspane.deploy(ref, name=name, target=self.target, workspace=ws)

    def test_a_deployment_answers_every_format_refuses_bad_payloads_and_shows_down_once_killed(
        self, ws: glasspane.Workspace
    ) -> None:
        done = self.deploy(ws, "iris@champion", "formats")
        model = glasspane.load_model("iris/1", workspace=ws)
        expected = model.predict(X.iloc[:5]).tolist()
        assert (done.model_name, done.model_version, done.replaced) == ("iris", 1, None)
        for name, (content_type, body) in payloads().items():
            response = post(done.url, body, content_type)
            assert response.status_code == 200, (name, response.text)
            assert response.json() == {"predictions": expected}, name
            if self.version_header:
                assert response.headers["x-glasspane-model"] == "iris/1"
        for content_type, body, status in [
            ("text/plain", "hello", 415),
            ("application/json", "{'instances': [1]}", 400),
            ("application/json", {"rows": [[1, 2, 3, 4]]}, 400),
        ]:
            response = post(done.url, body, content_type)
            assert response.status_code == status, response.text
            assert response.text.strip(), "a refusal says why"
            assert "Traceback" not in response.text
        row = ws.reader().deployment("formats")
        assert (row["state"], row["model_name"], row["model_version"], row["url"]) == (
            "serving", "iris", 1, done.url,
        )  # fmt: skip
        assert httpx.get(f"{done.url}/ping", timeout=10).status_code == 200

        rows = {r["name"]: r for r in glasspane.deployments(workspace=ws)}
        assert rows["formats"]["health"] == "up"
        os.kill(rows["formats"]["pid"], signal.SIGKILL)
        _wait_dead(rows["formats"]["pid"])
        rows = {r["name"]: r for r in glasspane.deployments(workspace=ws)}
        assert rows["formats"]["health"] == "down"
        assert "not running" in rows["formats"]["health_detail"]
        glasspane.stop_deployment("formats", workspace=ws)
        glasspane.stop_deployment("formats", workspace=ws)  # stopping twice is fine
        rows = {r["name"]: r for r in glasspane.deployments(workspace=ws)}
        assert rows["formats"]["health"] == "stopped" and rows["formats"]["state"] == "stopped"
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{done.url}/ping", timeout=5)

    def test_a_redeploy_is_blue_green_and_a_failing_version_never_takes_over(
        self, ws: glasspane.Workspace
    ) -> None:
        first = self.deploy(ws, "iris/1", "swap")
        old_pid = ws.reader().deployment("swap")["pid"]
        second = self.deploy(ws, "iris/2", "swap")
        assert (second.model_version, second.replaced) == (2, 1)
        if self.same_url:
            assert second.url == first.url
        expected = glasspane.load_model("iris/2", workspace=ws).predict(X.iloc[:5]).tolist()
        response = post(second.url, *reversed(payloads()["dataframe_split"]))
        assert response.json() == {"predictions": expected}
        if self.version_header:
            assert response.headers["x-glasspane-model"] == "iris/2"
        assert not _alive(old_pid), "the old version's process still runs after the swap"

        with pytest.raises(DeployError) as caught:
            self.deploy(ws, "iris/3", "swap")
        message = str(caught.value)
        assert "deploying iris/3 (version 3) as `swap`" in message, message
        assert "sample prediction failed" in message, message
        assert f"version 2 keeps serving at {second.url}" in message, message
        response = post(second.url, *reversed(payloads()["dataframe_split"]))
        assert response.status_code == 200 and response.json() == {"predictions": expected}
        row = ws.reader().deployment("swap")
        assert (row["model_version"], row["state"]) == (2, "serving")
        actions = [
            (e["action"], e["model_version"]) for e in ws.reader().deployment_history("swap")
        ]
        assert actions == [("deployed", 1), ("redeployed", 2), ("rejected", 3)]


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _wait_dead(pid: int) -> None:
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
