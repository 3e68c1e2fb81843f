"""Small value types shared by the layers: artifact descriptors and run states."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Run and task-run states. Terminal states are never left once entered.
#: a run launched in a child process (``Workspace.launch``) that has not taken it over yet
QUEUED = "queued"
PENDING = "pending"
RUNNING = "running"
RETRYING = "retrying"
SUCCEEDED = "succeeded"
FAILED = "failed"
UPSTREAM_FAILED = "upstream_failed"
CANCELLED = "cancelled"
CRASHED = "crashed"
TIMED_OUT = "timed_out"

STATES = (
    QUEUED,
    PENDING,
    RUNNING,
    RETRYING,
    SUCCEEDED,
    FAILED,
    UPSTREAM_FAILED,
    CANCELLED,
    CRASHED,
    TIMED_OUT,
)
TERMINAL_STATES = frozenset({SUCCEEDED, FAILED, UPSTREAM_FAILED, CANCELLED, CRASHED, TIMED_OUT})


@dataclass(frozen=True)
class ArtifactInfo:
    """Where one stored value lives and how to read it back.

    ``content_hash`` identifies the *value* (see :mod:`glasspane.hashing`); ``digest`` is the
    sha256 of the stored bytes and verifies reads. ``uri`` is ``None`` for a value kept in
    memory only (a ``persist=False`` task).
    """

    content_hash: str
    uri: str | None
    digest: str | None
    type_name: str
    materializer: str | None
    size: int
    preview: Any = None

    def to_dict(self) -> dict[str, Any]:
        # not dataclasses.asdict: it deep-copies the preview, and this runs twice per task
        return {
            "content_hash": self.content_hash,
            "uri": self.uri,
            "digest": self.digest,
            "type_name": self.type_name,
            "materializer": self.materializer,
            "size": self.size,
            "preview": self.preview,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactInfo:
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})  # type: ignore[arg-type]
