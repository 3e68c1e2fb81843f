"""Adapters that connect glasspane to the tools a team already uses (trackers, registries,
deploy targets). Each adapter is its own module and imports its third-party package lazily;
each is found through the entry-point group ``glasspane.integrations``, so a third party adds
one by declaring it there (see :mod:`glasspane.tracking`).

Built in: ``memory`` (the Tracker protocol's reference, in this process), ``mlflow``
(``pip install "glasspane[mlflow]"``) and ``wandb`` (``pip install "glasspane[wandb]"``).
"""

from glasspane.tracking import (
    MetricPoint,
    TrackedRun,
    TrackedRunPage,
    Tracker,
    TrackerContext,
    TrackerError,
    TrackerLink,
    TrackerReader,
)

__all__ = [
    "MetricPoint",
    "TrackedRun",
    "TrackedRunPage",
    "Tracker",
    "TrackerContext",
    "TrackerError",
    "TrackerLink",
    "TrackerReader",
]
