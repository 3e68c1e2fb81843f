"""The ``mlflow`` deploy target against real ``mlflow models serve`` processes on 127.0.0.1.

Starting one takes seconds, so the file starts three: a pyfunc model (then killed with
SIGKILL), one that exits at start and one that does not answer in time. What every target
does (scikit-learn versions, every input format, bad payloads, blue/green redeploys) is the
deploy contract's: tests/integrations/test_mlflow_deploy_contract.py. Every fixture stops
what it started, even when a test fails.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from glasspane.deploying import DeployError, DeployRequest, Health, Served, check, make
from glasspane.errors import ConfigError
from glasspane.integrations import mlflow_deploy, ports
from glasspane.integrations.mlflow_deploy import MlflowDeployer

pytestmark = [
    # mlflow's own chatter (its PythonModel type hints), not glasspane's
    pytest.mark.filterwarnings("ignore:.*Any type hint is inferred as AnyType:UserWarning"),
    pytest.mark.timeout(600),
]


@dataclass
class Deployment:
    deployer: MlflowDeployer
    served: Served
    model: Any


@pytest.fixture(scope="module")
def X() -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame
    return frame.drop(columns="target")


@pytest.fixture(scope="module")
def model(X: pd.DataFrame) -> LogisticRegression:
    y = load_iris(as_frame=True).target
    return LogisticRegression(max_iter=500).fit(X, y)


@pytest.fixture(scope="module")
def rows(X: pd.DataFrame) -> pd.DataFrame:
    return X.iloc[[0, 60, 120, 1, 61, 121]]  # all three classes


def request(workdir: Path, version: int, model: Any, port: int | None = None) -> DeployRequest:
    return DeployRequest(
        deployment="iris-api",
        model_name="iris",
        model_version=version,
        model_file=workdir / "missing.pkl",
        workdir=workdir / f"v{version}",
        host="127.0.0.1",
        port=port,
        model=model,
    )


def group_alive(served: Served) -> list[int]:
    return mlflow_deploy._group(served.details["pgid"])


def wait_gone(served: Served, seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while group_alive(served) and time.monotonic() < deadline:
        time.sleep(0.1)
    return group_alive(served)


def test_the_entry_point_names_the_target() -> None:
    names = {ep.name for ep in importlib.metadata.entry_points(group="glasspane.deployers")}
    assert "mlflow" in names
    assert MlflowDeployer.target == "mlflow"


# --- a pyfunc model (not scikit-learn) --------------------------------------------------

MODEL_MODULE = """
class PetalRule:
    '''Not scikit-learn: 2 for long petals, else 0.'''

    def predict(self, frame):
        return [2 if length > 4.5 else 0 for length in frame["petal length (cm)"]]
"""


def importable_model(folder: Path, module: str) -> Any:
    """A ``PetalRule`` from a module written into ``folder`` (put on this process's path)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(MODEL_MODULE))
    sys.path.insert(0, str(folder))
    try:
        return __import__(module).PetalRule()
    finally:
        sys.path.remove(str(folder))


@pytest.fixture(scope="module")
def v2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Version 2 (pyfunc), through the entry point. Its module is importable by the server
    through PYTHONPATH. (scikit-learn versions, redeploys and every input format: the deploy
    contract, tests/integrations/test_mlflow_deploy_contract.py.)"""
    root = tmp_path_factory.mktemp("deploy-v2")
    rule = importable_model(root / "code", "petal_rule_v2")
    deployer = make("mlflow")
    assert isinstance(deployer, MlflowDeployer)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(root / "code"))
        started = time.monotonic()
        served = deployer.start(request(root, 2, rule))
        print(f"mlflow target: version 2 started in {time.monotonic() - started:.1f} s")
    try:
        yield Deployment(deployer, served, rule)
    finally:
        deployer.stop(served)


def test_a_pyfunc_model_serves_and_predicts_like_itself(v2: Deployment, rows: pd.DataFrame) -> None:
    new = v2.served
    assert new.details["flavour"] == "pyfunc"
    check(new.check_url, {"columns": list(rows.columns), "data": rows.values.tolist()})
    assert v2.deployer.take_over(new, None) is new
    with httpx.Client(base_url=new.url, timeout=30) as client:
        body = {"dataframe_records": rows.to_dict(orient="records")}
        assert predict(client, body) == v2.model.predict(rows) == [0, 0, 2, 0, 0, 2]
        assert predict(client, rows.to_csv(index=False), "text/csv") == v2.model.predict(rows)


def predict(client: httpx.Client, body: Any, content_type: str = "application/json") -> Any:
    content = body if isinstance(body, str) else json.dumps(body)
    response = client.post("/invocations", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def test_a_killed_server_is_down_and_stop_is_idempotent(v2: Deployment) -> None:
    served = v2.served
    os.kill(served.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while v2.deployer.health(served).up and time.monotonic() < deadline:
        time.sleep(0.05)
    assert v2.deployer.health(served) == Health(False, f"process {served.pid} is not running")
    v2.deployer.stop(served)  # its uvicorn child, which outlives the killed leader
    v2.deployer.stop(served)
    assert wait_gone(served) == []
    with pytest.raises(DeployError, match="is not running, so it cannot take over"):
        v2.deployer.take_over(served, None)


# --- starts that fail leave nothing running -----------------------------------------------


def test_a_server_that_exits_raises_with_its_log(tmp_path: Path) -> None:
    # importable here but not in the server (no PYTHONPATH): unpickling fails there
    rule = importable_model(tmp_path / "code", "petal_rule_hidden")
    deployer = MlflowDeployer()
    sys.path.insert(0, str(tmp_path / "code"))
    try:
        with pytest.raises(DeployError) as caught:
            deployer.start(request(tmp_path, 3, rule))
    finally:
        sys.path.remove(str(tmp_path / "code"))
    message = str(caught.value)
    assert message.startswith("`mlflow models serve` for iris/3 exited with status 1; its log")
    assert " says:\nModuleNotFoundError: No module named 'petal_rule_hidden'\n" in message
    assert deployer._children == {}


def test_a_server_that_does_not_answer_in_time_is_stopped(
    tmp_path: Path, model: LogisticRegression
) -> None:
    deployer = make("mlflow", {"start_timeout": 0.5})
    assert isinstance(deployer, MlflowDeployer)
    joblib.dump(model, tmp_path / "missing.pkl")  # no model given: the file is served
    with pytest.raises(DeployError) as caught:
        deployer.start(request(tmp_path, 4, None))
    message = str(caught.value)
    assert "`mlflow models serve` for iris/4 did not answer GET http://127.0.0.1:" in message
    assert "/ping within 0.5 s; its log" in message
    assert deployer._children == {}


# --- without a server ---------------------------------------------------------------------


def test_a_model_file_that_does_not_load_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DeployError) as caught:
        MlflowDeployer().start(request(tmp_path, 5, None))
    assert str(caught.value).startswith(
        f"iris/5's model file {tmp_path / 'missing.pkl'} could not be loaded (FileNotFoundError: "
    )


def test_an_unknown_option_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        make("mlflow", {"start_timout": 5})
    assert "has no option 'start_timout'; its options are start_timeout, stop_timeout" in str(
        caught.value
    )


def test_a_timeout_must_be_positive() -> None:
    with pytest.raises(ConfigError) as caught:
        make("mlflow", {"stop_timeout": 0})
    assert "option stop_timeout must be a positive number of seconds, not 0" in str(caught.value)


def test_a_process_that_is_not_its_server_is_never_signalled() -> None:
    """A process group that is not an mlflow server (a reused pid, as far as the deployer
    knows) is left alone, as is one whose start time is not the one recorded."""
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        started = mlflow_deploy._start_time(other.pid)
        served = Served("http://127.0.0.1:9", "http://127.0.0.1:9", other.pid)
        deployer = MlflowDeployer()
        for details in ({"pgid": other.pid, "started": started}, {"pgid": other.pid}):
            stale = Served(served.url, served.check_url, other.pid, details)
            deployer.stop(stale)
            assert deployer.health(stale) == Health(False, f"process {other.pid} is not running")
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_the_port_asked_for_is_used_when_free() -> None:
    free = ports.free_port("127.0.0.1", None)
    assert ports.free_port("127.0.0.1", free) == free
    with ports.bound("127.0.0.1", 0) as taken:
        taken.listen()
        port = taken.getsockname()[1]
        assert ports.free_port("127.0.0.1", port) != port
