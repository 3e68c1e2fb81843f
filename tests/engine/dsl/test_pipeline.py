"""``@pipeline``: the parameter model, binding calls, compiling, and running from Python."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import glasspane
from glasspane import DefinitionError, ParameterError, RunFailed, pipeline, task
from glasspane.dsl.pipeline import PipelineDef

calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    # GLASSPANE_HOME is a fresh directory per test (tests/conftest.py)
    calls.clear()


@task
def load(n_rows: int) -> list[int]:
    calls["load"] += 1
    return list(range(n_rows))


@task
def scale(rows: list[int], factor: float) -> list[float]:
    calls["scale"] += 1
    return [r * factor for r in rows]


@task
def explode(rows: list[int]) -> int:
    calls["explode"] += 1
    raise ValueError(f"kaboom on {len(rows)} rows")


@task
def after(value: int) -> int:
    calls["after"] += 1
    return value


@pipeline
def prep(n_rows: int, factor: float = 2.0, tag: str = "dev"):
    return scale(load(n_rows), factor)


@pipeline(name="broken", schedule="0 3 * * *")
def failing(n_rows: int = 3):
    return after(explode(load(n_rows)))


# -- the parameter model -----------------------------------------------------------------------


def test_parameter_model_is_built_from_the_signature() -> None:
    assert isinstance(prep, PipelineDef)
    fields = prep.params_model.model_fields
    assert list(fields) == ["n_rows", "factor", "tag"]
    assert fields["n_rows"].annotation is int and fields["n_rows"].is_required()
    assert fields["factor"].annotation is float and fields["factor"].default == 2.0
    assert fields["tag"].annotation is str and fields["tag"].default == "dev"
    assert prep.describe_params() == "n_rows: int, factor: float = 2.0, tag: str = 'dev'"


def test_decorator_options_and_wrapped_function() -> None:
    assert failing.name == "broken"
    assert failing.schedule == glasspane.Schedule(name="broken", cron="0 3 * * *")
    assert failing.__name__ == "failing"
    assert prep.name == "prep" and prep.schedule is None


def test_unannotated_parameters_accept_anything() -> None:
    @pipeline
    def loose(x, y=None):
        return load(3)

    assert loose.validate_params({"x": object}) == {"x": object, "y": None}


def test_validate_params_fills_defaults_and_coerces() -> None:
    assert prep.validate_params({"n_rows": "5", "factor": 3}) == {
        "n_rows": 5,
        "factor": 3.0,
        "tag": "dev",
    }


def test_unknown_parameter_names_the_pipeline_and_lists_the_parameters() -> None:
    with pytest.raises(
        ParameterError,
        match=r"unknown parameter `n_row` for pipeline `prep`; it takes: n_rows: int, "
        r"factor: float = 2\.0, tag: str = 'dev'",
    ):
        prep.compile(n_row=3)


def test_several_unknown_parameters_are_listed_together() -> None:
    with pytest.raises(ParameterError, match=r"unknown parameters `a`, `b` for pipeline `prep`"):
        prep.compile(n_rows=1, a=1, b=2)


def test_wrong_type_names_the_pipeline_the_parameter_and_the_value() -> None:
    with pytest.raises(
        ParameterError,
        match=r"invalid parameter for pipeline `prep`: `n_rows`: Input should be a valid integer, "
        r"unable to parse string as an integer \(got 'many'\); it takes: n_rows: int",
    ):
        prep.compile(n_rows="many")


def test_missing_required_parameter_names_it() -> None:
    with pytest.raises(
        ParameterError,
        match=r"invalid parameter for pipeline `prep`: `n_rows` is required; it takes: n_rows",
    ):
        prep.compile()


def test_several_invalid_parameters_are_reported_together() -> None:
    with pytest.raises(
        ParameterError,
        match=r"invalid parameters for pipeline `prep`: `n_rows`: .*\(got 'x'\); `factor`: .*"
        r"\(got 'y'\)",
    ):
        prep.compile(n_rows="x", factor="y")


def test_parameter_error_is_also_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown parameter"):
        prep.compile(nope=1)


# -- binding calls -----------------------------------------------------------------------------


def test_positional_arguments_bind_in_order() -> None:
    assert prep.bind((3, 0.5), {}) == {"n_rows": 3, "factor": 0.5}
    assert prep.bind((3,), {"tag": "x"}) == {"n_rows": 3, "tag": "x"}


def test_too_many_positional_arguments() -> None:
    with pytest.raises(
        ParameterError,
        match=r"pipeline `prep` takes 3 parameters \(n_rows: int, factor: float = 2\.0, tag: str "
        r"= 'dev'\) but was given 4 positional arguments; pass parameters by name",
    ):
        prep(1, 2.0, "a", "b", executor="inline")
    assert calls == Counter()


def test_positional_and_keyword_for_the_same_parameter() -> None:
    with pytest.raises(
        ParameterError,
        match=r"pipeline `prep` got parameter `n_rows` both by position and by name; pass it once",
    ):
        prep(3, n_rows=4, executor="inline")
    assert calls == Counter()


def test_positional_call_runs_with_the_bound_values() -> None:
    result = prep(3, 0.5, executor="inline")
    assert result.output == [0.0, 0.5, 1.0]
    assert result.params == {"n_rows": 3, "factor": 0.5, "tag": "dev"}


# -- definition errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["executor", "raise_on_failure", "settings", "listeners", "trigger", "workspace"]
)
def test_reserved_parameter_names_are_rejected(name: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"def body({name}=1):\n    return None\n", namespace)
    with pytest.raises(
        DefinitionError,
        match=rf"pipeline `body` has a parameter named `{name}`, which is reserved for run "
        r"options \(executor, raise_on_failure, settings, listeners, trigger, workspace\); "
        r"rename it",
    ):
        pipeline(namespace["body"])


def test_parameters_named_like_pydantic_model_attributes_work() -> None:
    # ML pipelines take `model_name`; `json`, `copy`, `schema` are BaseModel methods
    @pipeline
    def named(model_name: str = "m", json: bool = False, copy: int = 1, schema: str = "s"):
        return load(copy)

    assert named.validate_params({"model_name": "resnet", "json": True}) == {
        "model_name": "resnet",
        "json": True,
        "copy": 1,
        "schema": "s",
    }
    assert named(copy=2, executor="inline").params == {
        "model_name": "m",
        "json": False,
        "copy": 2,
        "schema": "s",
    }


def test_model_config_parameter_is_rejected() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"pipeline `configured` has a parameter named `model_config`, which glasspane "
        r"cannot validate; rename it",
    ):

        @pipeline
        def configured(model_config: int = 1):
            return None


def test_var_positional_parameters_are_rejected() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"pipeline `varargs` has `\*sizes`/`\*\*sizes`; pipeline parameters must be named",
    ):

        @pipeline
        def varargs(*sizes: int):
            return None


def test_var_keyword_parameters_are_rejected() -> None:
    with pytest.raises(DefinitionError, match=r"pipeline `kwargs` has `\*options`/`\*\*options`"):

        @pipeline
        def kwargs(n: int = 1, **options: Any):
            return None


def test_calling_a_pipeline_inside_another_pipeline_is_rejected() -> None:
    @pipeline
    def outer(n_rows: int = 2):
        return prep(n_rows)

    with pytest.raises(
        DefinitionError,
        match=r"pipeline `prep` was called inside another pipeline's body; call its tasks "
        r"directly instead",
    ):
        outer.compile()
    assert calls == Counter()


def test_compiling_a_pipeline_inside_another_pipeline_is_rejected() -> None:
    @pipeline
    def outer():
        return prep.compile(n_rows=1)

    with pytest.raises(DefinitionError, match=r"pipeline `prep` was called inside another"):
        outer.compile()


# -- compile -----------------------------------------------------------------------------------


def test_compile_returns_a_graph_without_running_tasks() -> None:
    graph = prep.compile(n_rows=4, factor=0.5)
    assert isinstance(graph, glasspane.Graph)
    assert graph.pipeline == "prep"
    assert list(graph.nodes) == ["load", "scale"]
    assert dict(graph.params) == {"n_rows": 4, "factor": 0.5, "tag": "dev"}
    assert graph["load"].args["n_rows"] == 4
    assert graph["scale"].args["factor"] == 0.5
    assert calls == Counter()
    assert glasspane.runs() == []


def test_compile_runs_the_body_with_validated_values() -> None:
    seen = {}

    @pipeline
    def grid(sizes: list[int] = [1, 2], n: int = 2):  # noqa: B006 - a default, never mutated
        seen["types"] = (type(n), [type(s) for s in sizes])
        return [load(s) for s in sizes[:n]]

    graph = grid.compile(sizes=["3", "4", "5"], n="2")
    assert seen["types"] == (int, [int, int, int])
    assert [graph[node].args["n_rows"] for node in graph.nodes] == [3, 4]


def test_body_returning_a_ref_from_another_compile_is_rejected() -> None:
    leaked = {}

    @pipeline
    def first():
        leaked["ref"] = load(3)
        return leaked["ref"]

    @pipeline
    def second():
        return after(leaked["ref"])

    first.compile()
    with pytest.raises(
        DefinitionError,
        match=r"pipeline `second`: argument `value` of task `after` uses the output of `load`, "
        r"which was not produced inside this pipeline; call the task inside this pipeline's body",
    ):
        second.compile()


def test_an_exception_in_the_body_names_the_pipeline_and_keeps_the_cause() -> None:
    @pipeline
    def buggy(n_rows: int = 2):
        settings = {"rows": n_rows}
        return load(settings["n_rows"])

    with pytest.raises(
        DefinitionError,
        match=r"the body of pipeline `buggy` raised KeyError: 'n_rows'; fix the error in the "
        r"pipeline body \(traceback above\)",
    ) as info:
        buggy(executor="inline")
    assert isinstance(info.value.__cause__, KeyError)
    user_traceback = info.value.user_traceback  # type: ignore[attr-defined]
    assert f'File "{__file__}"' in user_traceback
    assert 'settings["n_rows"]' in user_traceback
    assert "dsl/pipeline.py" not in user_traceback
    assert user_traceback.rstrip().endswith("KeyError: 'n_rows'")
    assert glasspane.runs() == []


# -- running -----------------------------------------------------------------------------------


def test_calling_a_pipeline_runs_it_and_returns_a_run_result() -> None:
    result = prep(n_rows=3, factor=10.0, executor="threads")
    assert isinstance(result, glasspane.RunResult)
    assert result.ok and result.state == "succeeded"
    assert result.pipeline == "prep"
    assert result.output == [0.0, 10.0, 20.0]
    assert [(t.node, t.state, t.cached, t.attempts) for t in result.tasks] == [
        ("load", "succeeded", False, 1),
        ("scale", "succeeded", False, 1),
    ]
    assert calls == Counter({"load": 1, "scale": 1})
    stored = glasspane.get_run(result.run_id)
    assert stored["state"] == "succeeded"
    assert stored["params"] == {"n_rows": 3, "factor": 10.0, "tag": "dev"}


def test_run_method_is_the_same_as_calling() -> None:
    result = prep.run(n_rows=2, executor="inline")
    assert result.output == [0.0, 2.0]


def test_failing_task_raises_run_failed_with_the_result() -> None:
    with pytest.raises(
        RunFailed,
        match=r"run \w+ of pipeline `broken` failed: task `explode` failed: ValueError: kaboom on "
        r"3 rows; inspect it with `glasspane runs show \w+` and resume it with "
        r"`glasspane retry \w+`",
    ) as info:
        failing(executor="threads")
    result = info.value.result
    assert result.state == "failed" and not result.ok
    assert result.output is None
    assert {t.node: t.state for t in result.tasks} == {
        "load": "succeeded",
        "explode": "failed",
        "after": "upstream_failed",
    }
    assert result.task("explode").error == "ValueError: kaboom on 3 rows"
    assert calls == Counter({"load": 1, "explode": 1})
    assert glasspane.get_run(result.run_id)["state"] == "failed"


def test_raise_on_failure_false_returns_the_failed_result() -> None:
    result = failing(n_rows=2, executor="threads", raise_on_failure=False)
    assert result.state == "failed"
    assert result.error == "task `explode` failed: ValueError: kaboom on 2 rows"
    assert result.task("after").state == "upstream_failed"
    assert [r["state"] for r in glasspane.runs()] == ["failed"]


def test_parameter_errors_when_called_write_no_run() -> None:
    with pytest.raises(ParameterError, match=r"unknown parameter `rows` for pipeline `prep`"):
        prep(rows=3, executor="threads")
    assert calls == Counter()
    assert glasspane.runs() == []
