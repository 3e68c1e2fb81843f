"""The local model server: MLflow's scoring protocol in process (every accepted format, every
bad payload's status and message), micro-batching, and the real command over HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import joblib
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from starlette.testclient import TestClient

import glasspane
from glasspane.integrations.batching import MicroBatcher
from glasspane.integrations.model_server import create_app, main
from glasspane.integrations.scoring import Rows, ScoringError

FORMATS = "'dataframe_split', 'dataframe_records', 'instances', 'inputs'"
REQUIRED = f"The input must be a JSON dictionary with exactly one of the input fields {FORMATS}"


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def model(data: pd.DataFrame) -> Pipeline:
    X, y = data.drop(columns="target"), data["target"]
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)


@pytest.fixture(scope="module")
def X(data: pd.DataFrame) -> pd.DataFrame:
    # rows of both classes, so a mix-up between requests shows
    return data.drop(columns="target").iloc[[0, 19, 1, 20, 2, 21, 3, 22]]


@pytest.fixture
def client(model: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(model, name="cancer", version="3")) as test_client:
        yield test_client


def post(client: TestClient | httpx.Client, body: Any, content_type: str = "application/json"):
    content = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/invocations", content=content, headers={"Content-Type": content_type})


def payloads(X: pd.DataFrame) -> dict[str, tuple[str, Any]]:
    shuffled = X[list(reversed(X.columns))]  # named columns in another order are reordered
    return {
        "dataframe_split": ("application/json", {"dataframe_split": X.to_dict(orient="split")}),
        "dataframe_split, no index": (
            "application/json",
            {"dataframe_split": {"columns": list(X.columns), "data": X.values.tolist()}},
        ),
        "dataframe_split, columns reordered": (
            "application/json",
            {"dataframe_split": shuffled.to_dict(orient="split")},
        ),
        "dataframe_records": (
            "application/json",
            {"dataframe_records": shuffled.to_dict(orient="records")},
        ),
        "instances, rows": ("application/json", {"instances": X.values.tolist()}),
        "instances, records": ("application/json", {"instances": X.to_dict(orient="records")}),
        "inputs, columns": ("application/json", {"inputs": X.to_dict(orient="list")}),
        "inputs, rows": ("application/json", {"inputs": X.values.tolist()}),
        "csv": ("text/csv", X.to_csv(index=False)),
        "csv, charset": ("text/csv; charset=utf-8", X.to_csv(index=False)),
    }


@pytest.mark.parametrize("name", list(payloads(pd.DataFrame({"a": [1]}))))
def test_every_accepted_format_answers_the_models_predictions(
    client: TestClient, model: Pipeline, X: pd.DataFrame, name: str
) -> None:
    content_type, body = payloads(X)[name]
    response = post(client, body, content_type)
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": model.predict(X).tolist()}
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-glasspane-model"] == "cancer/3"


def test_one_record_as_a_dictionary_of_values_is_one_row(
    client: TestClient, model: Pipeline, X: pd.DataFrame
) -> None:
    response = post(client, {"inputs": X.iloc[1].to_dict()})
    assert response.json() == {"predictions": model.predict(X.iloc[[1]]).tolist()}


def test_a_model_trained_on_an_array_takes_rows_by_position() -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    with TestClient(create_app(model, name="iris", version="1")) as client:
        rows = X[[0, 60, 120]].tolist()
        expected = {"predictions": model.predict(X[[0, 60, 120]]).tolist()}
        assert post(client, {"instances": rows}).json() == expected
        split = {"columns": ["a", "b", "c", "d"], "data": rows}
        assert post(client, {"dataframe_split": split}).json() == expected
        response = post(client, {"instances": [[1.0, 2.0]]})
        assert response.status_code == 400
        assert response.json()["message"] == (
            "Invalid input. Each row must have 4 values (values, in that order), got rows of 2; "
            "or name the columns (e.g. 'dataframe_split' with 'columns', or 'dataframe_records')."
        )


def test_health_and_version(client: TestClient) -> None:
    for path in ("/ping", "/health"):
        response = client.get(path)
        assert response.status_code == 200
        assert response.json() == {"status": "healthy"}
    assert client.get("/version").json() == {
        "name": "cancer",
        "version": "3",
        "glasspane": glasspane.__version__,
        "pid": os.getpid(),
    }


def bad_payloads(X: pd.DataFrame) -> list[tuple[str, str, Any, int, str]]:
    """(case, content type, body, status, the message or its start if it ends in ...)."""
    row = X.iloc[0].tolist()
    columns = list(X.columns)
    takes = f"The model takes the columns {columns}."
    return [
        ("text/plain", "text/plain", "1,2", 415,
         "This predictor only supports the following content types: ['application/json', "
         "'text/csv']. Got 'text/plain'."),
        ("no content type", "", "{}", 415,
         "This predictor only supports the following content types: ['application/json', "
         "'text/csv']. Got ''."),
        ("another charset", "application/json; charset=latin-1", "{}", 415,
         "The scoring server only supports UTF-8 and no content type parameters but charset; "
         "got 'application/json; charset=latin-1'."),
        ("invalid JSON", "application/json", "{'instances': [1]}", 400,
         "Invalid input. Ensure that input is a valid JSON formatted string. Error: Expecting "
         "property name enclosed in double quotes: line 1 column 2 (char 1)"),
        ("not UTF-8", "application/json", b"\xff\xfe", 400,
         "Invalid input. Ensure that input is a valid JSON formatted string. Error: ..."),
        ("a list", "application/json", [row], 400, f"{REQUIRED}. Received a list."),
        ("no key", "application/json", {}, 400,
         f"{REQUIRED}. Received dictionary with input fields: [] (0 of the input fields)."),
        ("two keys", "application/json", {"instances": [row], "inputs": [row]}, 400,
         f"{REQUIRED}. Received dictionary with input fields: ['instances', 'inputs'] (2 of "
         "the input fields)."),
        ("unknown key", "application/json", {"instances": [row], "rows": [row]}, 400,
         f"{REQUIRED}. Received dictionary with input fields: ['instances', 'rows'] (unknown "
         "input fields ['rows']; 1 of the input fields)."),
        ("params", "application/json", {"instances": [row], "params": {"k": 1}}, 400,
         "Invalid input. This model's predict takes no params; send the input field alone."),
        ("rows of the wrong width", "application/json", {"instances": [row[:5]]}, 400,
         f"Invalid input. Each row must have 30 values (the columns {columns}, in that "
         "order), got rows of 5; or name the columns (e.g. 'dataframe_split' with 'columns', "
         "or 'dataframe_records')."),
        ("rows unlike the columns", "application/json",
         {"dataframe_split": {"columns": columns, "data": [row, row[:29]]}}, 400,
         "Invalid input. Rows of 'dataframe_split' 'data' must all have 30 values for the 30 "
         "columns; row 1 has 29."),
        ("unknown columns", "application/json",
         {"dataframe_records": [{**X.iloc[0].to_dict(), "age": 52}]}, 400,
         f"Invalid input. Columns the model was not trained on: ['age']. {takes}"),
        ("missing columns", "application/json",
         {"dataframe_split": {"columns": columns[1:], "data": [row[1:]]}}, 400,
         f"Invalid input. Missing columns: ['mean radius']. {takes}"),
        ("records not a list", "application/json", {"dataframe_records": {"a": 1}}, 400,
         "Invalid input. Dataframe records format must be a list of records (objects mapping "
         'column to value, e.g. [{"a": 1, "b": 2}]). Got a dictionary.'),
        ("split with other fields", "application/json",
         {"dataframe_split": {"data": [row], "dtypes": []}}, 400,
         "Invalid input. Dataframe split format must have 'data' field and optionally "
         "'columns' and 'index' fields. Got ['data', 'dtypes']."),
        ("no rows", "application/json", {"instances": []}, 400,
         "Invalid input. 'instances' holds no rows; send at least one row."),
        ("columns of other lengths", "application/json", {"inputs": {"a": [1, 2], "b": [1]}},
         400, "Invalid input. The length of values for each input/column name are not the "
         "same: 'inputs' as a dictionary maps each column to a list of its values, one per "
         "row."),
        ("a value predict cannot take", "application/json", {"instances": [["x", *row[1:]]]},
         400, "Encountered an unexpected error while evaluating the model. Verify that the "
         "input is compatible with the model for inference. Error: ValueError: ..."),
        ("CSV without rows", "text/csv", "", 400,
         "Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid "
         "CSV-formatted Pandas DataFrame, with a header row, produced using the "
         "`pandas.DataFrame.to_csv()` method. Error: 'No columns to parse from file'"),
    ]  # fmt: skip


@pytest.mark.parametrize("case", [c[0] for c in bad_payloads(pd.DataFrame({"a": [1]}))])
def test_a_bad_payload_gets_a_4xx_saying_what_was_wrong_and_what_is_accepted(
    client: TestClient, X: pd.DataFrame, case: str
) -> None:
    _, content_type, body, status, message = next(c for c in bad_payloads(X) if c[0] == case)
    response = post(client, body, content_type)
    assert response.status_code == status, response.text
    assert response.headers["x-glasspane-model"] == "cancer/3"
    assert "Traceback" not in response.text
    error = response.json()
    assert error["error_code"] == "BAD_REQUEST"
    assert set(error) == {"error_code", "message"}
    if message.endswith("..."):
        assert error["message"].startswith(message[:-3]), error["message"]
    else:
        assert error["message"] == message


def test_other_methods_on_invocations_get_405(client: TestClient) -> None:
    response = client.get("/invocations")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.headers["x-glasspane-model"] == "cancer/3"
    assert response.json()["message"] == "Use POST to score; GET is not allowed on /invocations."


class Counting:
    """A model that records the rows of each predict call."""

    def __init__(self, model: Pipeline) -> None:
        self.model, self.calls = model, []
        self.feature_names_in_ = model.feature_names_in_

    def predict(self, frame: pd.DataFrame) -> Any:
        self.calls.append(len(frame))
        return self.model.predict(frame)


def requests_of(X: pd.DataFrame, sizes: list[int]) -> list[Rows]:
    columns = tuple(X.columns)
    values = X.values.tolist()
    return [Rows(columns, [values[(i + j) % len(values)] for j in range(n)]) for i, n in
            enumerate(sizes)]  # fmt: skip


async def score_all(batcher: MicroBatcher, requests: list[Rows]) -> list[Any]:
    try:
        return await asyncio.gather(*(batcher.predict(r) for r in requests), return_exceptions=True)
    finally:
        await batcher.close()


def test_concurrent_requests_share_one_predict_and_get_their_own_rows(
    model: Pipeline, X: pd.DataFrame
) -> None:
    counting = Counting(model)
    requests = requests_of(X, [1, 2, 3] * 10)
    results = asyncio.run(score_all(MicroBatcher(counting), requests))
    assert counting.calls == [60]
    for rows, result in zip(requests, results):
        assert result == model.predict(pd.DataFrame(rows.data, columns=X.columns)).tolist()


def test_a_batch_holds_at_most_max_rows_and_never_splits_a_request(
    model: Pipeline, X: pd.DataFrame
) -> None:
    counting = Counting(model)
    requests = requests_of(X, [3] * 10 + [9])
    results = asyncio.run(score_all(MicroBatcher(counting, max_rows=7), requests))
    assert counting.calls == [6, 6, 6, 6, 6, 9]
    assert [len(r) for r in results] == [3] * 10 + [9]
    counting.calls.clear()
    asyncio.run(score_all(MicroBatcher(counting, max_rows=1), requests[:4]))
    assert counting.calls == [3, 3, 3, 3]  # batching off: one predict per request


def test_a_request_predict_fails_on_fails_alone(model: Pipeline, X: pd.DataFrame) -> None:
    counting = Counting(model)
    requests = requests_of(X, [1, 2] * 5)
    bad = Rows(requests[0].columns, [["x", *requests[0].data[0][1:]]])
    results = asyncio.run(score_all(MicroBatcher(counting), [*requests[:5], bad, *requests[5:]]))
    assert counting.calls == [16, 1, 2, 1, 2, 1, 1, 2, 1, 2, 1, 2]  # the batch, then each alone
    error = results.pop(5)
    assert isinstance(error, ScoringError) and "ValueError" in str(error)
    for rows, result in zip(requests, results):
        assert result == model.predict(pd.DataFrame(rows.data, columns=X.columns)).tolist()


def test_the_command_without_a_model_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "model.pkl"
    assert main(["--model-file", str(missing), "--name", "m", "--version", "1"]) == 2
    assert capsys.readouterr().err == (
        f"glasspane: error: --model-file {missing}: no such file; give a pickled model's path\n"
    )


def test_a_model_whose_class_cannot_be_imported_exits_2_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "model.pkl"
    # a pickle naming a module that does not exist here (as when the model's code is missing)
    path.write_bytes(
        b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00\x8c\x0bno_such_mod\x94\x8c\x05Model\x94\x93\x94."
    )
    assert main(["--model-file", str(path), "--name", "m", "--version", "1"]) == 2
    assert capsys.readouterr().err == (
        f"glasspane: error: --model-file {path} does not unpickle (ModuleNotFoundError: No "
        "module named 'no_such_mod'); give a file written by pickle.dump or joblib.dump, in an "
        "environment with the model's packages\n"
    )


# --- the real process -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(model: Any, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m glasspane.integrations.model_server`` on a free port, in a process group of
    its own; its base URL, once it says it serves, and the process."""
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    port = free_port()
    command = [
        sys.executable, "-m", "glasspane.integrations.model_server", "--model-file", str(path),
        "--name", "cancer", "--version", "3", "--port", str(port),
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line == f"serving cancer/3 on http://127.0.0.1:{port}\n", (
            line,
            process.stderr.read() if process.poll() is not None else "",
        )
        yield f"http://127.0.0.1:{port}", process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=30)


def test_the_command_serves_over_http_and_exits_0_on_sigterm(
    model: Pipeline, X: pd.DataFrame, tmp_path: Path
) -> None:
    expected = {"predictions": model.predict(X).tolist()}
    with serving(model, tmp_path) as (base, process), httpx.Client(base_url=base) as http:
        assert http.get("/ping").status_code == 200
        assert http.get("/version").json() == {
            "name": "cancer",
            "version": "3",
            "glasspane": glasspane.__version__,
            "pid": process.pid,
        }
        for name in ("dataframe_split", "instances, records", "csv"):
            content_type, body = payloads(X)[name]
            response = post(http, body, content_type)
            assert response.json() == expected
            assert response.headers["x-glasspane-model"] == "cancer/3"
        response = post(http, "1,2", "text/plain")
        assert response.status_code == 415 and response.headers["x-glasspane-model"] == "cancer/3"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_concurrent_requests_over_http_each_get_their_own_answer(
    model: Pipeline, data: pd.DataFrame, tmp_path: Path
) -> None:
    features = data.drop(columns="target")
    columns = list(features.columns)
    bodies = [{"dataframe_split": {"columns": columns, "data": [row]}} for row in
              features.iloc[:50].values.tolist()]  # fmt: skip
    bodies[17] = {"dataframe_split": {"columns": [*columns[:-1], "age"], "data": [[0] * 30]}}
    bodies[33] = {"instances": [["x", *features.iloc[33].tolist()[1:]]]}  # predict raises

    async def send_all(base: str) -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            return await asyncio.gather(*(http.post("/invocations", json=b) for b in bodies))

    with serving(model, tmp_path) as (base, _):
        responses = asyncio.run(send_all(base))
    expected = model.predict(features.iloc[:50]).tolist()
    for i, response in enumerate(responses):
        assert response.headers["x-glasspane-model"] == "cancer/3"
        if i in (17, 33):
            assert response.status_code == 400
            continue
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [expected[i]]}
    assert "Columns the model was not trained on: ['age']" in responses[17].json()["message"]
    assert "ValueError" in responses[33].json()["message"]
