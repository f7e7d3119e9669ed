"""ShardedIndex: shards searched as one equal one index over all vectors; incomplete or mixed sets are refused.

These tests need no Ray and no model: shards are written from fixed random vectors, routed exactly as the Ray
builder routes them (int_id % N). The Ray pipeline itself, on real SciFact texts, is in test_ray_index.py.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mote_rag.index.faiss_index import EncoderMismatchError, FaissIndex, int_id
from mote_rag.index.sharded import (
    SHARDS_JSON,
    ShardedIndex,
    ShardSetError,
    open_index,
    read_manifest,
    shard_name,
    shard_of,
    write_manifest,
)

DIM = 16
FP = "fingerprint-A"


def vectors(n, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_set(root, n=600, num_shards=3, kind="flat", fingerprint=FP, seed=0, **params):
    """One index over everything plus a shard set of the same vectors, routed by int_id % num_shards."""
    x = vectors(n, seed)
    ids = [f"doc-{i}" for i in range(n)]
    metas = [{"i": i} for i in range(n)]
    texts = [f"text {i}" for i in range(n)]
    whole = FaissIndex(dim=DIM, kind=kind, fingerprint=fingerprint, **params)
    whole.add_embeddings(x, ids, metas, texts)
    dirs = []
    for k in range(num_shards):
        rows = [i for i in range(n) if shard_of(ids[i], num_shards) == k]
        shard = FaissIndex(dim=DIM, kind=kind, fingerprint=fingerprint, **params)
        shard.add_embeddings(x[rows], [ids[i] for i in rows], [metas[i] for i in rows], [texts[i] for i in rows])
        dirs.append(shard.save(root / "b1" / shard_name(k, num_shards)))
    write_manifest(root, dirs)
    return whole, x, ids


def test_flat_shards_equal_one_index_through_index_shards(tmp_path):
    whole, x, ids = make_set(tmp_path)
    sharded = ShardedIndex.load(tmp_path)
    assert len(sharded) == 600 and sharded.num_shards == 3
    counts = [len(s) for s in sharded.shards]
    assert counts == [e.count for e in read_manifest(tmp_path).shards] and min(counts) > 150  # hash-balanced
    assert sharded.faiss_index.ntotal == 600  # the faiss.IndexShards over the three shard indexes
    q = vectors(40, seed=9)
    expected = whole.search_vectors(q, k=10)
    got = sharded.search_vectors(q, k=10)
    for e, g in zip(expected, got):
        assert [h.id for h in g] == [h.id for h in e]
        assert np.allclose([h.score for h in g], [h.score for h in e], atol=1e-6)
        assert [h.metadata for h in g] == [h.metadata for h in e] and [h.text for h in g] == [h.text for h in e]
    # every document was routed to the shard its stable hash names
    for k, shard in enumerate(sharded.shards):
        assert all(int_id(d) % 3 == k for d in shard.ids)
    assert sharded.get("doc-7").text == "text 7" and "doc-7" in sharded and "nope" not in sharded
    assert isinstance(open_index(tmp_path), ShardedIndex)


def test_deletions_in_shards_search_like_one_index(tmp_path):
    """Documents deleted from their shards (and the manifest rewritten) are gone from merged results."""
    whole, x, ids = make_set(tmp_path, n=400, num_shards=2)
    victims = ids[:25]
    for d in victims:
        k = shard_of(d, 2)
        shard = FaissIndex.load(tmp_path / "b1" / shard_name(k, 2))
        shard.delete([d])
        shard.save(tmp_path / "b1" / shard_name(k, 2))
    whole.delete(victims)
    write_manifest(tmp_path, [tmp_path / "b1" / shard_name(k, 2) for k in range(2)])
    sharded = ShardedIndex.load(tmp_path)
    got = sharded.search_vectors(x[:30], k=5)
    expected = whole.search_vectors(x[:30], k=5)
    for e, g in zip(expected, got):
        assert [h.id for h in g] == [h.id for h in e]
        assert not set(victims) & {h.id for h in g}


def test_hnsw_shards_filter_tombstones(tmp_path):
    """HNSW shards need per-shard parameters (efSearch, the tombstone filter): searched one by one, then merged."""
    whole, x, ids = make_set(tmp_path, n=300, num_shards=2, kind="hnsw")
    k0 = shard_of(ids[0], 2)
    shard = FaissIndex.load(tmp_path / "b1" / shard_name(k0, 2))
    shard.delete([ids[0]])  # an HNSW deletion is a tombstone filtered at search time
    shard.save(tmp_path / "b1" / shard_name(k0, 2))
    write_manifest(tmp_path, [tmp_path / "b1" / shard_name(k, 2) for k in range(2)])
    sharded = ShardedIndex.load(tmp_path)
    hits = sharded.search_vectors(x[:3], k=5, ef_search=300)
    assert ids[0] not in [h.id for h in hits[0]]
    assert [h[0].id for h in hits[1:]] == ids[1:3]  # a stored vector finds itself first, score 1
    assert all(abs(h[0].score - 1.0) < 1e-5 for h in hits[1:])


def test_missing_shard_is_refused_with_its_name(tmp_path):
    make_set(tmp_path)
    shutil.rmtree(tmp_path / "b1" / shard_name(1, 3))
    with pytest.raises(ShardSetError, match=r"shard 1 of 3 .*shard-00001-of-00003.* missing"):
        ShardedIndex.load(tmp_path)
    with pytest.raises(ShardSetError, match="missing"):
        ShardedIndex.from_directories([tmp_path / "b1" / shard_name(0, 3), tmp_path / "b1" / shard_name(1, 3)])


def test_shard_from_another_encoder_is_refused(tmp_path):
    make_set(tmp_path / "a")
    make_set(tmp_path / "b", fingerprint="fingerprint-B", seed=1)
    mixed = [tmp_path / "a" / "b1" / shard_name(0, 3), tmp_path / "b" / "b1" / shard_name(1, 3)]
    with pytest.raises(ShardSetError, match="another encoder.*fingerprint-B"):
        ShardedIndex.from_directories(mixed)
    # swapping the file into a set is caught too: the manifest no longer vouches for it
    shutil.rmtree(tmp_path / "a" / "b1" / shard_name(1, 3))
    shutil.copytree(tmp_path / "b" / "b1" / shard_name(1, 3), tmp_path / "a" / "b1" / shard_name(1, 3))
    with pytest.raises(ShardSetError, match="replaced after the set was built"):
        ShardedIndex.load(tmp_path / "a")
    # and a manifest cannot be written over shards of two encoders
    with pytest.raises(ShardSetError, match="another encoder"):
        write_manifest(tmp_path / "a", [tmp_path / "a" / "b1" / shard_name(k, 3) for k in range(3)])


def test_encoder_with_another_fingerprint_is_refused(tmp_path, hash_encoder):
    make_set(tmp_path)
    with pytest.raises(EncoderMismatchError, match="fingerprint-Z"):
        ShardedIndex.load(tmp_path, encoder=hash_encoder(dim=DIM, fingerprint="fingerprint-Z"))


def test_an_id_in_two_shards_is_refused(tmp_path):
    x = vectors(4)
    dirs = []
    for k, rows in enumerate([[0, 1], [1, 2]]):
        shard = FaissIndex(dim=DIM, fingerprint=FP)
        shard.add_embeddings(x[rows], [f"d{i}" for i in rows])
        dirs.append(shard.save(tmp_path / f"s{k}"))
    with pytest.raises(ShardSetError, match="'d1' is stored in shard"):
        ShardedIndex.from_directories(dirs)


def test_manifest_errors_are_clear(tmp_path):
    single = FaissIndex(dim=DIM, fingerprint=FP)
    single.add_embeddings(vectors(3), ["a", "b", "c"])
    single.save(tmp_path / "single")
    with pytest.raises(FileNotFoundError, match="single index"):
        ShardedIndex.load(tmp_path / "single")
    assert isinstance(open_index(tmp_path / "single"), FaissIndex)
    make_set(tmp_path / "set")
    manifest = json.loads((tmp_path / "set" / SHARDS_JSON).read_text())
    manifest["num_shards"] = 4
    (tmp_path / "set" / SHARDS_JSON).write_text(json.dumps(manifest))
    with pytest.raises(ShardSetError, match="num_shards=4"):
        ShardedIndex.load(tmp_path / "set")
