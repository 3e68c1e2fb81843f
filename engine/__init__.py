"""glasspane: MLOps pipelines as plain Python, compiled to a DAG, run on Dask.

>>> from glasspane import task, pipeline
>>> @task
... def double(x: int) -> int:
...     return 2 * x
>>> @pipeline
... def demo(x: int = 2):
...     return double(x)
"""

from __future__ import annotations

from typing import Any

from .dsl import hooks as _hooks
from .dsl.pipeline import PipelineDef, pipeline
from .dsl.task import TaskDef, task
from .dsl.tracing import Ref, expand, unmapped
from .errors import (
    ArtifactError,
    ConfigError,
    CorruptedArtifact,
    DefinitionError,
    ExecutorError,
    GlasspaneError,
    GlasspaneWarning,
    InvalidArgument,
    NotFound,
    ParameterError,
    RunFailed,
    SerializationError,
    TaskError,
    TaskTimeout,
    UserCodeError,
)
from .execution.context import (
    TaskContext,
    context,
    get_logger,
    log_artifact,
    log_metric,
    log_param,
)
from .options import TaskOptions

__version__ = "0.1.0"

_LAZY = {
    "RunResult": ("execution.result", "RunResult"),
    "TaskResult": ("execution.result", "TaskResult"),
    "Graph": ("graph", "Graph"),
    "runs": ("api", "runs"),
    "get_run": ("api", "get_run"),
    "retry": ("api", "retry"),
    "follow": ("api", "follow"),
    "cancel": ("api", "cancel"),
    "sweep": ("api", "sweep"),
    "Workspace": ("workspace", "Workspace"),
    "Schedule": ("schedules", "Schedule"),
    "lineage": ("api", "lineage"),
    "clear_cache": ("api", "clear_cache"),
    "register_materializer": ("artifacts", "register_materializer"),
    "register_hasher": ("hashing", "register_hasher"),
    "load_settings": ("config", "load_settings"),
    "register_model": ("registry", "register_model"),
    "load_model": ("registry", "load_model"),
    "deploy": ("serving", "deploy"),
    "deployments": ("serving", "deployments"),
    "stop_deployment": ("serving", "stop_deployment"),
}


def __getattr__(name: str) -> Any:
    # the run machinery (SQLAlchemy, fsspec, ...) loads on first use: `import glasspane` stays fast
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(f".{module}", __name__), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'glasspane' has no attribute {name!r}")


__all__ = [
    "ArtifactError",
    "ConfigError",
    "CorruptedArtifact",
    "DefinitionError",
    "ExecutorError",
    "GlasspaneError",
    "GlasspaneWarning",
    "Graph",
    "Workspace",
    "cancel",
    "follow",
    "sweep",
    "InvalidArgument",
    "NotFound",
    "ParameterError",
    "PipelineDef",
    "Ref",
    "RunFailed",
    "RunResult",
    "Schedule",
    "SerializationError",
    "TaskContext",
    "TaskDef",
    "TaskError",
    "TaskOptions",
    "TaskResult",
    "TaskTimeout",
    "UserCodeError",
    "clear_cache",
    "context",
    "deploy",
    "deployments",
    "expand",
    "get_logger",
    "load_model",
    "log_artifact",
    "get_run",
    "lineage",
    "load_settings",
    "log_metric",
    "log_param",
    "register_model",
    "pipeline",
    "register_hasher",
    "register_materializer",
    "retry",
    "runs",
    "stop_deployment",
    "task",
    "unmapped",
]


# The DSL cannot import the layers that compile and run a pipeline; the facade lends them to
# it here, so `pipe.compile()`, `pipe.run()` and `pipe()` work whichever module was imported
# first (importing any glasspane module runs this file first). Both import lazily, to keep
# `import glasspane` fast.
def _compile(pipeline: PipelineDef[Any, Any], params: dict[str, Any]) -> Any:
    from .graph import compile_pipeline

    return compile_pipeline(pipeline, params)


def _run(pipeline: PipelineDef[Any, Any], params: dict[str, Any], **options: Any) -> Any:
    from .api import run_pipeline

    return run_pipeline(pipeline, params, **options)


_hooks.set_compiler(_compile)
_hooks.set_runner(_run)
