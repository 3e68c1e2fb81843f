"""``@task``: options, signatures, calls outside a pipeline, ``.map`` and ``Ref`` misuse."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from glasspane import DefinitionError, Ref, TaskOptions, expand, pipeline, task, unmapped
from glasspane.dsl.task import TaskDef


@task
def load(n: int) -> list[int]:
    """Load ``n`` rows."""
    return list(range(n))


@task
def train(data: Any, C: float, extra: Any = None) -> float:  # noqa: N803 - sklearn's name
    return C


@task
def split(data: list[int]) -> tuple[list[int], list[int]]:
    return data[:1], data[1:]


@task
def score(model: float) -> float:
    return model


def compile_body(body: Any, **params: Any) -> Any:
    """Compile a pipeline whose body is ``body`` (a function of no arguments)."""
    return pipeline(body, name="p").compile(**params)


# -- options -------------------------------------------------------------------------------


def test_options_are_validated_and_stored() -> None:
    @task(retries=2, retry_delay=0.5, timeout=10, cache=False, tags="nightly", version="3")
    def fit(x: int) -> int:
        return x

    assert isinstance(fit, TaskDef)
    assert fit.options == TaskOptions(
        retries=2, retry_delay=0.5, timeout=10, cache=False, tags=("nightly",), version="3"
    )


@pytest.mark.parametrize(
    ("options", "match"),
    [
        pytest.param(
            {"retries": -1},
            r"`retries`: Input should be greater than or equal to 0",
            id="negative-retries",
        ),
        pytest.param(
            {"retries": "many"}, r"`retries`: Input should be a valid integer", id="retries-not-int"
        ),
        pytest.param({"timeout": 0}, r"`timeout`: Input should be greater than 0", id="timeout"),
        pytest.param(
            {"backoff": 0.5}, r"`backoff`: Input should be greater than or equal to 1", id="backoff"
        ),
        pytest.param({"retires": 2}, r"`retires`: Extra inputs are not permitted", id="typo"),
        pytest.param({"tags": None}, r"`tags`: Input should be a valid tuple", id="tags-none"),
        pytest.param({"tags": 3}, r"`tags`: Input should be a valid tuple", id="tags-int"),
    ],
)
def test_bad_options_raise_definition_error_naming_the_task(
    options: dict[str, Any], match: str
) -> None:
    with pytest.raises(DefinitionError, match=r"invalid options for task `fit`: " + match):

        @task(**options)
        def fit(x: int) -> int:
            return x


def test_tags_accept_a_string_or_any_sequence() -> None:
    assert task(tags="nightly")(lambda: 1).options.tags == ("nightly",)
    assert task(tags=["a", "b"])(lambda: 1).options.tags == ("a", "b")


def test_bad_options_name_the_task_given_by_name_option() -> None:
    with pytest.raises(DefinitionError, match=r"invalid options for task `trainer`: `retries`"):
        task(name="trainer", retries=-3)(lambda x: x)


def test_task_with_positional_function_and_options_is_rejected() -> None:
    def fit(x: int) -> int:
        return x

    with pytest.raises(DefinitionError, match=r"use @task\(\.\.\.\) with keyword options only"):
        task(fit, retries=1)  # type: ignore[call-overload]


def test_task_needs_a_callable() -> None:
    with pytest.raises(DefinitionError, match=r"@task needs a function, got int"):
        task(3)  # type: ignore[call-overload]


# -- the wrapper keeps the function's identity -----------------------------------------------


def test_signature_name_and_doc_are_the_functions() -> None:
    assert inspect.signature(load) == inspect.signature(load.fn)
    assert str(inspect.signature(load)) == "(n: 'int') -> 'list[int]'"
    assert load.__name__ == "load"
    assert load.__doc__ == "Load ``n`` rows."
    assert load.name == "load"
    assert load.identity == f"{__name__}.load"


def test_name_option_renames_the_task_but_keeps_the_signature() -> None:
    @task(name="fetch")
    def load_rows(n: int) -> int:
        return n

    assert load_rows.name == "fetch"
    assert load_rows.__name__ == "load_rows"
    assert list(compile_body(lambda: load_rows(1)).nodes) == ["fetch"]


def test_called_outside_a_pipeline_runs_the_function() -> None:
    calls = []

    @task(retries=3)
    def add(a: int, b: int = 10) -> int:
        calls.append((a, b))
        return a + b

    assert add(1, b=2) == 3
    assert add(5) == 15
    assert calls == [(1, 2), (5, 10)]


def test_called_outside_a_pipeline_propagates_exceptions_unchanged() -> None:
    @task(retries=2)
    def boom() -> None:
        raise KeyError("nope")

    with pytest.raises(KeyError, match="nope"):
        boom()


def test_a_ref_passed_to_a_task_outside_a_pipeline_is_rejected() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"task `score` was given the output of another task outside a pipeline; call it "
        r"inside a @pipeline body, or pass a plain value",
    ):
        score(Ref("train", None, "train"))


def test_a_ref_nested_in_a_container_outside_a_pipeline_is_rejected() -> None:
    with pytest.raises(DefinitionError, match=r"task `train` was given the output of another"):
        train(data={"rows": [Ref("load", None, "load")]}, C=1.0)


def test_map_outside_a_pipeline_is_rejected() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"`train\.map\(\.\.\.\)` can only be used inside a @pipeline body; outside one, "
        r"call `train` in a loop",
    ):
        train.map([1, 2], C=1.0)


# -- with_options ------------------------------------------------------------------------------


def test_with_options_returns_a_changed_copy() -> None:
    fast = train.with_options(retries=4, timeout=2.5)
    assert fast is not train
    assert fast.fn is train.fn
    assert (fast.options.retries, fast.options.timeout) == (4, 2.5)
    assert (train.options.retries, train.options.timeout) == (0, None)
    assert fast.name == "train"
    assert fast.identity == train.identity
    assert inspect.signature(fast) == inspect.signature(train.fn)


def test_with_options_keeps_unchanged_options() -> None:
    @task(retries=2, tags=("a", "b"), cache=False)
    def fit(x: int) -> int:
        return x

    changed = fit.with_options(timeout=1)
    assert changed.options.retries == 2
    assert changed.options.tags == ("a", "b")
    assert changed.options.cache is False


def test_with_options_validates_and_names_the_task() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"invalid options for task `train`: `retries`: Input should be greater than or "
        r"equal to 0; see TaskOptions",
    ):
        train.with_options(retries=-1)


def test_with_options_name_changes_the_node_id() -> None:
    renamed = train.with_options(name="fit")
    graph = compile_body(lambda: (train(1, 1.0), renamed(1, 2.0)))
    assert list(graph.nodes) == ["train", "fit"]


# -- tuple outputs -----------------------------------------------------------------------------


def test_tuple_annotation_gives_one_ref_per_element() -> None:
    @task
    def pair() -> tuple[int, str]:
        return 1, "a"

    @task
    def many() -> tuple[int, ...]:
        return (1, 2, 3)

    @task
    def one() -> int:
        return 1

    assert pair.n_outputs == 2
    assert many.n_outputs is None
    assert one.n_outputs is None

    seen = {}

    def body() -> Any:
        seen["pair"] = pair()
        seen["many"] = many()
        return seen["pair"][1]

    graph = compile_body(body)
    assert seen["pair"] == (Ref("pair", 0, "pair"), Ref("pair", 1, "pair"))
    assert isinstance(seen["many"], Ref) and seen["many"].output is None
    assert graph["pair"].n_outputs == 2
    assert graph["many"].n_outputs is None


def test_tuple_arity_from_an_unresolvable_string_annotation() -> None:
    def fit(x: int) -> tuple[Model, dict[str, float], list[int]]:  # type: ignore[name-defined]  # noqa: F821
        return None  # type: ignore[return-value]

    # ``from __future__ import annotations``: the return hint is a string naming a missing class
    assert task(fit).n_outputs == 3


def test_unpacking_a_single_output_names_the_task() -> None:
    def body() -> Any:
        a, b = load(3)
        return a

    with pytest.raises(
        DefinitionError,
        match=r"cannot iterate over the output of task `load` \(node `load`\) inside a "
        r"pipeline: it is only known when the pipeline runs; to unpack several outputs annotate "
        r"the task's return as `tuple\[A, B\]`; to map over it use `task\.map\(expand\(ref\)\)`",
    ):
        compile_body(body)


# -- node ids ----------------------------------------------------------------------------------


def test_second_call_of_a_task_gets_a_numbered_id() -> None:
    graph = compile_body(lambda: [load(1), load(2), load(3)])
    assert list(graph.nodes) == ["load", "load_2", "load_3"]
    assert [graph[n].args["n"] for n in graph.nodes] == [1, 2, 3]


def test_numbered_ids_never_collide_with_a_task_named_like_one() -> None:
    @task
    def load_2(n: int) -> int:
        return -n

    graph = compile_body(lambda: (load(1), load(2), load_2(3), load.map([4, 5])))
    assert [(n.id, n.task.name, n.args["n"]) for n in graph] == [
        ("load", "load", 1),
        ("load_2", "load", 2),
        ("load_2_2", "load_2", 3),
        ("load_3[0]", "load", 4),
        ("load_3[1]", "load", 5),
    ]
    graph = compile_body(lambda: (load_2(3), load(1), load(2)))
    assert [(n.id, n.task.name) for n in graph] == [
        ("load_2", "load_2"),
        ("load", "load"),
        ("load_3", "load"),
    ]


def test_a_call_with_arguments_that_do_not_match_names_the_task() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"task `train` called with arguments that do not match `train\(data: 'Any', C: "
        r"'float', extra: 'Any' = None\) -> 'float'`: missing a required argument: 'C'",
    ):
        compile_body(lambda: train(1))


@task
def fit(x: int, alpha: float) -> float:
    return x * alpha


def test_a_misspelled_keyword_is_named_with_the_closest_parameter() -> None:
    with pytest.raises(DefinitionError) as info:
        compile_body(lambda: fit(1, alpah=0.5))
    assert str(info.value) == (
        "task `fit` called with arguments that do not match `fit(x: 'int', alpha: 'float') -> "
        "'float'`: unexpected keyword argument `alpah` (did you mean `alpha`?)"
    )


def _sig_a(a, b=2, *, c, d=4): ...  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
def _sig_b(a, /, b, c=3): ...  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN202
def _sig_c(): ...  # noqa: ANN202


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"),
    [
        (_sig_a, (1,), {"c": 3}),
        (_sig_a, (1, 5), {"d": 6, "c": 3}),
        (_sig_a, (), {"c": 3, "a": 1}),
        (_sig_a, (1,), {}),  # missing keyword-only
        (_sig_a, (1, 2, 3), {"c": 3}),  # too many positional
        (_sig_a, (1,), {"a": 1, "c": 3}),  # given twice
        (_sig_a, (1,), {"c": 3, "e": 5}),  # unknown keyword
        (_sig_b, (1, 2), {}),
        (_sig_b, (1,), {"b": 2, "c": 4}),
        (_sig_b, (), {"a": 1, "b": 2}),  # positional-only by keyword
        (_sig_c, (), {}),
        (_sig_c, (1,), {}),
    ],
)
def test_binding_a_call_matches_inspect(fn: Any, args: tuple[Any, ...], kwargs: Any) -> None:
    # TaskDef binds without inspect.Signature.bind for speed: same arguments, same errors
    signature = inspect.signature(fn)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as exc:
        expected = str(exc)
        if "unexpected keyword argument" in expected:  # glasspane's own wording: see above
            expected = "unexpected keyword argument `" + expected.split("'")[1] + "`"
        with pytest.raises(DefinitionError, match=f"that do not match .*: {re.escape(expected)}$"):
            task(fn)._bind(args, kwargs, "")
        return
    bound.apply_defaults()
    result = task(fn)._bind(args, kwargs, "")
    assert list(result.items()) == list(bound.arguments.items())


# -- .map --------------------------------------------------------------------------------------


def test_map_fans_out_with_indexed_node_ids() -> None:
    refs = {}

    def body() -> Any:
        refs["models"] = train.map([10, 20], C=[0.1, 1.0])
        return refs["models"]

    graph = compile_body(body)
    assert list(graph.nodes) == ["train[0]", "train[1]"]
    assert refs["models"] == [Ref("train[0]", None, "train"), Ref("train[1]", None, "train")]
    assert dict(graph["train[0]"].args) == {"data": 10, "C": 0.1, "extra": None}
    assert dict(graph["train[1]"].args) == {"data": 20, "C": 1.0, "extra": None}
    assert [graph[n].map_index for n in graph.nodes] == [0, 1]


def test_map_broadcasts_refs_scalars_and_unmapped_lists() -> None:
    def body() -> Any:
        data = load(5)
        return train.map(data, C=[0.1, 1.0, 10.0], extra=unmapped([1, 2]))

    graph = compile_body(body)
    assert list(graph.nodes) == ["load", "train[0]", "train[1]", "train[2]"]
    for i, c in enumerate([0.1, 1.0, 10.0]):
        node = graph[f"train[{i}]"]
        assert node.args["data"] == Ref("load", None, "load")
        assert node.args["C"] == c
        assert node.args["extra"] == [1, 2]
        assert node.upstream == ("load",)


def test_map_over_a_tuple_constant() -> None:
    graph = compile_body(lambda: train.map(data=(1, 2), C=5.0))
    assert [graph[n].args["data"] for n in graph.nodes] == [1, 2]
    assert [graph[n].args["C"] for n in graph.nodes] == [5.0, 5.0]


def test_map_over_another_maps_result() -> None:
    def body() -> Any:
        models = train.map([1, 2, 3], C=1.0)
        return score.map(models)

    graph = compile_body(body)
    assert list(graph.nodes)[3:] == ["score[0]", "score[1]", "score[2]"]
    for i in range(3):
        assert graph[f"score[{i}]"].upstream == (f"train[{i}]",)
        assert graph[f"score[{i}]"].args["model"] == Ref(f"train[{i}]", None, "train")


def test_second_map_of_a_task_gets_a_numbered_base_id() -> None:
    graph = compile_body(lambda: (train.map([1, 2], C=1.0), train.map([3], C=2.0)))
    assert list(graph.nodes) == ["train[0]", "train[1]", "train_2[0]"]


def test_map_of_unequal_lengths_names_the_lists() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"`train\.map` got lists of unequal lengths \(`data` has 2, `C` has 3\); pass "
        r"lists of the same length, or wrap the one to broadcast in unmapped\(\)",
    ):
        compile_body(lambda: train.map([1, 2], C=[0.1, 1.0, 10.0]))


def test_map_without_a_list_says_what_it_got() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"`train\.map` needs at least one list or tuple argument to map over \(got `data`: "
        r"int, `C`: float, `extra`: NoneType\); pass a list, or use expand\(ref\)",
    ):
        compile_body(lambda: train.map(3, C=1.0))


def test_map_over_a_ref_without_expand_is_rejected() -> None:
    with pytest.raises(DefinitionError, match=r"`data`: Ref, `C`: float"):
        compile_body(lambda: train.map(load(3), C=1.0))


def test_expand_creates_one_expander_node() -> None:
    refs = {}

    def body() -> Any:
        refs["out"] = train.map(expand(load(3)), C=1.0, extra=unmapped([9]))
        return refs["out"]

    graph = compile_body(body)
    assert list(graph.nodes) == ["load", "train"]
    node = graph["train"]
    assert node.expand_arg == "data"
    assert node.map_index is None
    assert node.args["data"] == Ref("load", None, "load")
    assert node.args["extra"] == [9]
    assert node.upstream == ("load",)
    assert refs["out"] == Ref("train", None, "train")


def test_expand_beside_a_list_constant_is_rejected() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"`train\.map` can expand only one argument at run time and map no list constants "
        r"beside it \(got expand on \['data'\], lists on \['C'\]\); wrap the others in "
        r"unmapped\(\)",
    ):
        compile_body(lambda: train.map(expand(load(3)), C=[1.0, 2.0]))


def test_expand_outside_map_is_rejected() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"expand\(\) passed to task `score` argument `model` outside \.map; use "
        r"`score\.map\(expand\(\.\.\.\)\)`",
    ):
        compile_body(lambda: score(expand(load(3))))


def test_expand_needs_a_ref() -> None:
    with pytest.raises(
        DefinitionError,
        match=r"expand\(\) takes the output of a task inside a pipeline, got list; pass a list "
        r"constant to \.map directly",
    ):
        expand([1, 2])  # type: ignore[arg-type]


# -- Ref misuse --------------------------------------------------------------------------------

_MISUSES = [
    pytest.param(lambda r: bool(r), "cannot test the truth of", id="bool"),
    pytest.param(lambda r: "yes" if r else "no", "cannot test the truth of", id="if"),
    pytest.param(lambda r: [x for x in r], "cannot iterate over", id="iterate"),
    pytest.param(lambda r: max(r), "cannot iterate over", id="max"),
    pytest.param(lambda r: len(r), r"cannot take len\(\) of", id="len"),
    pytest.param(lambda r: r + 1, r"cannot apply `__add__` to", id="add"),
    pytest.param(lambda r: 2 * r, r"cannot apply `__rmul__` to", id="rmul"),
    pytest.param(lambda r: r > 0.5, r"cannot apply `__gt__` to", id="compare"),
    pytest.param(lambda r: -r, r"cannot apply `__neg__` to", id="neg"),
    pytest.param(lambda r: float(r), r"cannot apply `__float__` to", id="float"),
    pytest.param(lambda r: r[0], "cannot index", id="index"),
    pytest.param(lambda r: r["accuracy"], "cannot index", id="key"),
    pytest.param(lambda r: range(r), "cannot use as an integer", id="range"),
    pytest.param(lambda r: 3 in r, r"cannot apply `__contains__` to", id="in"),
]


@pytest.mark.parametrize(("misuse", "what"), _MISUSES)
def test_ref_misuse_inside_a_pipeline_names_the_task(misuse: Any, what: str) -> None:
    def body() -> Any:
        models = train.map([1, 2], C=1.0)
        return misuse(models[1])

    with pytest.raises(
        DefinitionError,
        match=what + r" the output of task `train` \(node `train\[1\]`\) inside a pipeline: it "
        r"is only known when the pipeline runs; .*do this inside a @task that takes it as an "
        r"argument",
    ):
        compile_body(body)


def test_ref_misuse_names_the_output_of_a_tuple_task() -> None:
    def body() -> Any:
        train_rows, test_rows = split(load(4))
        return len(test_rows)

    with pytest.raises(DefinitionError, match=r"of task `split` \(node `split\.1`\)"):
        compile_body(body)


def test_refs_are_hashable_and_comparable() -> None:
    # refs can be dict keys and set members (e.g. ``{ref: name}`` in a pipeline body)
    a, b = Ref("load", None, "load"), Ref("load", None, "load")
    assert a == b and hash(a) == hash(b)
    assert {a: 1}[b] == 1
    assert Ref("split", 0, "split") != Ref("split", 1, "split")
