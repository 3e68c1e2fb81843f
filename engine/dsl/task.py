"""``@task``: a plain function that becomes a graph node when called inside a pipeline.

Outside a pipeline body a :class:`TaskDef` is just its function: calling it runs it.
Inside one it records a node and returns a :class:`~glasspane.dsl.tracing.Ref`, or a tuple
of refs for a task annotated to return a fixed-length ``tuple[...]``.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, Generic, NamedTuple, ParamSpec, TypeVar, overload

from ..errors import DefinitionError
from ..options import TaskOptions, make_options
from .tracing import NodeSpec, Ref, Trace, current_trace, expand, find_refs, unmapped

P = ParamSpec("P")
R = TypeVar("R")


def _tuple_arity(fn: Callable[..., Any]) -> int | None:
    """How many outputs a ``-> tuple[A, B]`` annotation declares; ``None`` for one value."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:  # unresolvable forward references: fall back to the raw annotation
        hint = inspect.signature(fn).return_annotation
        if isinstance(hint, str):
            text = hint.replace(" ", "")
            if text.lower().startswith(("tuple[", "typing.tuple[")) and "..." not in text:
                inner = text[text.index("[") + 1 : -1]
                depth, parts = 0, 1
                for ch in inner:
                    depth += ch == "["
                    depth -= ch == "]"
                    parts += ch == "," and depth == 0
                return parts if inner and inner != "()" else None
            return None
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if args and Ellipsis not in args and args != ((),):
            return len(args)
    return None


class _BindPlan(NamedTuple):
    """What :meth:`TaskDef._bind` needs to bind a call without ``inspect.Signature.bind``,
    which costs more than the rest of recording a node."""

    names: tuple[str, ...]  # every parameter, in order
    n_positional: int  # how many may be given by position
    positional_only: frozenset[str]
    defaults: dict[str, Any]


def _bind_plan(signature: inspect.Signature) -> _BindPlan | None:
    """The plan for a signature without ``*args`` or ``**kwargs``, else ``None``."""
    params = list(signature.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return _BindPlan(
        tuple(p.name for p in params),
        sum(p.kind in positional for p in params),
        frozenset(p.name for p in params if p.kind is p.POSITIONAL_ONLY),
        {p.name: p.default for p in params if p.default is not p.empty},
    )


def _fast_bind(
    plan: _BindPlan, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any] | None:
    """The call's arguments by name, defaults filled in, in parameter order (as
    ``Signature.bind`` then ``apply_defaults`` give them); ``None`` if the call does not fit
    the signature, for ``Signature.bind`` to word the error."""
    if len(args) > plan.n_positional:
        return None
    bound = dict(zip(plan.names, args))
    used = 0
    for name in plan.names[len(args) :]:
        if name in kwargs and name not in plan.positional_only:
            bound[name] = kwargs[name]
            used += 1
        elif name in plan.defaults:
            bound[name] = plan.defaults[name]
        else:
            return None  # missing
    return bound if used == len(kwargs) else None  # else an unknown or repeated keyword


def _unknown_keywords(signature: inspect.Signature, kwargs: dict[str, Any]) -> str | None:
    """Name the keywords the function does not take (a typo in ``alpah=`` is reported as
    itself, not as ``alpha`` missing), with the closest parameter name."""
    params = signature.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    takes = [n for n, p in params.items() if p.kind is not p.POSITIONAL_ONLY]
    unknown = [name for name in kwargs if name not in params]
    if not unknown:
        return None
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, takes, n=1)
        parts.append(f"`{name}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
    s = "s" if len(unknown) > 1 else ""
    return f"unexpected keyword argument{s} {', '.join(parts)}"


class TaskDef(Generic[P, R]):
    """A decorated function plus its :class:`TaskOptions`.

    Attributes:
        fn: the user's function, unchanged.
        options: validated options.
        name: display name and node-id prefix.
        identity: ``module.qualname``, part of every cache key.
        n_outputs: number of outputs for a tuple-annotated return, else ``None``.
    """

    def __init__(self, fn: Callable[P, R], options: TaskOptions) -> None:
        if not callable(fn):
            raise DefinitionError(f"@task needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.options = options
        self.name: str = options.name or str(getattr(fn, "__name__", "task"))
        self.identity = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', self.name)}"
        self.signature = inspect.signature(fn)
        self._bind_plan = _bind_plan(self.signature)
        self.n_outputs = _tuple_arity(fn)
        self._code_hash: str | None = None
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<task {self.name}>"

    # -- pickling: ship the function and options, not cached state ---------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("signature", None)
        state.pop("_bind_plan", None)
        state.pop("__wrapped__", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.signature = inspect.signature(self.fn)
        self._bind_plan = _bind_plan(self.signature)
        self.__wrapped__ = self.fn

    @property
    def code_hash(self) -> str:
        """``version`` if given, else a hash of the function's source."""
        if self._code_hash is None:
            from ..fingerprint import code_hash

            self._code_hash = code_hash(self.fn)
        return self._code_hash

    @property
    def cache_version(self) -> str:
        """``v:<version>`` if ``version=`` is given, else ``c:<code fingerprint>``: the task's
        source and the user code and module-level values it reads (see
        :mod:`glasspane.fingerprint`), looked at anew on every access."""
        if self.options.version:
            return f"v:{self.options.version}"
        from ..fingerprint import code_fingerprint

        return f"c:{code_fingerprint(self.fn)}"

    def with_options(self, **changes: Any) -> TaskDef[P, R]:
        """A copy of this task with some options changed (same function)."""
        return TaskDef(self.fn, make_options(f"task `{self.name}`", self.options, **changes))

    # -- calling ---------------------------------------------------------------------------------
    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        trace = current_trace()
        if trace is None:
            for value in (*args, *kwargs.values()):
                if find_refs(value):
                    raise DefinitionError(
                        f"task `{self.name}` was given the output of another task outside a "
                        "pipeline; call it inside a @pipeline body, or pass a plain value"
                    )
            return self.fn(*args, **kwargs)
        bound = self._bind(args, kwargs, "")
        node_id = trace.new_id(self.name)
        return self._record(trace, node_id, bound, None)  # type: ignore[return-value]

    def map(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task once per element of the list arguments, inside a pipeline.

        Lists and tuples (constants, or the result of another ``.map``) are mapped over
        element-wise and must have equal lengths; every other argument (a ``Ref``, a
        scalar, ``unmapped(x)``) is passed to every call. ``expand(ref)`` maps over a list
        only known at run time. Returns a list of refs (or one ref for ``expand``).
        """
        trace = current_trace()
        if trace is None:
            raise DefinitionError(
                f"`{self.name}.map(...)` can only be used inside a @pipeline body; "
                f"outside one, call `{self.name}` in a loop"
            )
        bound = self._bind(args, kwargs, ".map")
        dynamic = [name for name, value in bound.items() if isinstance(value, expand)]
        mapped = {
            name: value
            for name, value in bound.items()
            if isinstance(value, (list, tuple)) and name not in dynamic
        }
        if dynamic:
            if len(dynamic) > 1 or mapped:
                raise DefinitionError(
                    f"`{self.name}.map` can expand only one argument at run time and map no "
                    f"list constants beside it (got expand on {dynamic}, lists on "
                    f"{sorted(mapped)}); wrap the others in unmapped()"
                )
            arg = dynamic[0]
            args_ = {k: (v.value if isinstance(v, unmapped) else v) for k, v in bound.items()}
            args_[arg] = bound[arg].ref
            node_id = trace.new_id(self.name)
            spec = NodeSpec(node_id, self, args_, None, None, expand_arg=arg)
            trace.add(spec)
            return Ref(node_id, None, self.name)
        if not mapped:
            kinds = ", ".join(f"`{k}`: {type(v).__name__}" for k, v in bound.items())
            raise DefinitionError(
                f"`{self.name}.map` needs at least one list or tuple argument to map over "
                f"(got {kinds or 'no arguments'}); pass a list, or use expand(ref) for a "
                "task output whose length is known only at run time"
            )
        lengths = {name: len(value) for name, value in mapped.items()}
        if len(set(lengths.values())) > 1:
            detail = ", ".join(f"`{k}` has {n}" for k, n in lengths.items())
            raise DefinitionError(
                f"`{self.name}.map` got lists of unequal lengths ({detail}); pass lists of the "
                "same length, or wrap the one to broadcast in unmapped()"
            )
        base = trace.new_id(self.name)
        shared = {k: (v.value if isinstance(v, unmapped) else v) for k, v in bound.items()}
        results = []
        for i in range(next(iter(lengths.values()))):
            args_i = shared.copy()  # keeps the parameter order
            for name, values in mapped.items():
                value = values[i]
                args_i[name] = value.value if isinstance(value, unmapped) else value
            results.append(self._record(trace, f"{base}[{i}]", args_i, i))
        return results

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], how: str) -> dict[str, Any]:
        if self._bind_plan is not None:
            fast = _fast_bind(self._bind_plan, args, kwargs)
            if fast is not None:
                return fast
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise DefinitionError(
                f"task `{self.name}{how}` called with arguments that do not match "
                f"`{self.name}{self.signature}`: {_unknown_keywords(self.signature, kwargs) or exc}"
            ) from None
        bound.apply_defaults()
        return dict(bound.arguments)

    def _record(
        self, trace: Trace, node_id: str, args: dict[str, Any], map_index: int | None
    ) -> Ref | tuple[Ref, ...]:
        for name, value in args.items():
            if isinstance(value, expand):
                raise DefinitionError(
                    f"expand() passed to task `{self.name}` argument `{name}` outside .map; "
                    f"use `{self.name}.map(expand(...))`"
                )
        trace.add(NodeSpec(node_id, self, args, self.n_outputs, map_index))
        if self.n_outputs is None:
            return Ref(node_id, None, self.name)
        return tuple(Ref(node_id, i, self.name) for i in range(self.n_outputs))


@overload
def task(fn: Callable[P, R], /) -> TaskDef[P, R]: ...
@overload
def task(fn: None = None, /, **options: Any) -> Callable[[Callable[P, R]], TaskDef[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make ``fn`` a task: ``@task`` or ``@task(retries=2, timeout=60, cache=False, ...)``.

    See :class:`~glasspane.options.TaskOptions` for every option.
    """

    def wrap(f: Callable[P, R]) -> TaskDef[P, R]:
        name = options.get("name") or getattr(f, "__name__", "task")
        return TaskDef(f, make_options(f"task `{name}`", None, **options))

    if fn is not None:
        if options:
            raise DefinitionError("use @task(...) with keyword options only")
        return wrap(fn)
    return wrap
