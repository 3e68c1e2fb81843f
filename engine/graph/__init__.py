"""The compiled pipeline: an immutable, validated DAG of task calls.

``compile_pipeline`` traces a pipeline body into a :class:`Graph` of :class:`Node` s;
the graph answers the structural questions (layers, downstream nodes, version hash, JSON)
without I/O, and imports ``networkx`` only when its ``dag`` view is asked for.
"""

from __future__ import annotations

from .compile import compile_pipeline, freeze_trace
from .dag import Graph
from .gc_pause import gc_paused
from .node import Node

__all__ = ["Graph", "Node", "compile_pipeline", "freeze_trace", "gc_paused"]
