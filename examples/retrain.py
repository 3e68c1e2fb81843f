"""Retrain a classifier on the breast cancer data that ships with scikit-learn.

The pipeline loads the data, makes a stratified, seeded train/test split, standardises the
features, trains one logistic regression per value of ``C`` in the grid (a ``.map`` fan-out),
scores every model on the test set and keeps the best one by ROC AUC.

``train`` is ``cache=False``, so it runs again on every run; every other task is cached by
content. ``LogisticRegression`` with a fixed solver is deterministic, so retraining on the
same data gives identical models, and ``evaluate`` and ``choose_best`` still hit the cache
downstream of ``train`` (early cut-off).

Run it:

    glasspane run examples/retrain.py:retrain -p grid=[0.1,1]
    python examples/retrain.py
"""

from __future__ import annotations

import pandas as pd
from sklearn.linear_model import LogisticRegression

from glasspane import log_metric, pipeline, task

TARGET = "target"


@task(retries=2, retry_delay=0.5)
def load(n_rows: int) -> pd.DataFrame:
    """The first ``n_rows`` rows of the breast cancer data set (569 in all)."""
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True).frame
    return df.head(n_rows).reset_index(drop=True)


@task
def split(df: pd.DataFrame, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified train/test split."""
    from sklearn.model_selection import train_test_split

    train_df, test_df = train_test_split(
        df, test_size=test_size, stratify=df[TARGET], random_state=seed
    )
    return train_df.reset_index(drop=True), test_df.reset_index(drop=True)


@task
def features(train_df: pd.DataFrame, test_df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Standardise the features with a scaler fitted on the training rows only."""
    from sklearn.preprocessing import StandardScaler

    columns = [c for c in train_df.columns if c != TARGET]
    scaler = StandardScaler().fit(train_df[columns])
    out = []
    for df in (train_df, test_df):
        scaled = pd.DataFrame(scaler.transform(df[columns]), columns=columns)
        scaled[TARGET] = df[TARGET].to_numpy()
        out.append(scaled)
    return out[0], out[1]


@task(cache=False)
def train(train_df: pd.DataFrame, C: float) -> LogisticRegression:
    """One logistic regression; deterministic for a fixed solver and data."""
    X, y = train_df.drop(columns=TARGET), train_df[TARGET]
    model = LogisticRegression(C=C, solver="lbfgs", max_iter=5000).fit(X, y)
    log_metric("train_acc", model.score(X, y))
    return model


@task
def evaluate(models: list[LogisticRegression], test_df: pd.DataFrame) -> list[dict]:
    """Accuracy, F1 and ROC AUC of every model on the test set."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    X, y = test_df.drop(columns=TARGET), test_df[TARGET]
    scores = []
    for i, model in enumerate(models):
        pred = model.predict(X)
        row = {
            "C": float(model.C),
            "accuracy": float(accuracy_score(y, pred)),
            "f1": float(f1_score(y, pred)),
            "roc_auc": float(roc_auc_score(y, model.predict_proba(X)[:, 1])),
        }
        for name in ("accuracy", "f1", "roc_auc"):
            log_metric(name, row[name], step=i)
        scores.append(row)
    return scores


@task
def choose_best(scores: list[dict], train_df: pd.DataFrame, test_df: pd.DataFrame) -> dict:
    """The best model's ``C`` and test metrics (JSON-able), by ROC AUC then accuracy."""
    best = max(scores, key=lambda s: (s["roc_auc"], s["accuracy"]))
    return {
        "best_C": best["C"],
        "metrics": best,
        "n_train": len(train_df),
        "n_test": len(test_df),
        "candidates": len(scores),
    }


@pipeline
def retrain(
    n_rows: int = 569,
    test_size: float = 0.25,
    grid: list[float] = [0.01, 0.1, 1.0, 10.0],  # noqa: B006 - read, never mutated
    seed: int = 0,
):
    """Train one model per ``C`` in ``grid`` on the first ``n_rows`` rows; keep the best."""
    df = load(n_rows)
    tr, te = split(df, test_size, seed)
    tr_x, te_x = features(tr, te)
    models = train.map(tr_x, C=grid)
    scores = evaluate(models, te_x)
    return choose_best(scores, tr_x, te_x)


if __name__ == "__main__":
    result = retrain()
    print(result.output)
