"""The artifact store on S3: the same guarantees, against a real S3-protocol server (moto)."""

from __future__ import annotations

import hashlib
import json
import pickle
from typing import Any

import numpy as np
import pandas as pd
import pytest

from glasspane.artifacts import ArtifactStore
from glasspane.errors import ArtifactError, ConfigError, CorruptedArtifact
from glasspane.hashing import content_hash

KEY = "ab" * 16
OTHER_KEY = "cd" * 16


@pytest.fixture
def store(s3_root: str) -> ArtifactStore:
    return ArtifactStore(s3_root)


def _bucket_and_prefix(root: str) -> tuple[str, str]:
    bucket, _, prefix = root.removeprefix("s3://").partition("/")
    return bucket, prefix


def _keys(client: Any, root: str) -> list[str]:
    """Every object name under the root, relative to it, listed by boto3 (not s3fs)."""
    bucket, prefix = _bucket_and_prefix(root)
    listing = client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/")
    return sorted(o["Key"][len(prefix) + 1 :] for o in listing.get("Contents", []))


def _object(client: Any, uri: str) -> bytes:
    bucket, key = _bucket_and_prefix(uri)
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.mark.parametrize(
    "value",
    [pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}), np.arange(6).reshape(2, 3), {"k": [1.5]}],
    ids=["frame", "array", "json"],
)
def test_put_then_get_round_trips(store: ArtifactStore, value: Any):
    back = store.get(store.put(value))
    if isinstance(value, pd.DataFrame):
        assert back.equals(value)
    elif isinstance(value, np.ndarray):
        np.testing.assert_array_equal(back, value)
    else:
        assert back == value


def test_blob_is_one_object_at_its_content_address(store: ArtifactStore, s3_root: str, s3_client):
    info = store.put([1, 2, 3])
    h = content_hash([1, 2, 3])
    assert info.uri == f"{s3_root}/objects/{h[:2]}/{h}.json"
    assert _keys(s3_client, s3_root) == [f"objects/{h[:2]}/{h}.json"]  # no temporary objects
    data = _object(s3_client, info.uri)
    assert info.digest == hashlib.sha256(data).hexdigest()
    assert info.size == len(data)


def test_put_is_idempotent(store: ArtifactStore, s3_root: str, s3_client):
    first = store.put({"a": 1})
    bucket, key = _bucket_and_prefix(first.uri or "")
    etag = s3_client.head_object(Bucket=bucket, Key=key)["ETag"]
    assert store.put({"a": 1}) == first
    assert s3_client.head_object(Bucket=bucket, Key=key)["ETag"] == etag
    assert len(_keys(s3_client, s3_root)) == 1


def test_verify(store: ArtifactStore, s3_client):
    info = store.put("hello")
    assert store.verify(info)
    bucket, key = _bucket_and_prefix(info.uri or "")
    s3_client.delete_object(Bucket=bucket, Key=key)
    assert not store.verify(info)


def test_corrupted_object_is_detected(store: ArtifactStore, s3_client):
    info = store.put(np.arange(100))
    bucket, key = _bucket_and_prefix(info.uri or "")
    data = bytearray(_object(s3_client, info.uri or ""))
    data[-1] ^= 0xFF
    s3_client.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    with pytest.raises(CorruptedArtifact, match=r"artifact s3://.* is corrupted: expected sha256"):
        store.get(info)
    assert not store.verify(info)
    np.testing.assert_array_equal(store.get(info, verify=False)[:-1], np.arange(99))


def test_missing_object(store: ArtifactStore, s3_client):
    info = store.put("gone soon")
    bucket, key = _bucket_and_prefix(info.uri or "")
    s3_client.delete_object(Bucket=bucket, Key=key)
    with pytest.raises(ArtifactError, match=r"artifact s3://.*\.json is missing; it will be"):
        store.get(info)
    assert store.put("gone soon").digest == info.digest  # put writes it again
    assert store.get(info) == "gone soon"


def test_key_index(store: ArtifactStore, s3_root: str, s3_client):
    assert store.read_key(KEY) is None
    store.write_key(KEY, {"task": "train", "outputs": []})
    assert store.read_key(KEY) == {"task": "train", "outputs": []}
    assert _keys(s3_client, s3_root) == [f"keys/ab/{KEY}.json"]
    assert json.loads(_object(s3_client, f"{s3_root}/keys/ab/{KEY}.json"))["task"] == "train"


def test_key_written_by_another_process_is_seen(store: ArtifactStore, s3_root: str, s3_client):
    store.put("a blob")
    assert [p.rsplit("/", 1)[-1] for p in store.fs.ls(s3_root)] == ["objects"]  # now cached
    bucket, prefix = _bucket_and_prefix(s3_root)
    s3_client.put_object(Bucket=bucket, Key=f"{prefix}/keys/cd/{OTHER_KEY}.json", Body=b"{}")
    assert store.read_key(OTHER_KEY) == {}
    assert store.clear_keys() == 1  # a stale listing of the root would have hidden keys/
    assert store.read_key(OTHER_KEY) is None


def test_clear_keys(store: ArtifactStore, s3_root: str, s3_client):
    info = store.put([1])
    store.write_key(KEY, {"task": "a", "outputs": [info.to_dict()]})
    store.write_key(OTHER_KEY, {"task": "b", "outputs": []})
    assert store.clear_keys("a") == 1
    assert store.read_key(KEY) is None and store.read_key(OTHER_KEY) is not None
    assert store.clear_keys() == 1
    assert store.clear_keys() == 0
    assert _keys(s3_client, s3_root) == [
        f"objects/{info.content_hash[:2]}/{info.content_hash}.json"
    ]
    assert store.get(info) == [1]  # blobs stay


def test_clear_keys_leaves_foreign_objects_alone(store: ArtifactStore, s3_root: str, s3_client):
    bucket, prefix = _bucket_and_prefix(s3_root)
    for name in ("keys/README.json", "keys/ab/../evil.json", f"keys/ab/.tmp-x-{KEY}.json"):
        s3_client.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=b"{}")
    store.write_key(KEY, {"task": "a"})
    assert store.clear_keys() == 1
    assert len(_keys(s3_client, s3_root)) == 3


def test_containment_still_applies(store: ArtifactStore, s3_root: str):
    assert store.resolve("objects/ab/x.json") == f"{s3_root}/objects/ab/x.json"
    for bad in ("../other/x.json", "objects//x.json", "s3://elsewhere/x", "objects/%2e%2e/x"):
        with pytest.raises(ArtifactError, match="must stay inside GLASSPANE_ARTIFACT_ROOT"):
            store.resolve(bad)
    with pytest.raises(ArtifactError, match="invalid cache key"):
        store.write_key("../../escape", {})


def test_missing_bucket_is_an_error_and_not_created(s3_root: str, s3_client):
    store = ArtifactStore("s3://glasspane-no-such-bucket/prefix")
    with pytest.raises(ArtifactError, match=r"cannot write artifact to s3://glasspane-no-such-"):
        store.put("x")
    buckets = [b["Name"] for b in s3_client.list_buckets()["Buckets"]]
    assert "glasspane-no-such-bucket" not in buckets


def test_pickled_store_reaches_the_same_bucket(store: ArtifactStore):
    info = store.put({"shipped": True})
    _ = store.fs  # a live filesystem is not shipped
    clone = pickle.loads(pickle.dumps(store))
    assert clone._fs is None
    assert clone.get(info) == {"shipped": True}
    clone.write_key(KEY, {"task": "t"})
    assert store.read_key(KEY) == {"task": "t"}


def test_check_writable_leaves_nothing_behind(store: ArtifactStore, s3_root: str, s3_client):
    store.check_writable()
    assert _keys(s3_client, s3_root) == []


def test_check_writable_names_a_missing_bucket(s3_root: str, s3_client):
    store = ArtifactStore("s3://glasspane-no-such-bucket/prefix")
    with pytest.raises(ConfigError) as caught:
        store.check_writable()
    assert str(caught.value).startswith(
        "artifact root `s3://glasspane-no-such-bucket/prefix` is not writable: the bucket does "
        "not exist (glasspane never creates buckets); "
    )
    buckets = [b["Name"] for b in s3_client.list_buckets()["Buckets"]]
    assert "glasspane-no-such-bucket" not in buckets
