"""The pages' forms as pure functions: a Run form's fields from a pipeline's parameter schema,
a posted form back to text values, and the runs list's filters."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta, timezone
from typing import Literal, Optional

import pytest
from pydantic import SecretStr, create_model

from glasspane.errors import InvalidArgument
from glasspane.ui import forms


class Color(enum.Enum):
    red = "red"
    blue = "blue"


SCHEMA = create_model(
    "demo_params",
    n=(int, 3),
    lr=(float, 0.1),
    fast=(bool, False),
    name=(str, ...),
    mode=(Literal["a", "b"], "a"),
    color=(Color, Color.red),
    grid=(list[float], [0.1, 1.0]),
    limit=(Optional[int], None),
    strict=(Optional[bool], None),
    api_key=(SecretStr, ...),
    other_key=(Optional[SecretStr], None),
    options=(dict, {}),
).model_json_schema()


def by_name(fields: list[forms.Field]) -> dict[str, forms.Field]:
    return {field.name: field for field in fields}


def test_each_parameter_type_becomes_its_input_with_the_default_prefilled() -> None:
    fields = by_name(forms.fields_from_schema(SCHEMA))
    assert list(fields) == [
        "n", "lr", "fast", "name", "mode", "color", "grid", "limit", "strict", "api_key",
        "other_key", "options",
    ]  # fmt: skip
    assert (fields["n"].kind, fields["n"].value, fields["n"].step) == ("number", "3", "1")
    assert (fields["lr"].kind, fields["lr"].value, fields["lr"].step) == ("number", "0.1", "any")
    assert fields["fast"].kind == "checkbox" and not fields["fast"].checked
    assert (fields["name"].kind, fields["name"].value, fields["name"].required) == (
        "text",
        "",
        True,
    )
    assert (fields["mode"].kind, fields["mode"].options, fields["mode"].value) == (
        "select",
        ("a", "b"),
        "a",
    )
    assert (fields["color"].kind, fields["color"].options) == ("select", ("red", "blue"))
    assert (fields["grid"].kind, fields["grid"].value) == ("json", "[0.1, 1.0]")
    assert "JSON" in fields["grid"].hint
    assert (fields["limit"].kind, fields["limit"].value, fields["limit"].required) == (
        "number",
        "",
        False,
    )
    assert (fields["strict"].kind, fields["strict"].options) == ("select", ("", "true", "false"))
    assert (fields["options"].kind, fields["options"].value) == ("json", "{}")


def test_secret_parameters_are_password_inputs_never_prefilled() -> None:
    fields = by_name(forms.fields_from_schema(SCHEMA, {"api_key": "hunter2", "n": "7"}))
    assert fields["api_key"].kind == "password" and fields["api_key"].required
    assert fields["api_key"].value == ""
    assert fields["other_key"].kind == "password" and not fields["other_key"].required
    assert fields["n"].value == "7"  # a posted value replaces the default
    assert [f.name for f in forms.secret_fields(SCHEMA)] == ["api_key", "other_key"]


def test_no_schema_gives_no_fields() -> None:
    assert forms.fields_from_schema(None) == []
    assert forms.secret_fields(None) == []


def test_a_posted_form_gives_text_values_and_checkboxes_as_true_or_false() -> None:
    fields = forms.fields_from_schema(SCHEMA)
    posted = {"n": "12", "fast": "true", "name": "", "grid": "[1, 2]", "junk": "x"}
    params = forms.form_params(fields, posted)
    assert params == {"n": "12", "fast": "true", "name": "", "grid": "[1, 2]"}
    assert forms.form_params(fields, {})["fast"] == "false"  # an unticked box is posted as nothing


def test_a_runs_values_prefill_the_form_as_the_cli_would_take_them() -> None:
    values = forms.run_values({"n": 5, "grid": [1, 2], "name": "x", "fast": True, "key": None})
    assert values == {"n": "5", "grid": "[1, 2]", "name": "x", "fast": "true", "key": ""}
    fields = by_name(forms.fields_from_schema(SCHEMA, values))
    assert fields["fast"].checked and fields["grid"].value == "[1, 2]"


NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_run_filters_become_list_runs_arguments() -> None:
    query = {
        "pipeline": " retrain ", "trigger": "schedule", "schedule": " nightly ",
        "since": "2025-02-01T08:30", "until": "",
    }  # fmt: skip
    filters = forms.run_filters(query, ["failed", "crashed"])
    assert filters.query(NOW) == {
        "pipeline": "retrain",
        "state": ["failed", "crashed"],
        "trigger": "schedule",
        "schedule": "nightly",
        "since": datetime(2025, 2, 1, 8, 30, tzinfo=timezone.utc),
        "until": None,
    }
    assert filters.active
    assert filters.url("CURSOR") == (
        "/?pipeline=retrain&state=failed&state=crashed&trigger=schedule&schedule=nightly"
        "&since=2025-02-01T08%3A30&cursor=CURSOR"
    )
    empty = forms.run_filters({}, [])
    assert not empty.active and empty.url() == "/"
    assert empty.query(NOW) == {
        "pipeline": None, "state": None, "trigger": None, "schedule": None, "since": None,
        "until": None,
    }  # fmt: skip


def test_a_time_window_sets_since_relative_to_now() -> None:
    filters = forms.run_filters({"window": "24h"}, [])
    assert filters.query(NOW)["since"] == NOW - timedelta(days=1)
    later = forms.run_filters({"window": "7d", "since": "2025-02-28"}, [])
    assert later.query(NOW)["since"] == datetime(2025, 2, 28, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("query", "states", "message"),
    [
        ({}, ["sleeping"], "unknown run state `sleeping`; use one of queued, pending"),
        ({"since": "yesterday"}, [], "`since` must be a date and time such as 2025-03-01T14:30"),
        ({"until": "3pm"}, [], "`until` must be a date and time"),
        ({"window": "1y"}, [], "unknown time range `1y`; use one of 1h, 24h, 7d, 30d"),
    ],
)
def test_bad_filters_say_what_to_type(query: dict, states: list[str], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(")):
        forms.run_filters(query, states).query(NOW)


def test_times_with_an_offset_keep_it() -> None:
    value = forms.parse_time("2025-03-01T14:30:00+02:00", "since")
    assert value == datetime(2025, 3, 1, 12, 30, tzinfo=timezone.utc)
    assert forms.parse_time("2025-03-01T14:30:00Z", "since") == datetime(
        2025, 3, 1, 14, 30, tzinfo=timezone.utc
    )
    assert forms.parse_time("", "since") is None
