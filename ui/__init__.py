"""The glasspane web UI: a Starlette app serving the runs, graphs and lineage the engine records.

``create_app(workspace)`` (:mod:`glasspane.ui.app`) builds it; ``glasspane ui``
(:mod:`glasspane.ui.cli`) serves it. Importing this package imports nothing else, so the
rendering helpers (``glasspane.ui.render``) load on their own.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module 'glasspane.ui' has no attribute {name!r}")
