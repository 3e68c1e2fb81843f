"""The ``local`` deploy target (glasspane's model server processes) against the deploy
contract, plus what only it does: one port kept across redeploys with no failed request."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from deploy_conformance import DeployerContract, X, Y, iris_pipeline
from sklearn.linear_model import LogisticRegression

import glasspane
from glasspane import pipeline, register_model, task
from glasspane.config import Settings


class TestLocalDeployer(DeployerContract):
    target = "local"


def test_a_redeploy_keeps_the_port_and_fails_no_request(tmp_path: Path) -> None:
    with glasspane.Workspace(Settings(home=tmp_path / "home")) as ws:
        ws.run(iris_pipeline, {"c": 0.05}, executor="threads")
        ws.run(iris_pipeline, {"c": 5.0}, executor="threads")
        first = glasspane.deploy("iris/1", name="steady", workspace=ws)
        body = json.dumps({"dataframe_split": X.iloc[:1].to_dict("split")})
        answered: list[str] = []
        failed: list[str] = []
        done = threading.Event()

        def client() -> None:
            with httpx.Client(base_url=first.url, timeout=10) as http:
                while not done.is_set():
                    try:
                        response = http.post(
                            "/invocations", content=body,
                            headers={"Content-Type": "application/json"},
                        )  # fmt: skip
                        if response.status_code == 200:
                            answered.append(response.headers["x-glasspane-model"])
                        else:
                            failed.append(f"{response.status_code}: {response.text}")
                    except httpx.TransportError as exc:
                        failed.append(repr(exc))

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            time.sleep(0.5)
            second = glasspane.deploy("iris/2", name="steady", workspace=ws)
            time.sleep(0.5)
        finally:
            done.set()
            for thread in threads:
                thread.join()
            glasspane.stop_deployment("steady", workspace=ws)
        assert second.url == first.url
        assert not failed, failed[:5]
        assert answered[0] == "iris/1" and answered[-1] == "iris/2"
        assert answered.index("iris/2") > 0


@task(cache=False)
def register_iris(c: float) -> float:
    model = LogisticRegression(C=c, max_iter=500).fit(X, Y)
    register_model("iris", model, alias="champion")
    return c


@task(cache=False)
def deploy_champion(registered: float, port: int) -> dict[str, object]:
    done = glasspane.deploy("iris@champion", name="from-a-task", port=port)
    return {"version": done.model_version, "url": done.url}


@pipeline
def register_and_deploy(c: float = 1.0, port: int = 0):
    return deploy_champion(register_iris(c), port)


@pytest.mark.dask
def test_a_task_on_a_dask_worker_deploys_what_the_task_before_registered(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with glasspane.Workspace(Settings(home=tmp_path / "home")) as ws:
        try:
            result = ws.run(register_and_deploy, {"port": port}, executor="dask")
            assert result.output == {"version": 1, "url": f"http://127.0.0.1:{port}"}
            (row,) = glasspane.deployments(workspace=ws)
            assert (row["model_version"], row["run_id"], row["health"]) == (
                1, result.run_id, "up",
            )  # fmt: skip
            body = json.dumps({"dataframe_split": X.iloc[:2].to_dict("split")})
            response = httpx.post(
                f"{row['url']}/invocations", content=body,
                headers={"Content-Type": "application/json"}, timeout=10,
            )  # fmt: skip
            assert response.headers["x-glasspane-model"] == "iris/1"
        finally:
            for row in ws.reader().deployments():
                glasspane.stop_deployment(row["name"], workspace=ws)


class OnlyHere:
    """A model whose class the model server's process cannot import (it lives in this test
    module): its server exits before it ever answers /health."""

    def predict(self, frame: object) -> list[int]:
        return [0]


@task(cache=False)
def register_unloadable() -> int:
    register_model("iris", OnlyHere(), input_example=X.iloc[:1])
    return 1


@pipeline
def unloadable():
    return register_unloadable()


def test_a_version_that_never_answers_its_health_check_leaves_the_old_one_serving(
    tmp_path: Path,
) -> None:
    with glasspane.Workspace(Settings(home=tmp_path / "home")) as ws:
        ws.run(iris_pipeline, {"c": 0.05}, executor="threads")  # version 1
        ws.run(unloadable, {}, executor="threads")  # version 2
        first = glasspane.deploy("iris/1", name="guarded", workspace=ws)
        try:
            with pytest.raises(glasspane.GlasspaneError) as caught:
                glasspane.deploy("iris/2", name="guarded", workspace=ws)
            message = str(caught.value)
            assert message.startswith(
                "deploying iris/2 (version 2) as `guarded` on `local` failed: its model server "
                "exited with code 2 before it answered: "
            ), message
            assert (
                "does not unpickle (ModuleNotFoundError: No module named 'test_local_deploy')"
                in message
            ), message
            assert message.endswith(f"; version 1 keeps serving at {first.url}"), message
            body = json.dumps({"dataframe_split": X.iloc[:2].to_dict("split")})
            response = httpx.post(
                f"{first.url}/invocations", content=body,
                headers={"Content-Type": "application/json"}, timeout=10,
            )  # fmt: skip
            assert response.status_code == 200
            assert response.headers["x-glasspane-model"] == "iris/1"
            (row,) = glasspane.deployments(workspace=ws)
            assert (row["model_version"], row["health"]) == (1, "up")
            history = ws.reader().deployment_history("guarded")
            assert [(e["action"], e["model_version"]) for e in history] == [
                ("deployed", 1), ("rejected", 2),
            ]  # fmt: skip
        finally:
            glasspane.stop_deployment("guarded", workspace=ws)
