"""A grid search over the regularisation strength ``C``, tracked in MLflow as it trains.

The pipeline loads the breast cancer data that ships with scikit-learn, makes a stratified,
seeded train/validation split, standardises the features and trains one linear classifier per
value of ``C`` (a ``.map`` fan-out). Each candidate trains epoch by epoch (stochastic gradient
descent on the logistic loss, ``alpha = 1 / (C * n_train)``) and logs its training loss and
validation accuracy at every epoch with ``log_metric(..., step=epoch)``. ``choose_best`` keeps
the candidate with the best final validation accuracy: it is ``track=True``, so the model it
returns goes to the trackers as an artifact, and it hands them a JSON report of every
candidate with ``glasspane.log_artifact``.

With the MLflow tracker turned on, the run is one MLflow run (in the experiment
``grid_search``) with the pipeline's parameters, and a nested child run per candidate
(``train[0]``, ``train[1]``, ...) carrying its ``C`` and its metric curves, so MLflow's run
table sorts the candidates by ``val_acc``; the model and the report are artifacts of the
parent run. Run it against a tracking server:

    mlflow server --host 127.0.0.1 --port 5000 &
    export GLASSPANE_TRACKERS=mlflow MLFLOW_TRACKING_URI=http://127.0.0.1:5000
    glasspane run examples/tracked_grid_search.py:grid_search -p grid=[0.01,0.1,1,10]
    python examples/tracked_grid_search.py

(``pip install "glasspane[mlflow]"`` brings MLflow; without ``GLASSPANE_TRACKERS`` the
pipeline runs the same and its metrics are in glasspane's own UI.)
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import SGDClassifier

import glasspane
from glasspane import log_metric, log_param, pipeline, task

TARGET = "target"


@task
def load() -> pd.DataFrame:
    """The breast cancer data set (569 rows, 30 features)."""
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(as_frame=True).frame


@task
def split(df: pd.DataFrame, val_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified train/validation split, standardised with the training rows' scaler."""
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    train_df, val_df = train_test_split(
        df, test_size=val_size, stratify=df[TARGET], random_state=seed
    )
    columns = [c for c in df.columns if c != TARGET]
    scaler = StandardScaler().fit(train_df[columns])
    out = []
    for part in (train_df, val_df):
        scaled = pd.DataFrame(scaler.transform(part[columns]), columns=columns)
        scaled[TARGET] = part[TARGET].to_numpy()
        out.append(scaled)
    return out[0], out[1]


@task(cache=False)
def train(
    train_df: pd.DataFrame, val_df: pd.DataFrame, C: float, epochs: int, seed: int
) -> SGDClassifier:
    """One candidate, trained an epoch at a time; loss and accuracy are logged per epoch."""
    from sklearn.metrics import log_loss

    X, y = train_df.drop(columns=TARGET).to_numpy(), train_df[TARGET].to_numpy()
    X_val, y_val = val_df.drop(columns=TARGET).to_numpy(), val_df[TARGET].to_numpy()
    model = SGDClassifier(
        loss="log_loss", alpha=1.0 / (C * len(X)), learning_rate="optimal", random_state=seed
    )
    log_param("alpha", model.alpha)
    classes = np.unique(y)
    for epoch in range(epochs):
        model.partial_fit(X, y, classes=classes)
        log_metric("train_loss", log_loss(y, model.predict_proba(X), labels=classes), step=epoch)
        log_metric("val_acc", model.score(X_val, y_val), step=epoch)
    return model


@task(track=True)
def choose_best(models: list[SGDClassifier], val_df: pd.DataFrame, grid: list[float]):
    """The candidate with the best validation accuracy (handed to the trackers as an
    artifact), with a JSON report of every candidate."""
    X_val, y_val = val_df.drop(columns=TARGET), val_df[TARGET]
    scores = [float(model.score(X_val.to_numpy(), y_val.to_numpy())) for model in models]
    best = int(np.argmax(scores))
    report = {"candidates": [{"C": c, "val_acc": s} for c, s in zip(grid, scores)]}
    report["best"] = {"C": grid[best], "val_acc": scores[best]}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "grid_report.json"
        path.write_text(json.dumps(report, indent=2))
        glasspane.log_artifact(str(path))  # stored now, so it survives the folder
    log_metric("best_val_acc", scores[best])
    return models[best]


@pipeline
def grid_search(
    grid: list[float] = [0.01, 0.1, 1.0, 10.0],  # noqa: B006 - read, never mutated
    epochs: int = 20,
    val_size: float = 0.25,
    seed: int = 0,
):
    """Train one classifier per ``C`` in ``grid`` for ``epochs`` epochs; keep the best."""
    tr, val = split(load(), val_size, seed)
    models = train.map(tr, val, C=grid, epochs=epochs, seed=seed)
    return choose_best(models, val, grid)


if __name__ == "__main__":
    result = grid_search()
    print(result.output)
