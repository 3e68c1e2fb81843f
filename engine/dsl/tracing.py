"""Tracing: turning task calls inside a pipeline body into graph nodes.

While a pipeline body runs under :func:`tracing`, a task call records a :class:`NodeSpec`
and returns a :class:`Ref` instead of a value. A ``Ref`` is a promise of a value that
only exists at run time, so every operation that would need the value (truth testing,
arithmetic, iteration, indexing) raises a :class:`DefinitionError` naming the task.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import DefinitionError

if TYPE_CHECKING:
    from .task import TaskDef


@dataclass(frozen=True)
class Ref:
    """The output of a task call inside a pipeline: resolved to a value at run time.

    Attributes:
        node: id of the node that produces the value.
        output: index of the output for a tuple-returning task, ``None`` for the whole value.
        task: the task's name, for messages.
    """

    node: str
    output: int | None = None
    task: str = ""

    @property
    def label(self) -> str:
        return self.node if self.output is None else f"{self.node}.{self.output}"

    def _misuse(self, what: str, hint: str = "") -> DefinitionError:
        return DefinitionError(
            f"{what} the output of task `{self.task}` (node `{self.label}`) inside a pipeline: "
            f"it is only known when the pipeline runs; {hint}do this inside a @task that takes "
            "it as an argument"
        )

    def __bool__(self) -> bool:
        raise self._misuse("cannot test the truth of")

    def __iter__(self) -> Iterator[Any]:
        raise self._misuse(
            "cannot iterate over",
            "to unpack several outputs annotate the task's return as `tuple[A, B]`; to map "
            "over it use `task.map(expand(ref))`; or ",
        )

    def __len__(self) -> int:
        raise self._misuse("cannot take len() of")

    def __getitem__(self, item: Any) -> Any:
        raise self._misuse("cannot index")

    def __index__(self) -> int:
        raise self._misuse("cannot use as an integer")

    def __hash__(self) -> int:
        return hash((self.node, self.output))

    def __reduce__(self) -> Any:
        return (Ref, (self.node, self.output, self.task))


def _arith(name: str) -> Any:
    def method(self: Ref, *args: Any) -> Any:
        raise self._misuse(f"cannot apply `{name}` to")

    method.__name__ = name
    return method


for _name in (
    "__add__",
    "__radd__",
    "__sub__",
    "__rsub__",
    "__mul__",
    "__rmul__",
    "__truediv__",
    "__rtruediv__",
    "__floordiv__",
    "__rfloordiv__",
    "__mod__",
    "__rmod__",
    "__pow__",
    "__rpow__",
    "__neg__",
    "__pos__",
    "__abs__",
    "__lt__",
    "__le__",
    "__gt__",
    "__ge__",
    "__and__",
    "__or__",
    "__xor__",
    "__invert__",
    "__matmul__",
    "__float__",
    "__int__",
    "__contains__",
    "__call__",
):
    setattr(Ref, _name, _arith(_name))


@dataclass(frozen=True)
class unmapped:  # noqa: N801 - reads like a function at the call site, as in Prefect
    """Broadcast ``value`` (even a list) to every element of a ``.map``."""

    value: Any


@dataclass(frozen=True)
class expand:  # noqa: N801
    """Map over a ``Ref`` to a list whose length is only known at run time.

    ``train.map(expand(ref))`` becomes one expander node; its children (``train[0]``,
    ``train[1]``, ...) appear when the run reaches it, each cached on its own.
    """

    ref: Ref

    def __post_init__(self) -> None:
        if not isinstance(self.ref, Ref):
            raise DefinitionError(
                f"expand() takes the output of a task inside a pipeline, got "
                f"{type(self.ref).__name__}; pass a list constant to .map directly"
            )


@dataclass
class NodeSpec:
    """A node as recorded while tracing, before the graph is frozen."""

    id: str
    task: TaskDef[Any, Any]
    args: dict[str, Any]
    n_outputs: int | None
    map_index: int | None = None
    expand_arg: str | None = None


@dataclass
class Trace:
    """Everything one pipeline body recorded."""

    pipeline: str
    nodes: dict[str, NodeSpec] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)
    _taken: set[str] = field(default_factory=set)

    def new_id(self, base: str) -> str:
        """``base``, then ``base_2``, ``base_3``...; never an id handed out before (a task
        may itself be named ``load_2``)."""
        count = self._counts.get(base, 0)
        while True:
            count += 1
            node_id = base if count == 1 else f"{base}_{count}"
            if node_id not in self._taken:
                break
        self._counts[base] = count
        self._taken.add(node_id)
        return node_id

    def add(self, spec: NodeSpec) -> None:
        self.nodes[spec.id] = spec


_current: contextvars.ContextVar[Trace | None] = contextvars.ContextVar(
    "glasspane_trace", default=None
)


def current_trace() -> Trace | None:
    """The trace being recorded, or ``None`` outside a pipeline body."""
    return _current.get()


@contextmanager
def tracing(pipeline: str) -> Iterator[Trace]:
    """Record task calls made in this context into a new :class:`Trace`."""
    trace = Trace(pipeline)
    token = _current.set(trace)
    try:
        yield trace
    finally:
        _current.reset(token)


def find_refs(value: Any) -> list[Ref]:
    """Every :class:`Ref` inside ``value`` (lists, tuples, dicts, sets), in order."""
    found: list[Ref] = []
    _walk(value, found)
    return found


def _walk(value: Any, found: list[Ref]) -> None:
    if isinstance(value, Ref):
        found.append(value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _walk(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(key, found)
            _walk(item, found)


def substitute(value: Any, resolve: Any) -> Any:
    """Copy ``value`` with every :class:`Ref` replaced by ``resolve(ref)``."""
    if isinstance(value, Ref):
        return resolve(value)
    if type(value) in (list, tuple, set, frozenset):
        return type(value)(substitute(item, resolve) for item in value)
    if isinstance(value, tuple) and hasattr(value, "_fields"):  # namedtuple
        return type(value)(*(substitute(item, resolve) for item in value))
    if type(value) is dict:
        return {substitute(k, resolve): substitute(v, resolve) for k, v in value.items()}
    return value


def has_refs(value: Any) -> bool:
    return bool(find_refs(value))


def foreign_container(value: Any) -> type | None:
    """The type of a container that holds a :class:`Ref` but that :func:`substitute` cannot
    rebuild (a subclass of list or dict such as ``OrderedDict``), or ``None``."""
    if isinstance(value, Ref):
        return None
    if type(value) in (list, tuple, set, frozenset) or (
        isinstance(value, tuple) and hasattr(value, "_fields")
    ):
        items: Any = value
    elif type(value) is dict:
        items = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset, dict)):
        return type(value) if find_refs(value) else None
    else:
        return None
    for item in items:
        found = foreign_container(item)
        if found is not None:
            return found
    return None
