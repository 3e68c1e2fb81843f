"""Pipelines the query tests run (plain tasks, a failure with retries, logged metrics, values
of each materializer: JSON, Parquet, .npy and pickle) and the stores they run into."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from glasspane import log_metric, log_param, pipeline, task
from glasspane.artifacts import ArtifactStore
from glasspane.store import MetadataStore


class Stores(NamedTuple):
    """The metadata and artifact stores the module-level API runs pipelines into."""

    metadata: MetadataStore
    artifacts: ArtifactStore


class Model:
    """A value only pickle can store."""

    def __init__(self, weight: float) -> None:
        self.weight = weight


@task(tags=("data",))
def load(n: int) -> pd.DataFrame:
    return pd.DataFrame({"x": list(range(n)), "y": [i / 2 for i in range(n)]})


@task
def features(frame: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(frame.to_numpy())


@task
def train(frame: pd.DataFrame, lr: float) -> Model:
    print(f"training with lr={lr}")
    for step in range(3):
        log_metric("loss", lr / (step + 1), step=step)
    log_param("optimizer", "sgd")
    return Model(lr * len(frame))


@task
def evaluate(model: Model, frame: pd.DataFrame) -> dict:
    score = model.weight / 10
    log_metric("score", score)
    return {"score": score, "rows": len(frame)}


@pipeline
def retrain(n: int = 10, lr: float = 0.1):
    frame = load(n)
    model = train(frame, lr)
    return evaluate(model, frame), features(frame)


@task
def other_step(x: int) -> int:
    return x + 1


@pipeline
def other(x: int = 1):
    return other_step(x)


@task(retries=1, retry_delay=0.01)
def flaky(x: int) -> int:
    print("about to fail")
    raise RuntimeError(f"bad input {x}")


@pipeline
def fails(x: int = 1):
    return other_step(flaky(x))


def touch(path: str) -> str:
    with open(path, "w") as fh:
        fh.write("unpickled")
    return path


class Booby:
    """Unpickling it writes a file: the proof that a preview unpickled something."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple:
        return (touch, (self.path,))


@task
def booby(path: str) -> Booby:
    return Booby(path)


@task
def shapes(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list, pd.DataFrame]:
    square = np.arange(n * 3, dtype=np.int64).reshape(n, 3)
    wide = pd.DataFrame({f"c{i}": [i] * n for i in range(25)})
    return (
        square,
        np.asfortranarray(square),
        np.zeros((n, 2000)),
        [{"i": i, "text": "x" * 300} for i in range(n)],
        wide,
    )


@pipeline
def kinds(path: str, n: int = 8):
    return shapes(n), booby(path)
