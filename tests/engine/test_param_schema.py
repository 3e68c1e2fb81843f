"""Checking a form's text values against a pipeline's stored parameter schema, without its
code, with the messages ``glasspane run -p`` gives."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import SecretStr

from glasspane import ParameterError, Workspace, pipeline, task
from glasspane.errors import NotFound
from glasspane.param_schema import check_params, params_schema, secret_names


@task
def echo(value: str) -> str:
    return value


@pipeline
def tuned(
    api_key: SecretStr,
    n_rows: int = 1000,
    C: float = 1.0,
    mode: Literal["fast", "full"] = "fast",
    grid: list[float] | None = None,
    label: str = "nightly",
    verbose: bool = False,
):
    return echo(label)


SCHEMA = params_schema(tuned.params_model)


def test_values_are_validated_and_converted_like_the_command_line() -> None:
    assert secret_names(SCHEMA) == {"api_key"}
    values = check_params(
        "tuned",
        SCHEMA,
        {"api_key": "k", "n_rows": "50", "C": "0.5", "mode": "full", "grid": "[0.1, 1]",
         "label": "123", "verbose": "true"},
    )  # fmt: skip
    assert values == {
        "api_key": "k", "n_rows": 50, "C": 0.5, "mode": "full", "grid": [0.1, 1.0],
        "label": "123", "verbose": True,
    }  # fmt: skip
    # a blank field of a non-string parameter takes the default
    assert check_params("tuned", SCHEMA, {"api_key": "k", "n_rows": ""})["n_rows"] == 1000


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "invalid parameter for pipeline `tuned`: `api_key` is required"),
        ({"api_key": "k", "n_rows": "many"}, "`n_rows`: Input should be a valid integer"),
        ({"api_key": "k", "n_rows": "true"}, "which the command line does not convert to int"),
        ({"api_key": "k", "mode": "slow"}, "`mode`: Input should be 'fast' or 'full'"),
        ({"api_key": "k", "grid": "[0.1, 1"}, "-p `grid=[0.1, 1` is not valid JSON"),
        ({"api_key": "k", "depth": "3"}, "unknown parameter `depth` for pipeline `tuned`"),
    ],
)
def test_bad_values_get_the_command_lines_message(raw: dict[str, str], message: str) -> None:
    with pytest.raises(ParameterError, match="it takes|expects|write") as caught:
        check_params("tuned", SCHEMA, raw)
    assert message in str(caught.value)


def test_the_same_message_as_the_pipeline_itself_gives() -> None:
    with pytest.raises(ParameterError) as from_schema:
        check_params("tuned", SCHEMA, {"api_key": "k", "C": '"x"'})
    with pytest.raises(ParameterError) as from_code:
        tuned.validate_params({"api_key": "k", "C": "x"})
    assert str(from_schema.value) == str(from_code.value)


def test_a_workspace_checks_against_the_schema_its_last_run_stored(tmp_path) -> None:
    with Workspace(home=tmp_path) as ws:
        ws.run(tuned, {"api_key": "k"})
        assert ws.check_params("tuned", {"api_key": "k", "n_rows": "5"})["n_rows"] == 5
        with pytest.raises(ParameterError, match="`n_rows`: Input should be a valid integer"):
            ws.check_params("tuned", {"api_key": "k", "n_rows": "x"})
        with pytest.raises(NotFound, match="no pipeline named `other` has run here"):
            ws.check_params("other", {})
