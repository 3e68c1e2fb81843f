"""The ``pyfunc`` wrapper MLflow loads a non-scikit-learn glasspane model back with.

It lives in its own importable module (``glasspane.integrations.mlflow_pyfunc``) because MLflow
pickles the wrapper by reference to its class: ``mlflow.pyfunc.load_model`` imports this module
again, so a model saved by :func:`~glasspane.integrations.mlflow_flavour.save_model` loads
wherever glasspane and the model's own class can be imported.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel


class PredictModel(PythonModel):  # type: ignore[misc]  # mlflow is untyped here
    """Any object with ``predict(inputs)``, as an MLflow ``pyfunc`` model.

    Args:
        model: The wrapped model; kept as ``model`` (pickled with the wrapper).
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    # a DataFrame hint: MLflow passes inputs as they come (a list[...] hint would make it
    # check and convert them by a schema), and it does not warn that hints are missing
    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> Any:
        """The wrapped model's ``predict(model_input)`` (MLflow's ``context`` and ``params``
        are not passed on)."""
        return self.model.predict(model_input)
