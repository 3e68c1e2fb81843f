"""Artifacts by hash with safe previews; lineage across runs; comparing two runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from query_flows import Stores, kinds, retrain

from glasspane import queries
from glasspane.errors import NotFound


def outputs(stores: Stores, run_id: str, node: str) -> list[queries.ArtifactDetail]:
    refs = queries.task_detail(stores.metadata, run_id, node).outputs
    return [queries.artifact(stores.metadata, stores.artifacts, r.content_hash) for r in refs]


def test_previews_read_json_parquet_and_npy_and_never_unpickle(
    stores: Stores, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    result = kinds.run(path=str(marker), n=8, executor="inline")
    marker.unlink(missing_ok=True)  # whatever the run itself did

    square, fortran, big, records, wide = outputs(stores, result.run_id, "shapes")
    expected = [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [12, 13, 14]]
    assert (square.preview.kind, square.preview.shape, square.preview.dtype) == (
        "npy",
        [8, 3],
        "int64",
    )
    assert square.preview.head == expected and square.preview.truncated
    assert fortran.preview.head == expected  # equal content: one artifact, or the same head
    assert big.preview.shape == [8, 2000] and big.preview.head == [0.0] * 20
    assert big.preview.note == "the first 20 values in storage (C) order"

    assert records.preview.kind == "json" and records.preview.truncated
    first = records.preview.value[0]
    assert first["i"] == 0 and len(first["text"]) == 200 and first["text"].endswith("…")

    assert wide.preview.kind == "parquet"
    assert wide.preview.shape == [8, 25] and wide.preview.columns == [f"c{i}" for i in range(20)]
    assert wide.preview.dtypes is not None and wide.preview.dtypes["c3"] == "int64"
    assert wide.preview.head is not None and len(wide.preview.head) == 5
    assert wide.preview.head[0]["c3"] == 3 and wide.preview.truncated

    [pickled] = outputs(stores, result.run_id, "booby")
    assert pickled.materializer == "pickle" and pickled.type_name.endswith("Booby")
    assert pickled.preview.kind == "none" and pickled.size > 0
    assert "never unpickles to preview" in (pickled.preview.note or "")
    assert not marker.exists()
    assert pickled.produced_by == [
        queries.TaskRunRef(run_id=result.run_id, node="booby", cached=False)
    ]


def test_npy_heads_in_either_order_and_of_any_rank(stores: Stores) -> None:
    import numpy as np

    cube = np.arange(7 * 2 * 3, dtype=np.float32).reshape(7, 2, 3)
    for stored in (cube, np.asfortranarray(cube)):
        info = stores.artifacts.put(
            stored, content_hash=("f" if stored.flags.f_contiguous else "c") * 64
        )
        assert info.materializer == "npy"
        shown = queries.preview(stores.artifacts, info)
        assert (shown.kind, shown.shape, shown.dtype) == ("npy", [7, 2, 3], "float32")
        assert shown.head == cube[:5].tolist() and shown.truncated
    scalar = stores.artifacts.put(np.array(2.5), content_hash="d" * 64)
    assert queries.preview(stores.artifacts, scalar).head == 2.5


def test_an_artifact_is_found_by_a_hash_prefix_with_its_producers_and_consumers(
    stores: Stores,
) -> None:
    first = retrain.run(n=6, lr=0.1, executor="inline")
    second = retrain.run(n=6, lr=0.3, executor="inline")  # `load` is a cache hit
    [frame] = queries.task_detail(stores.metadata, first.run_id, "load").outputs
    found = queries.artifact(stores.metadata, stores.artifacts, frame.content_hash[:12])
    assert found.content_hash == frame.content_hash
    assert found.preview.kind == "parquet" and found.preview.shape == [6, 2]
    assert [(r.run_id, r.node, r.cached) for r in found.produced_by] == [
        (first.run_id, "load", False),
        (second.run_id, "load", True),
    ]
    consumers = {(r.run_id, r.node) for r in found.consumed_by}
    assert (first.run_id, "train") in consumers and (second.run_id, "features") in consumers
    with pytest.raises(NotFound, match="artifact hash `0000000000` matches no artifact"):
        queries.artifact(stores.metadata, stores.artifacts, "0000000000")


def test_a_missing_blob_gets_a_note_not_an_error(stores: Stores) -> None:
    result = retrain.run(n=3, executor="inline")
    [frame] = queries.task_detail(stores.metadata, result.run_id, "load").outputs
    assert frame.uri is not None
    Path(frame.uri).unlink()
    found = queries.artifact(stores.metadata, stores.artifacts, frame.content_hash)
    assert found.preview.kind == "none" and "is missing" in (found.preview.note or "")


def test_lineage_upstream_and_downstream_across_runs(stores: Stores) -> None:
    first = retrain.run(n=5, lr=0.1, executor="inline")
    second = retrain.run(n=5, lr=0.2, executor="inline")  # reuses `load` from the cache
    up = queries.lineage(stores.metadata, second.run_id, "evaluate")
    assert up.direction == "upstream" and up.root.node == "evaluate"
    assert {(t.node, t.depth) for t in up.task_runs} >= {("evaluate", 0), ("train", 1)}
    assert any(t.node == "load" for t in up.task_runs)
    [frame] = [a for a in up.artifacts if a.type_name == "pandas.DataFrame"]
    assert frame.produced_by is not None and frame.produced_by.node == "load"

    down = queries.lineage(stores.metadata, first.run_id, "load", direction="downstream")
    reached = {(t.run_id, t.node) for t in down.task_runs}
    assert (first.run_id, "train") in reached and (second.run_id, "train") in reached
    assert all(e.source and e.target for e in down.edges)
    shallow = queries.lineage(
        stores.metadata, first.run_id, "load", direction="downstream", depth=0
    )
    assert [t.node for t in shallow.task_runs] == ["load"]


def test_comparing_two_runs(stores: Stores) -> None:
    first = retrain.run(n=5, lr=0.1, executor="inline")
    second = retrain.run(n=5, lr=0.2, executor="inline")
    diff = queries.compare_runs(stores.metadata, first.run_id, second.run_id)
    assert (diff.left.run_id, diff.right.run_id, diff.same_version) == (
        first.run_id,
        second.run_id,
        True,
    )
    assert [(p.key, p.left, p.right, p.equal) for p in diff.params] == [
        ("lr", 0.1, 0.2, False),
        ("n", 5, 5, True),
    ]
    loss = next(m for m in diff.metrics if m.key == "loss")
    assert (loss.node, loss.left, loss.right) == (
        "train",
        pytest.approx(0.1 / 3),
        pytest.approx(0.2 / 3),
    )
    assert loss.delta == pytest.approx(0.1 / 3)
    nodes = {n.node: n for n in diff.nodes}
    assert nodes["load"].outputs_equal is True  # same frame, computed once and reused
    assert nodes["features"].outputs_equal is True
    assert nodes["train"].outputs_equal is False and nodes["evaluate"].outputs_equal is False
    assert nodes["train"].left_duration is not None and nodes["train"].right_state == "succeeded"
