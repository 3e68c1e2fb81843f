"""The exceptions glasspane raises.

Every error a user can cause derives from :class:`GlasspaneError` and says what went
wrong, where (pipeline, task, parameter, path) and what to do next. Builtins are mixed
in where natural, so ``except ValueError`` keeps working around glasspane calls.
"""

from __future__ import annotations

from typing import Any


class GlasspaneError(Exception):
    """Root of every error glasspane raises on purpose."""


def describe_validation(exc: Any) -> str:
    """``field: message; ...`` from a pydantic ``ValidationError``, for one-line messages."""
    return "; ".join(
        f"`{'.'.join(str(p) for p in err['loc'])}`: {err['msg']}" for err in exc.errors()
    )


class DefinitionError(GlasspaneError, TypeError):
    """A task or pipeline is defined or called in a way that cannot compile."""


class UserCodeError(DefinitionError):
    """The user's code raised while glasspane ran it to build a pipeline (importing a module,
    running a pipeline body); ``user_traceback`` holds their traceback, without glasspane's
    frames, for the CLI to show above its one-line message."""

    def __init__(self, message: str, user_traceback: str) -> None:
        super().__init__(message)
        self.user_traceback = user_traceback


class ParameterError(GlasspaneError, ValueError):
    """A pipeline parameter is unknown, missing or of the wrong type."""


class InvalidArgument(GlasspaneError, ValueError):
    """A call to glasspane got an argument it cannot use: an unknown run state or lineage
    direction, a limit out of range, a run id that is malformed or already used. The message
    names the argument and the values it takes."""


class ConfigError(GlasspaneError, ValueError):
    """A setting (database URL, artifact root, executor, scheduler address) is unusable."""


class SerializationError(GlasspaneError, TypeError):
    """A task returned a value that cannot be stored."""


class ArtifactError(GlasspaneError, OSError):
    """The artifact store could not read or write an artifact."""


class CorruptedArtifact(ArtifactError):
    """A stored artifact's bytes do not match the digest recorded when it was written."""


class TaskError(GlasspaneError, RuntimeError):
    """A task failed in a way glasspane itself detected (wrong return shape, timeout)."""


class TaskTimeout(TaskError, TimeoutError):
    """A task attempt ran past its ``timeout``."""


class ExecutorError(GlasspaneError, RuntimeError):
    """An executor could not start or reach its cluster."""


class NotFound(GlasspaneError, LookupError):
    """A run, node or pipeline asked for by id does not exist."""


class RunStillActive(GlasspaneError, RuntimeError):
    """An action needs a run to be over (a retry), and it is still queued or running."""


class ScheduleBusy(GlasspaneError, RuntimeError):
    """A run of a schedule was not launched: the schedule already has ``max_active`` runs
    queued or running."""


class GlasspaneWarning(UserWarning):
    """Something glasspane will do differently from what the code asks (for example,
    ``resources=`` ignored by an executor without resources); the CLI prints it as one
    ``glasspane: warning: ...`` line."""


class RunFailed(GlasspaneError, RuntimeError):
    """A run ended in a state other than ``succeeded``; ``result`` holds the full RunResult."""

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result
