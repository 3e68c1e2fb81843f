"""``@pipeline``: a function whose body wires tasks together, compiled to a ``Graph``.

The body runs once per compile, with the *validated* parameter values, under a tracing
context, so ``range(n)`` and ``train.map(tr, C=grid)`` see real values. Calling the
pipeline outside a body runs it with embedded defaults and returns a ``RunResult``.
Compiling and running are done by the layers above, through :mod:`.hooks`.
"""

from __future__ import annotations

import functools
import inspect
import typing
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from ..errors import DefinitionError, ParameterError
from . import hooks
from .tracing import current_trace

if TYPE_CHECKING:
    from ..schedules import Schedule

P = ParamSpec("P")
R = TypeVar("R")

#: Keyword names ``PipelineDef.run`` takes for itself; a pipeline cannot use them as parameters.
RUN_OPTIONS = (
    "executor", "raise_on_failure", "settings", "listeners", "trigger", "workspace",
)  # fmt: skip


class PipelineDef(Generic[P, R]):
    """A decorated pipeline body plus a pydantic model of its parameters.

    Attributes:
        fn: the user's function.
        name: pipeline name (the function's name unless given).
        schedule: when the pipeline runs by itself (a :class:`~glasspane.schedules.Schedule`,
            named after the pipeline unless given a name), or ``None``.
        params_model: pydantic model built from the signature.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        schedule: str | Schedule | None = None,
    ) -> None:
        self.fn = fn
        self.name = name or fn.__name__
        self.signature = inspect.signature(fn)
        self.params_model = _params_model(self.name, fn, self.signature)
        self.schedule = _schedule(self.name, schedule, self.params_model)
        self.ref: str | None = None  # how to import this pipeline again; set by the loader
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"

    # -- parameters --------------------------------------------------------------------------
    def describe_params(self) -> str:
        return describe_params(self.params_model)

    def validate_params(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check names and types; return the validated values (defaults filled in)."""
        return validate_params(self.params_model, self.name, params)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Map a call's positional and keyword arguments to parameter names."""
        if args:
            names = list(self.params_model.model_fields)
            if len(args) > len(names):
                raise ParameterError(
                    f"pipeline `{self.name}` takes {len(names)} parameter"
                    f"{'s' if len(names) != 1 else ''} ({self.describe_params()}) but was "
                    f"given {len(args)} positional arguments; pass parameters by name"
                )
            for name, value in zip(names, args):
                if name in kwargs:
                    raise ParameterError(
                        f"pipeline `{self.name}` got parameter `{name}` both by position and "
                        "by name; pass it once"
                    )
                kwargs[name] = value
        return kwargs

    # -- compiling and running ---------------------------------------------------------------
    def compile(self, **params: Any) -> Any:
        """Validate ``params``, trace the body once and return the frozen ``glasspane.Graph``.

        Raises:
            ParameterError: a parameter is unknown, missing or of the wrong type.
            UserCodeError: the body raised; its traceback is on the error.
            DefinitionError: the body wired its tasks in a way that cannot run.
        """
        values = self.validate_params(params)
        if current_trace() is not None:
            raise DefinitionError(
                f"pipeline `{self.name}` was called inside another pipeline's body; call its "
                "tasks directly instead"
            )
        return hooks.compiler()(self, values)

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Compile and run; returns a ``RunResult``.

        Keyword options (not parameters): ``executor`` (``"inline"``, ``"threads"``,
        ``"dask"`` or ``"tcp://host:port"``), ``raise_on_failure`` (default ``True``:
        a failed run raises :class:`~glasspane.errors.RunFailed`), ``settings``,
        ``listeners`` (objects with ``on_event(event)``: see :mod:`glasspane.listeners`),
        ``trigger``, ``workspace`` (a :class:`~glasspane.workspace.Workspace`; default: the
        one of the loaded settings).
        """
        options = {k: kwargs.pop(k) for k in RUN_OPTIONS if k in kwargs}
        params = self.bind(args, kwargs)
        return hooks.runner()(self, params, **options)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        if current_trace() is not None:
            raise DefinitionError(
                f"pipeline `{self.name}` was called inside another pipeline's body; call its "
                "tasks directly instead"
            )
        return self.run(*args, **kwargs)


def _params_model(name: str, fn: Callable[..., Any], sig: inspect.Signature) -> type[BaseModel]:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # e.g. a return annotation imported under TYPE_CHECKING
        hints = _param_hints(name, fn, sig)
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise DefinitionError(
                f"pipeline `{name}` has `*{pname}`/`**{pname}`; pipeline parameters must be "
                "named, so that runs can be validated, recorded and repeated"
            )
        if pname in RUN_OPTIONS:
            raise DefinitionError(
                f"pipeline `{name}` has a parameter named `{pname}`, which is reserved for run "
                f"options ({', '.join(RUN_OPTIONS)}); rename it"
            )
        if pname == "model_config":  # pydantic would take it as the model's configuration
            raise DefinitionError(
                f"pipeline `{name}` has a parameter named `model_config`, which glasspane "
                "cannot validate; rename it"
            )
        annotation = hints.get(pname, Any)
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[pname] = (annotation, default)
    config = ConfigDict(arbitrary_types_allowed=True, protected_namespaces=())
    try:
        with warnings.catch_warnings():
            # a parameter may be named like a BaseModel method (`json`, `copy`, `schema`): values
            # are read back as instance attributes, which take precedence over the methods
            warnings.filterwarnings("ignore", message=r"Field name .* shadows an attribute")
            return create_model(  # type: ignore[no-any-return, call-overload]
                f"{name}_params", __config__=config, **fields
            )
    except Exception as exc:
        raise DefinitionError(
            f"pipeline `{name}`: cannot build a parameter model from its signature: {exc}"
        ) from exc


def _param_hints(name: str, fn: Callable[..., Any], sig: inspect.Signature) -> dict[str, Any]:
    """Each parameter's annotation, evaluated one by one; raise naming one that does not resolve.

    Typing an unresolvable parameter `Any` would silently skip its validation (and store a
    ``SecretStr`` parameter in clear).
    """
    namespace = {**vars(typing), **getattr(fn, "__globals__", {})}
    hints: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        annotation = param.annotation
        if annotation is inspect.Parameter.empty:
            continue
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)  # noqa: S307 - the user's annotation
            except Exception as exc:
                raise DefinitionError(
                    f"pipeline `{name}`: cannot resolve the annotation `{param.annotation}` of "
                    f"parameter `{pname}` ({type(exc).__name__}: {exc}); import the types used "
                    "in parameter annotations at module level (not under `if TYPE_CHECKING:` or "
                    "inside a function), so that parameters can be validated"
                ) from None
        hints[pname] = annotation
    return hints


def _schedule(
    pipeline: str, schedule: str | Schedule | None, params_model: type[BaseModel]
) -> Schedule | None:
    """``schedule`` as a :class:`Schedule` named after ``pipeline`` (a string is a cron
    expression), checked now so that a bad one fails when the module is imported."""
    if schedule is None:
        return None
    from ..schedules import Schedule  # pipelines without a schedule never load it

    try:
        if isinstance(schedule, str):
            schedule = Schedule(cron=schedule, name=pipeline)
        elif not isinstance(schedule, Schedule):
            raise DefinitionError(
                f"got {type(schedule).__name__} {schedule!r}; pass a cron expression such as "
                '"0 3 * * *" or a glasspane.Schedule'
            )
    except DefinitionError as exc:
        raise DefinitionError(f"pipeline `{pipeline}`: {exc}") from None
    if schedule.name is None:
        schedule = schedule.model_copy(update={"name": pipeline})
    if schedule.after == pipeline:
        raise DefinitionError(
            f"pipeline `{pipeline}`: its schedule runs it after itself, which would never "
            "stop; name another pipeline in `after`"
        )
    try:
        validate_params(params_model, pipeline, schedule.params)
    except ParameterError as exc:
        raise DefinitionError(
            f"pipeline `{pipeline}`: the params of schedule `{schedule.name}` do not fit: {exc}; "
            "set them in `Schedule(params={...})`"
        ) from None
    return schedule


def pipeline(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    schedule: str | Schedule | None = None,
) -> Any:
    """Make ``fn`` a pipeline: ``@pipeline``, ``@pipeline(schedule="0 3 * * *")`` or
    ``@pipeline(schedule=Schedule(every="15m", params={...}))``.

    Raises:
        DefinitionError: naming the pipeline, when the signature cannot be validated or the
            schedule is invalid (a bad cron, unknown params).
    """

    def wrap(f: Callable[P, R]) -> PipelineDef[P, R]:
        return PipelineDef(f, name=name, schedule=schedule)

    return wrap(fn) if fn is not None else wrap


def describe_params(model: type[BaseModel]) -> str:
    """``n_rows: int = 1000, C: float = 1.0``: a parameter model's fields, for messages."""
    parts = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        ann = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
        ann = (ann or str(annotation)).replace("typing.", "")
        parts.append(f"{name}: {ann}" + ("" if field.is_required() else f" = {field.default!r}"))
    return ", ".join(parts) or "no parameters"


def validate_params(
    model: type[BaseModel], pipeline: str, params: dict[str, Any]
) -> dict[str, Any]:
    """Check ``params`` against the parameter ``model`` of pipeline ``pipeline``; return the
    validated values (defaults filled in).

    Raises:
        ParameterError: an unknown name, a missing or invalid value; the message lists the
            parameters the pipeline takes.
    """
    fields = model.model_fields
    unknown = [k for k in params if k not in fields]
    if unknown:
        raise ParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(f'`{u}`' for u in unknown)} for pipeline `{pipeline}`; "
            f"it takes: {describe_params(model)}"
        )
    try:
        validated = model(**params)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            if err["type"] == "missing":
                problems.append(f"`{where}` is required")
            else:
                problems.append(f"`{where}`: {err['msg']} (got {err.get('input')!r})")
        raise ParameterError(
            f"invalid parameter{'s' if len(problems) > 1 else ''} for pipeline "
            f"`{pipeline}`: {'; '.join(problems)}; it takes: {describe_params(model)}"
        ) from None
    return {name: getattr(validated, name) for name in fields}
