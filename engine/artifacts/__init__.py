"""Artifacts: the content-addressed store of task outputs and the materializers behind it.

:class:`ArtifactStore` keeps each value once, by content hash, under a local directory or
any fsspec URL; materializers decide how a value of a given type becomes bytes.
:func:`unpickle` is ``pickle.loads`` for any thread: the imports it makes take part in no
import lock cycle (see :mod:`glasspane.artifacts.loading`).
"""

from .loading import unpickle
from .materializers import (
    Materializer,
    dump,
    get_materializer,
    materializer_for,
    preview,
    register_materializer,
    type_name,
)
from .store import ArtifactStore

__all__ = [
    "ArtifactStore",
    "Materializer",
    "dump",
    "get_materializer",
    "materializer_for",
    "preview",
    "register_materializer",
    "type_name",
    "unpickle",
]
