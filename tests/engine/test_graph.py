"""The compiled graph: immutable, edges labelled by argument, layered, versioned, JSON-able."""

from __future__ import annotations

import collections
import gc
import json
from typing import Any

import networkx as nx
import pytest

from glasspane import DefinitionError, Graph, Ref, UserCodeError, pipeline, task
from glasspane.dsl.task import TaskDef
from glasspane.graph import Node


@task
def load(n_rows: int) -> list[int]:
    return list(range(n_rows))


@task
def split(rows: list[int], test_size: float = 0.25) -> tuple[list[int], list[int]]:
    cut = int(len(rows) * (1 - test_size))
    return rows[:cut], rows[cut:]


@task(retries=2, tags=("gpu",))
def train(train_rows: list[int], C: float) -> float:  # noqa: N803 - sklearn's name
    return C * len(train_rows)


@task
def best(models: list[float], test_rows: list[int]) -> float:
    return max(models)


@pipeline
def retrain(n_rows: int = 8, grid: list[float] = [0.1, 1.0]):  # noqa: B006 - never mutated
    rows = load(n_rows)
    tr, te = split(rows)
    models = train.map(tr, C=grid)
    return best(models, te)


@pytest.fixture
def graph() -> Graph:
    return retrain.compile()


# -- structure ---------------------------------------------------------------------------------


def test_node_ids_in_trace_order(graph: Graph) -> None:
    assert list(graph.nodes) == ["load", "split", "train[0]", "train[1]", "best"]
    assert [node.id for node in graph] == list(graph.nodes)
    assert len(graph) == 5
    assert graph["split"].n_outputs == 2
    assert graph["split"].output_names == ["0", "1"]
    assert graph["load"].output_names == ["0"]


def test_upstream_in_first_use_order(graph: Graph) -> None:
    assert graph["load"].upstream == ()
    assert graph["split"].upstream == ("load",)
    assert graph["train[1]"].upstream == ("split",)
    assert graph["best"].upstream == ("train[0]", "train[1]", "split")


def test_edges_are_labelled_with_argument_names(graph: Graph) -> None:
    edges = {(u, v): data["args"] for u, v, data in graph.dag.edges(data=True)}
    assert edges == {
        ("load", "split"): ["rows"],
        ("split", "train[0]"): ["train_rows"],
        ("split", "train[1]"): ["train_rows"],
        ("train[0]", "best"): ["models"],
        ("train[1]", "best"): ["models"],
        ("split", "best"): ["test_rows"],
    }


def test_one_upstream_feeding_two_arguments_is_one_edge_with_both_labels() -> None:
    @task
    def combine(left: list[int], right: list[int]) -> int:
        return len(left) + len(right)

    @pipeline
    def twice():
        rows = load(3)
        return combine(rows, right=rows)

    graph = twice.compile()
    assert graph.dag.edges["load", "combine"]["args"] == ["left", "right"]


def test_refs_nested_in_containers_become_edges() -> None:
    @task
    def report(summary: dict[str, Any]) -> str:
        return str(summary)

    @pipeline
    def nested():
        m1, m2 = train([1], 0.1), train([2], 1.0)
        te = load(2)
        chosen = best([m1, m2], te)
        return report({"best": chosen, "all": (m1, m2), "n": 2})

    graph = nested.compile()
    assert set(graph.dag.in_edges("best")) == {
        ("train", "best"),
        ("train_2", "best"),
        ("load", "best"),
    }
    assert graph.dag.edges["train_2", "best"]["args"] == ["models"]
    assert set(graph.dag.predecessors("report")) == {"best", "train", "train_2"}
    assert graph["report"].upstream == ("best", "train", "train_2")


def test_layers_group_nodes_by_generation(graph: Graph) -> None:
    assert graph.layers() == [["load"], ["split"], ["train[0]", "train[1]"], ["best"]]


def test_downstream_and_output_refs(graph: Graph) -> None:
    assert graph.downstream("split") == {"train[0]", "train[1]", "best"}
    assert graph.downstream("best") == set()
    assert [ref.node for ref in graph.output_refs()] == ["best"]


# -- immutability ------------------------------------------------------------------------------


def test_dag_is_frozen(graph: Graph) -> None:
    assert nx.is_frozen(graph.dag)
    with pytest.raises(nx.NetworkXError, match="Frozen graph can't be modified"):
        graph.dag.add_node("extra")
    with pytest.raises(nx.NetworkXError, match="Frozen graph can't be modified"):
        graph.dag.add_edge("best", "load")
    with pytest.raises(nx.NetworkXError, match="Frozen graph can't be modified"):
        graph.dag.remove_node("load")
    assert list(graph.dag.nodes) == list(graph.nodes)


def test_nodes_params_and_args_are_read_only(graph: Graph) -> None:
    with pytest.raises(TypeError):
        graph.nodes["extra"] = graph["load"]  # type: ignore[index]
    with pytest.raises(TypeError):
        graph.params["n_rows"] = 3  # type: ignore[index]
    with pytest.raises(TypeError):
        graph["load"].args["n_rows"] = 3  # type: ignore[index]
    with pytest.raises(AttributeError):
        graph["load"].id = "other"  # type: ignore[misc]
    assert graph["load"].args["n_rows"] == 8


# -- version hash ------------------------------------------------------------------------------


def test_version_hash_ignores_constants(graph: Graph) -> None:
    other = retrain.compile(n_rows=1000, grid=[5.0, 50.0])
    assert other.version_hash == graph.version_hash
    assert other["load"].args["n_rows"] == 1000
    assert len(graph.version_hash) == 64


def test_version_hash_is_stable_across_compiles(graph: Graph) -> None:
    assert retrain.compile().version_hash == graph.version_hash


def test_version_hash_changes_with_the_shape(graph: Graph) -> None:
    wider = retrain.compile(grid=[0.1, 1.0, 10.0])
    assert len(wider) == 6
    assert wider.version_hash != graph.version_hash


def _pipeline_around(fit: TaskDef[Any, Any]) -> Graph:
    @pipeline
    def wrapper():
        return fit(load(3))

    return wrapper.compile()


def _task_from_source(body: str) -> TaskDef[Any, Any]:
    # no source file: the code hash comes from the bytecode, as for code typed into a REPL
    namespace: dict[str, Any] = {"__name__": "gp_versioned"}
    exec(compile(f"def fit(rows):\n    {body}\n", "<gp-test>", "exec"), namespace)
    return task(namespace["fit"])


def test_version_hash_changes_when_a_tasks_code_changes() -> None:
    first = _task_from_source("return len(rows)")
    same = _task_from_source("return len(rows)")
    changed = _task_from_source("return 2 * len(rows)")
    assert first.identity == changed.identity == "gp_versioned.fit"
    assert _pipeline_around(first).version_hash == _pipeline_around(same).version_hash
    assert _pipeline_around(first).version_hash != _pipeline_around(changed).version_hash


def test_version_hash_follows_the_version_option_instead_of_code() -> None:
    v1 = _task_from_source("return len(rows)").with_options(version="1")
    v1_new_code = _task_from_source("return 2 * len(rows)").with_options(version="1")
    v2 = _task_from_source("return len(rows)").with_options(version="2")
    assert _pipeline_around(v1).version_hash == _pipeline_around(v1_new_code).version_hash
    assert _pipeline_around(v1).version_hash != _pipeline_around(v2).version_hash


def test_version_hash_changes_with_the_wiring() -> None:
    @pipeline
    def wrapper():
        rows = load(3)
        tr, te = split(rows)
        return best([train(tr, 1.0)], te)

    first = wrapper.compile()

    @pipeline  # noqa: F811 - same pipeline name, other wiring
    def wrapper():  # type: ignore[no-redef]
        rows = load(3)
        tr, te = split(rows)
        return best([train(te, 1.0)], tr)

    swapped = wrapper.compile()
    assert list(swapped.nodes) == list(first.nodes)
    assert swapped.version_hash != first.version_hash


def test_version_hash_value_is_pinned() -> None:
    # stored in the metadata DB: the same pipeline must hash the same in every release
    namespace: dict[str, Any] = {"__name__": "gp_pinned"}
    source = (
        "def load(n):\n    return list(range(n))\n"
        "def split(rows) -> tuple[list, list]:\n    return rows[:1], rows[1:]\n"
        "def fit(rows, c=1.0):\n    return c\n"
        "def best(models, rows):\n    return max(models)\n"
    )
    exec(compile(source, "<gp-pinned>", "exec"), namespace)
    load_, split_, fit, best_ = (
        task(version="1")(namespace[n]) for n in ("load", "split", "fit", "best")
    )

    @pipeline
    def pinned(n: int = 4):
        tr, te = split_(load_(n))
        models = fit.map(tr, c=[0.1, 1.0])
        return {"best": best_(models, rows=te), "split": (tr, te)}

    graph = pinned.compile()
    assert graph.version_hash == "0328baf32abe643753ad5e19a14bcfe47af8e50b1658c424ca4b1b3c9c33fa8c"
    assert graph.to_json()["edges"] == [
        {"source": "load", "target": "split", "args": ["rows"], "outputs": [None]},
        {"source": "split", "target": "fit[0]", "args": ["rows"], "outputs": [0]},
        {"source": "split", "target": "fit[1]", "args": ["rows"], "outputs": [0]},
        {"source": "split", "target": "best", "args": ["rows"], "outputs": [1]},
        {"source": "fit[0]", "target": "best", "args": ["models"], "outputs": [None]},
        {"source": "fit[1]", "target": "best", "args": ["models"], "outputs": [None]},
    ]


# -- JSON --------------------------------------------------------------------------------------


def test_to_json_is_serialisable_and_complete(graph: Graph) -> None:
    data = json.loads(json.dumps(graph.to_json()))
    assert data["pipeline"] == "retrain"
    assert data["version"] == graph.version_hash
    assert [n["id"] for n in data["nodes"]] == list(graph.nodes)
    assert data["layers"] == graph.layers()
    assert data["output"] == ["best"]
    edge = {"source": "split", "target": "best", "args": ["test_rows"], "outputs": [1]}
    assert edge in data["edges"]
    assert len(data["edges"]) == 6
    train0 = next(n for n in data["nodes"] if n["id"] == "train[0]")
    assert train0 == {
        "id": "train[0]",
        "task": "train",
        "identity": f"{__name__}.train",
        "outputs": None,
        "map_index": 0,
        "expand": None,
        "code": graph["train[0]"].cache_version,
        "args": ["train_rows", "C"],
        "cache": True,
        "persist": True,
        "retries": 2,
        "timeout": None,
        "tags": ["gpu"],
    }


def test_to_json_leaves_constants_out() -> None:
    graph = retrain.compile(n_rows=123456789)
    assert "123456789" not in json.dumps(graph.to_json())


# -- validation --------------------------------------------------------------------------------


@task
def name_of(n: int) -> str:
    return str(n)


@task
def double(x: int) -> int:
    return 2 * x


@task
def half(x: float) -> float:
    return x / 2


def test_edge_type_mismatch_is_a_definition_error() -> None:
    @pipeline
    def mistyped():
        return double(name_of(3))

    with pytest.raises(
        DefinitionError,
        match=r"pipeline `mistyped`: task `double` argument `x` expects int but `name_of` "
        r"returns str; fix the annotation or the wiring",
    ):
        mistyped.compile()


def test_edge_type_mismatch_on_a_tuple_output() -> None:
    @task
    def measure(rows: list[int]) -> tuple[int, str]:
        return len(rows), "rows"

    @pipeline
    def mistyped():
        size, unit = measure(load(4))
        return double(size), double(unit)

    with pytest.raises(
        DefinitionError,
        match=r"task `double_2` argument `x` expects int but `measure\.1` returns str",
    ):
        mistyped.compile()


def test_compatible_edge_types_compile() -> None:
    @pipeline
    def fine():
        return half(double(3))  # an int where a float is expected is fine

    assert list(fine.compile().nodes) == ["double", "half"]


def test_unannotated_and_generic_edges_are_not_checked() -> None:
    @task
    def anything(x):
        return x

    @task
    def listy(values: list[int]) -> int:
        return len(values)

    @pipeline
    def loose():
        return listy(anything(name_of(1))), double(anything(2))

    assert len(loose.compile()) == 5


def test_an_argument_annotated_any_takes_any_output() -> None:
    @task
    def show(value: Any) -> str:
        return str(value)

    @pipeline
    def shown():
        return show(double(3)), show(name_of(1))

    assert len(shown.compile()) == 4


def test_refs_in_plain_containers_and_namedtuples_compile() -> None:
    pair = collections.namedtuple("pair", "rows test")

    @task
    def report(summary: Any) -> str:
        return str(summary)

    @pipeline
    def nested():
        rows = load(3)
        return report({"data": pair(rows, {1: (rows,)}), "sets": {frozenset([rows])}})

    assert nested.compile()["report"].upstream == ("load",)


class Rows(list):  # type: ignore[type-arg]
    """A list subclass: ``substitute`` rebuilds only plain containers."""


@pytest.mark.parametrize(
    ("container", "name"),
    [
        pytest.param(lambda ref: collections.OrderedDict(rows=ref), "OrderedDict", id="ordered"),
        pytest.param(
            lambda ref: collections.defaultdict(list, rows=[ref]), "defaultdict", id="defaultdict"
        ),
        pytest.param(lambda ref: {"deep": [Rows([ref])]}, "Rows", id="list-subclass"),
    ],
)
def test_refs_in_containers_that_cannot_be_filled_in_are_rejected(
    container: Any, name: str
) -> None:
    @task
    def report(summary: Any) -> str:
        return str(summary)

    @pipeline
    def as_argument():
        return report(container(load(3)))

    @pipeline
    def as_output():
        return container(load(3))

    with pytest.raises(
        DefinitionError,
        match=rf"pipeline `as_argument`: argument `summary` of task `report` holds the output of "
        rf"a task inside a value of type `{name}`, where it would not be filled in at run time; "
        rf"use a plain list, tuple, dict or set \(or a namedtuple\), or build the `{name}` "
        r"inside a task",
    ):
        as_argument.compile()
    with pytest.raises(
        DefinitionError,
        match=rf"pipeline `as_output`: the return value holds the output .*`{name}`",
    ):
        as_output.compile()


# -- views computed without networkx -----------------------------------------------------------


def test_layers_downstream_and_edges_agree_with_networkx() -> None:
    @task
    def pair(left, right) -> tuple[int, int]:  # type: ignore[no-untyped-def]  # noqa: ANN001
        return 1, 2

    @pipeline
    def tangled():
        rows = load(4)
        a, b = pair(rows, {"x": [rows, rows]})
        c, d = pair(b, a)
        models = train.map(rows, C=[0.1, 1.0, 2.0])
        late = best([models[2], d, models[0]], test_rows=c)
        return {"late": late, "first": pair(late, rows)}

    graph = tangled.compile()
    dag = graph.dag
    assert graph.layers() == [list(layer) for layer in nx.topological_generations(dag)]
    for node_id in graph.nodes:
        assert graph.downstream(node_id) == nx.descendants(dag, node_id)
    link = nx.node_link_data(dag, edges="edges")
    assert [
        {"source": e["source"], "target": e["target"], "args": e["args"]}
        for e in graph.to_json()["edges"]
    ] == [{"source": e["source"], "target": e["target"], "args": e["args"]} for e in link["edges"]]


def _hand_built(*wiring: tuple[str, str | None]) -> Graph:
    """A graph made without a trace: node ``id`` reads node ``reads`` (if any)."""
    nodes = {}
    for node_id, reads in wiring:
        if reads is None:
            nodes[node_id] = Node(node_id, load, {"n_rows": 1})
            continue
        ref = Ref(reads, None, "load")
        nodes[node_id] = Node(
            node_id, load, {"n_rows": ref}, upstream=(reads,), refs={"n_rows": (ref,)}
        )
    return Graph("by_hand", nodes, None, {})


def test_a_hand_built_graph_with_a_cycle_is_rejected() -> None:
    graph = _hand_built(("a", "b"), ("b", "a"))
    with pytest.raises(DefinitionError, match=r"pipeline `by_hand` has a cycle: \[\('a', 'b'\)"):
        graph.validate()
    with pytest.raises(nx.NetworkXUnfeasible):
        graph.layers()
    assert graph.downstream("a") == nx.descendants(graph.dag, "a") == {"b"}


def test_a_hand_built_graph_read_out_of_order_is_valid() -> None:
    graph = _hand_built(("b", "a"), ("a", "c"), ("c", "c2"), ("c2", None), ("e", "c2"))
    graph.validate()
    assert graph.layers() == [list(layer) for layer in nx.topological_generations(graph.dag)]
    assert graph.layers() == [["c2"], ["c", "e"], ["a"], ["b"]]
    assert graph.downstream("c2") == {"c", "a", "b", "e"}


def test_views_of_a_hand_built_graph_with_an_unknown_node_agree_with_networkx() -> None:
    graph = _hand_built(("b", "a"), ("a", "x"), ("c", "x"))
    assert list(graph.dag.nodes) == ["b", "a", "x", "c"]
    assert graph.layers() == [list(layer) for layer in nx.topological_generations(graph.dag)]
    assert graph.downstream("x") == {"a", "b", "c"}
    assert [(e["source"], e["target"]) for e in graph.to_json()["edges"]] == list(graph.dag.edges)


def test_downstream_of_an_unknown_node_raises_as_networkx_does(graph: Graph) -> None:
    with pytest.raises(nx.NetworkXError, match="The node nope is not in the"):
        graph.downstream("nope")


def test_compiling_leaves_the_garbage_collector_as_it_was() -> None:
    @pipeline
    def broken():
        load(1)
        raise RuntimeError("boom")

    assert gc.isenabled()
    retrain.compile()
    with pytest.raises(UserCodeError):
        broken.compile()
    assert gc.isenabled()
    gc.disable()
    try:
        graph = retrain.compile()
        assert graph.version_hash and graph.to_json()
        assert not gc.isenabled()
    finally:
        gc.enable()
