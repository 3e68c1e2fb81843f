"""`glasspane deploy` and `glasspane deployments list|show|stop` from a shell, with real
model server processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest
from cli_harness import Cli, assert_usage_error
from sklearn.linear_model import LogisticRegression

import glasspane
from glasspane import pipeline, task
from glasspane.config import Settings


@task
def fit(c: float) -> float:
    model = LogisticRegression(C=c).fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    glasspane.register_model("churn", model, input_example=[[0.5], [2.5]])
    return c


@pipeline
def retrain(c: float = 1.0):
    return fit(c)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _predict(url: str) -> tuple[list[int], str]:
    body = json.dumps({"instances": [[0.1], [2.9]]}).encode()
    request = urllib.request.Request(
        f"{url}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["predictions"], response.headers["X-Glasspane-Model"]


@pytest.fixture
def registered(cli: Cli, glasspane_home: Path) -> Cli:
    """Two versions of ``churn`` registered in the command's home (run in this process, which
    shares it), version 1 the champion."""
    with glasspane.Workspace(Settings(home=glasspane_home)) as ws:
        for c in (0.5, 2.0):
            ws.run(retrain, {"c": c}, executor="inline")
        ws.store.set_model_alias("churn", "champion", 1)
    return cli


def test_deploy_list_redeploy_show_and_stop(registered: Cli) -> None:
    cli = registered
    # what cannot be deployed is said before anything starts
    assert_usage_error(
        cli("deploy", "churn@gold", "--name", "api"), "model `churn` has no alias `gold`"
    )
    assert_usage_error(
        cli("deploy", "churn/1", "--name", "api", "--target", "k8s"),
        "deploy target `k8s` is not installed (installed: local, mlflow)",
    )
    assert_usage_error(cli("deploy", "churn/1", "--name", "bad name"), "deployment 'bad name'")
    assert_usage_error(
        cli("deployments", "stop", "nope"), "no deployment `nope` (deployments: none)"
    )
    assert cli("deployments", "list").stdout.startswith("no deployment yet")

    port = _free_port()
    try:
        deployed = cli("deploy", "churn@champion", "--name", "churn-api", "--port", str(port))
        assert deployed.code == 0, deployed.stderr
        url = f"http://127.0.0.1:{port}"
        assert deployed.stdout == f"deployed churn/1 as churn-api on local: {url}\n"
        assert _predict(url) == ([0, 1], "churn/1")
        (row,) = cli("deployments", "list", "--json").json()
        assert (row["name"], row["model_version"], row["health"], row["url"]) == (
            "churn-api", 1, "up", url,
        )  # fmt: skip

        assert cli("models", "promote", "churn", "2", "--alias", "champion").code == 0
        again = cli("deploy", "churn@champion", "--name", "churn-api")
        assert again.code == 0, again.stderr
        assert again.stdout == (
            f"deployed churn/2 as churn-api on local: {url} (replacing version 1)\n"
        )
        assert _predict(url)[1] == "churn/2"
        shown = cli("deployments", "show", "churn-api").stdout.splitlines()
        assert shown[0] == f"churn-api: churn/2 (churn@champion) on local at {url}, serving"
        second = cli("models", "show", "churn", "--json").json()[0]["run_id"]
        assert shown[1] == (
            f"churn/2 was registered by run {second}, task fit: what it was trained on is "
            f"`glasspane lineage {second} fit`"
        )
        assert [line.split()[2:4] for line in shown[2:]] == [
            ["deployed", "churn/1"], ["redeployed", "churn/2"],
        ]  # fmt: skip

        pid = cli("deployments", "list", "--json").json()[0]["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        listed = cli("deployments", "list").stdout.splitlines()
        assert listed[1].split()[:4] == ["churn-api", "local", "churn/2", "down"], listed
        assert "not running" in listed[1]
    finally:
        stopped = cli("deployments", "stop", "churn-api")
    assert stopped.code == 0, stopped.stderr
    assert stopped.stdout == f"stopped churn-api (churn/2 at {url})\n"
    assert cli("deployments", "list").stdout.splitlines()[1].split()[3] == "stopped"
