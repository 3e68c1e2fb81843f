"""Retrain, evaluate against the champion, register, promote and redeploy — every night.

Each run trains a classifier on a fresh sample of the breast cancer data that ships with
scikit-learn, scores it and the current champion (``cancer@champion``, loaded inside the task:
the run's lineage records which version it compared against) on the same held-out rows, and
only when the new model is at least ``min_gain`` better registers it as a new version with the
alias ``champion``. The next task then redeploys ``cancer@champion`` as the deployment
``cancer-api`` on port ``port``: blue/green, so the version serving keeps serving unless the new
one answers its health check and a sample prediction.

Run it once, then ask the deployment:

    glasspane run examples/retrain_and_deploy.py:retrain_and_deploy -p seed=1
    curl -s -H 'Content-Type: application/json' http://127.0.0.1:5001/invocations \\
      -d '{"dataframe_records": [{"mean radius": 14.1, ...}]}'
    glasspane deployments list

Every night at 03:00 UTC, under ``glasspane server`` (after ``glasspane schedule sync
examples/retrain_and_deploy.py``); each scheduled run samples with the day of its fire time.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

import glasspane
from glasspane import NotFound, log_metric, pipeline, task

MODEL = "cancer"
DEPLOYMENT = "cancer-api"
TARGET = "target"


@task
def sample(seed: int, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded sample of the data (``fraction`` of the rows), split 75/25 for training and
    for evaluation."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    df = load_breast_cancer(as_frame=True).frame.sample(frac=fraction, random_state=seed)
    train_df, test_df = train_test_split(df, test_size=0.25, stratify=df[TARGET], random_state=0)
    return train_df.reset_index(drop=True), test_df.reset_index(drop=True)


@task
def train(train_df: pd.DataFrame, C: float) -> Pipeline:
    """A standardised logistic regression."""
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
    return model.fit(train_df.drop(columns=TARGET), train_df[TARGET])


@task(cache=False)
def evaluate_and_register(model: Pipeline, test_df: pd.DataFrame, min_gain: float) -> bool:
    """Score the new model and the champion on the same rows; register the new one as the
    champion when it is ``min_gain`` better (or when there is no champion yet)."""
    X, y = test_df.drop(columns=TARGET), test_df[TARGET]
    accuracy = float(model.score(X, y))
    log_metric("accuracy", accuracy)
    try:
        champion = glasspane.load_model(f"{MODEL}@champion")
    except NotFound:
        champion_accuracy = None
    else:
        champion_accuracy = float(champion.score(X, y))
        log_metric("champion_accuracy", champion_accuracy)
    if champion_accuracy is not None and accuracy < champion_accuracy + min_gain:
        print(f"keeping the champion: {champion_accuracy:.4f} against {accuracy:.4f}")
        return False
    glasspane.register_model(
        MODEL, model, alias="champion", input_example=X.head(3),
        metadata={"accuracy": accuracy, "champion_accuracy": champion_accuracy},
    )  # fmt: skip
    return True


@task(cache=False)
def redeploy(promoted: bool, port: int) -> str:
    """Serve ``cancer@champion`` as ``cancer-api`` (blue/green) when the champion changed or
    nothing serves it yet; the URL it is served at."""
    serving = {d["name"]: d for d in glasspane.deployments(live=True)}.get(DEPLOYMENT)
    if not promoted and serving is not None and serving["health"] == "up":
        return str(serving["url"])
    done = glasspane.deploy(f"{MODEL}@champion", name=DEPLOYMENT, port=port)
    print(f"{DEPLOYMENT} serves {done.model_name}/{done.model_version} at {done.url}")
    return done.url


@pipeline(schedule="0 3 * * *")
def retrain_and_deploy(
    seed: int = 0,
    fraction: float = 0.8,
    C: float = 1.0,
    min_gain: float = 0.0,
    port: int = 5001,
    scheduled_for: datetime | None = None,
):
    if scheduled_for is not None:  # a scheduled run samples with the day it was due
        seed = scheduled_for.toordinal()
    train_df, test_df = sample(seed, fraction)
    model = train(train_df, C)
    return redeploy(evaluate_and_register(model, test_df, min_gain), port)


if __name__ == "__main__":
    print(retrain_and_deploy(seed=1).output)
