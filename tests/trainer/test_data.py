"""Datasets by content id, built-in sources, held-out split, deterministic shards."""
import numpy as np
import pytest

from trainer.data import BatchPlan, DatasetSpec, cid_of, load_dataset, tensors_blob
from trainer.errors import DatasetError, SpecError


def test_digits_split_is_deterministic_and_disjoint(digits):
    again = load_dataset(DatasetSpec("digits"))
    assert np.array_equal(digits.x_train, again.x_train)
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert 300 < len(digits.x_test) < 420
    other = load_dataset(DatasetSpec("digits"), split_seed=1)
    assert not np.array_equal(other.y_test, digits.y_test)
    assert digits.x_train.dtype == np.float32 and digits.x_train.max() <= 1.0


def test_text_corpus_from_local_files():
    ds = load_dataset(DatasetSpec("text", {"context": 32, "max_bytes": 20_000}))
    assert ds.kind == "lm" and ds.x_train.shape[1] == 32
    assert np.array_equal(ds.x_train[:, 1:], ds.y_train[:, :-1])  # y is x shifted by one byte
    assert (len(ds.x_train) + len(ds.x_test)) * 32 <= 20_000


def test_text_from_given_paths(tmp_path):
    p = tmp_path / "a.txt"
    p.write_bytes(b"hello world " * 100)
    ds = load_dataset(DatasetSpec("text", {"paths": [str(p)], "context": 8}))
    assert ds.x_train.max() < 256
    with pytest.raises(DatasetError):
        load_dataset(DatasetSpec("text", {"paths": [str(tmp_path / "missing")]}))


def test_blob_by_content_id_fetch_and_path(tmp_path):
    rng = np.random.default_rng(0)
    blob = tensors_blob(rng.random((50, 4), dtype=np.float32), rng.integers(0, 3, 50))
    cid = cid_of(blob)
    assert cid.startswith("bafkrei")  # CIDv1 raw sha2-256, as IPFS and the p2p layer spell it
    fetched = []

    def fetch(c):
        fetched.append(c)
        return blob

    ds = load_dataset(DatasetSpec("blob", {"cid": cid}), fetch=fetch)
    assert fetched == [cid] and len(ds.x_train) == 40
    path = tmp_path / "d.safetensors"
    path.write_bytes(blob)
    assert len(load_dataset(DatasetSpec("blob", {"cid": cid, "path": str(path)})).x_test) == 10
    with pytest.raises(DatasetError, match="does not match"):
        load_dataset(DatasetSpec("blob", {"cid": cid}), fetch=lambda c: blob + b"x")
    with pytest.raises(DatasetError, match="fetcher"):
        load_dataset(DatasetSpec("blob", {"cid": cid}))
    bad = b"not safetensors"
    with pytest.raises(DatasetError, match="safetensors"):
        load_dataset(DatasetSpec("blob", {"cid": cid_of(bad)}), fetch=lambda c: bad)
    text = b"some text bytes " * 50
    ds = load_dataset(DatasetSpec("blob", {"cid": cid_of(text), "format": "text", "context": 8}),
                      fetch=lambda c: text)
    assert ds.kind == "lm"


def test_bad_dataset_specs():
    for spec in (DatasetSpec("imagenet"), DatasetSpec("digits", {"x": 1}),
                 DatasetSpec("digits", {"test_fraction": 1.5}), DatasetSpec("text", {"context": 0}),
                 DatasetSpec("blob", {})):
        with pytest.raises(SpecError):
            load_dataset(spec)


def test_shards_are_disjoint_cover_and_match_one_big_batch():
    plan = BatchPlan(n_train=120, seed=5, batch_size=4)
    world = 3
    shards = [plan.shard(0, r, world) for r in range(world)]
    allidx = np.concatenate(shards)
    assert len(allidx) == 120 and len(set(allidx.tolist())) == 120  # each example once per epoch
    big = BatchPlan(n_train=120, seed=5, batch_size=12)
    for step in range(25):  # crosses an epoch boundary
        pos = step * 12
        union = np.concatenate([plan.indices(pos, r, world) for r in range(world)])
        assert np.array_equal(union, big.indices(pos, 0, 1))
    assert not np.array_equal(plan.shard(1, 0, world), shards[0])  # a fresh order each epoch
    assert np.array_equal(BatchPlan(120, 5, 4).shard(0, 1, world), shards[1])  # deterministic
    assert not np.array_equal(BatchPlan(120, 6, 4).shard(0, 1, world), shards[1])
    with pytest.raises(ValueError):
        plan.indices(0, 3, 3)
