"""The two things a pipeline asks of the layers above it: compile it, and run it.

The DSL sits below the graph and the run machinery, so it cannot import them. Instead
``import glasspane`` registers a compiler and a runner here (see ``glasspane/__init__.py``)
before any pipeline can be defined: importing any ``glasspane.*`` module imports the package
first. Each slot holds one callable per process; registering again replaces it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import GlasspaneError

if TYPE_CHECKING:
    from .pipeline import PipelineDef

#: ``compiler(pipeline, validated_params) -> Graph``
Compiler = Callable[["PipelineDef[Any, Any]", dict[str, Any]], Any]
#: ``runner(pipeline, params, **run_options) -> RunResult``
Runner = Callable[..., Any]

_compiler: Compiler | None = None
_runner: Runner | None = None


def set_compiler(compiler: Compiler) -> None:
    """Register what ``PipelineDef.compile`` calls to turn a pipeline into a graph."""
    global _compiler
    _compiler = compiler


def set_runner(runner: Runner) -> None:
    """Register what ``PipelineDef.run`` (and calling a pipeline) calls to run it."""
    global _runner
    _runner = runner


def compiler() -> Compiler:
    """The registered compiler; raises if ``glasspane`` did not finish importing."""
    if _compiler is None:
        raise _unregistered("compile")
    return _compiler


def runner() -> Runner:
    """The registered runner; raises if ``glasspane`` did not finish importing."""
    if _runner is None:
        raise _unregistered("run")
    return _runner


def _unregistered(what: str) -> GlasspaneError:
    return GlasspaneError(
        f"cannot {what} a pipeline: nothing is registered to {what} it, because the `glasspane` "
        "package did not finish importing; `import glasspane` and fix the error it raises"
    )
