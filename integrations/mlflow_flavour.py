"""A Python model saved in MLflow's model format with the flavour that fits it: a scikit-learn
estimator (anything whose class derives from one, pipelines included) with
``mlflow.sklearn``, anything else with a ``predict`` method as a ``pyfunc`` model wrapping it
(:class:`~glasspane.integrations.mlflow_pyfunc.PredictModel`).

Either way the saved folder loads back with ``mlflow.pyfunc.load_model`` (and the sklearn one
with ``mlflow.sklearn.load_model``). The MLflow tracker logs registered models with it, and a
deploy target may save a model with it too. A pyfunc model is pickled (cloudpickle) together
with its wrapper, so the model's class must be importable where it is loaded (and, as with any
pickle, load only models you trust); it has no signature, so MLflow passes inputs as they come.
The requirements saved with a model are the flavour's own and the pinned distributions that
provide the model's class and its bases.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from glasspane.errors import InvalidArgument

SKLEARN = "sklearn"
PYFUNC = "pyfunc"


def flavour_of(model: Any) -> str:
    """``"sklearn"`` for a scikit-learn estimator, else ``"pyfunc"`` (without importing
    scikit-learn)."""
    for cls in type(model).__mro__:
        if cls.__module__.split(".", 1)[0] == "sklearn":
            return SKLEARN
    return PYFUNC


def save_model(model: Any, path: str | Path, mlflow_model: Any = None) -> str:
    """Save ``model`` in MLflow's format into folder ``path`` (which must not exist yet) with
    the flavour :func:`flavour_of` picks; the flavour.

    Args:
        model: A scikit-learn estimator, or any object with a ``predict(inputs)`` method.
        path: The folder to create.
        mlflow_model: An ``mlflow.models.Model`` to save into (MLflow fills in the rest), e.g.
            one naming the logged model and the run it belongs to.

    Raises:
        InvalidArgument: ``model`` is no scikit-learn estimator and has no ``predict``.
    """
    flavour = flavour_of(model)
    if flavour == SKLEARN:
        import mlflow.sklearn

        needs = requirements_of(model, mlflow.sklearn.get_default_pip_requirements())
        mlflow.sklearn.save_model(
            model, str(path), mlflow_model=mlflow_model, pip_requirements=needs
        )
        return flavour
    if not callable(getattr(model, "predict", None)):
        raise InvalidArgument(
            f"a `{type(model).__name__}` cannot be saved as an MLflow model: it is no "
            "scikit-learn estimator and has no `predict(inputs)` method; register a model "
            "that predicts, or wrap it in a class with such a method"
        )
    from importlib.metadata import version

    import mlflow.pyfunc

    from .mlflow_pyfunc import PredictModel

    # the wrapper's module is glasspane's: it must be installed where the model is loaded
    needs = [*mlflow.pyfunc.get_default_pip_requirements(), f"glasspane=={version('glasspane')}"]
    # MLflow logs two warnings at every such save: that the wrapper is pickled (cloudpickle)
    # and that it has no signature. Both hold for every model wrapped here (see the module
    # docstring), so they would only repeat once per registration in glasspane's output.
    logger = logging.getLogger("mlflow.pyfunc")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        mlflow.pyfunc.save_model(
            str(path), python_model=PredictModel(model), mlflow_model=mlflow_model,
            pip_requirements=requirements_of(model, needs),
        )  # fmt: skip
    finally:
        logger.setLevel(level)
    return flavour


def requirements_of(model: Any, defaults: list[str]) -> list[str]:
    """``defaults`` and the installed distributions (pinned) that provide the modules of
    ``model``'s class and its bases.

    MLflow would otherwise infer them by loading the model in a subprocess, which takes
    seconds and names every package the process imported.
    """
    from importlib.metadata import packages_distributions, version

    found = list(defaults)
    named = {re.split(r"[<>=!~\[; ]", item, maxsplit=1)[0].lower() for item in found}
    provides = packages_distributions()
    for cls in type(model).__mro__:
        for dist in provides.get(cls.__module__.split(".", 1)[0], []):
            if dist.lower() not in named:
                named.add(dist.lower())
                found.append(f"{dist}=={version(dist)}")
    return found
