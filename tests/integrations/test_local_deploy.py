"""The ``local`` deploy target (glasspane's model server processes) against the deploy
contract, plus what only it does: one port kept across redeploys with no failed request."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
from deploy_conformance import DeployerContract, X, iris_pipeline

import glasspane
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
