"""``-p NAME=VALUE`` parsing: JSON values, raw strings, and strict types on the command line."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from glasspane import ParameterError, pipeline
from glasspane.params import parse_params


class Window(BaseModel):
    days: int


@pipeline
def typed(
    n: int = 1,
    rate: float = 0.5,
    flag: bool = False,
    tag: str = "x",
    grid: list[float] = [],  # noqa: B006
    out: Path = Path("."),
    day: date = date(2024, 1, 1),
    window: Window = Window(days=1),  # noqa: B008
    note: Any = None,
):
    return None


FIELDS = dict(typed.params_model.model_fields)


def parse(*items: str) -> dict[str, Any]:
    return parse_params(list(items), FIELDS, "typed")


def test_values_of_the_right_type_pass_as_parsed() -> None:
    assert parse("n=3", "rate=3", "flag=true", "tag=123", "grid=[1, 0.5]") == {
        "n": 3,
        "rate": 3,  # an integer is a fine float
        "flag": True,
        "tag": "123",  # str parameters keep the raw text
        "grid": [1, 0.5],
    }
    assert parse("out=/tmp/x", "day=2024-02-03", 'window={"days": 7}', "note=a b") == {
        "out": "/tmp/x",
        "day": "2024-02-03",
        "window": {"days": 7},
        "note": "a b",
    }


@pytest.mark.parametrize(
    ("item", "got", "expects", "hint"),
    [
        ("n=true", "the JSON boolean true", "int", ", e.g. -p n=3"),
        ('n="3"', 'the JSON string "3"', "int", ", e.g. -p n=3"),
        ("rate=false", "the JSON boolean false", "float", ", e.g. -p rate=0.5"),
        ("flag=1", "the JSON number 1", "bool", ", e.g. -p flag=true"),
        ('window={"days": true}', 'the JSON object {"days": true}', "Window", ""),
    ],
)
def test_values_are_not_converted_to_the_parameters_type(
    item: str, got: str, expects: str, hint: str
) -> None:
    name = item.split("=")[0]
    with pytest.raises(ParameterError) as info:
        parse(item)
    message = str(info.value)
    assert message.startswith(f"invalid parameter for pipeline `typed`: `{name}`: ")
    assert message.endswith(
        f" (got {got} from -p `{item}`, which the command line does not convert to "
        f"{expects}); write a value of that type{hint}"
    )


def test_a_nested_error_says_where() -> None:
    with pytest.raises(ParameterError, match=r"`window`: at days: Input should be a valid int"):
        parse('window={"days": true}')


def test_a_fractional_number_for_an_int_is_left_to_the_pipelines_own_message() -> None:
    assert parse("n=1.5") == {"n": 1.5}
    with pytest.raises(ParameterError, match=r"`n`: Input should be a valid integer, got a number"):
        typed.compile(**parse("n=1.5"))


def test_a_string_that_is_not_json_must_suit_the_parameter() -> None:
    with pytest.raises(ParameterError) as info:
        parse("flag=yes")
    assert str(info.value).startswith(
        "invalid parameter for pipeline `typed`: `flag`: Input should be a valid boolean "
        "(got 'yes': -p `flag=yes` is not valid JSON (Expecting value: line 1 column 1 (char 0)), "
        "so it was read as a string, but `flag` expects bool); write VALUE as JSON"
    )


@pipeline
def constrained(k: Annotated[int, Field(gt=0)] = 1):
    return None


def test_constraints_of_an_annotated_parameter_apply_strictly_too() -> None:
    fields = dict(constrained.params_model.model_fields)
    assert parse_params(["k=2"], fields, "constrained") == {"k": 2}
    with pytest.raises(ParameterError, match=r"got the JSON boolean true from -p `k=true`"):
        parse_params(["k=true"], fields, "constrained")
