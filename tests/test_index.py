"""FaissIndex behaviour: task paths, cosine scores, kinds, add/delete by id, save/load, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from mote_rag.index.faiss_index import EncoderMismatchError, FaissIndex, Hit, int_id

TEXTS = [
    f"document number {i} talks about {topic}"
    for i, topic in enumerate(
        [
            "vaccines",
            "rivers",
            "tax law",
            "protein folding",
            "jazz",
            "volcanoes",
            "compilers",
            "sleep",
            "tennis",
            "bread",
            "glaciers",
            "insulin",
            "bridges",
            "owls",
            "chess",
            "solar panels",
        ]
        * 3
    )
]


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around 20 random centres: neighbourhoods like real embeddings, not uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, dim))
    x = centres[rng.integers(0, 20, n)] + 0.6 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.slow
def test_search_uses_query_path_and_returns_exact_cosine(tiny_mote):
    ids = [f"t{i}" for i in range(len(TEXTS))]
    metas = [{"n": i} for i in range(len(TEXTS))]
    index = FaissIndex.build(tiny_mote, TEXTS, ids=ids, metadatas=metas, show_progress_bar=False)
    queries = ["which animal hunts at night", "frozen rivers of ice"]
    docs = tiny_mote.encode(TEXTS, task="search_document")
    q = tiny_mote.encode(queries, task="search_query")
    exact = q @ docs.T
    results = index.search(queries, k=5)
    for row, hits in zip(exact, results):
        order = np.argsort(-row)[:5]
        assert [h.id for h in hits] == [ids[i] for i in order]
        np.testing.assert_allclose([h.score for h in hits], row[order], atol=1e-5)
        assert [h.metadata["n"] for h in hits] == list(order)
        assert [h.text for h in hits] == [TEXTS[i] for i in order]
    # the document path would give other scores: the index really embeds queries with search_query
    wrong = tiny_mote.encode(queries, task="search_document") @ docs.T
    assert not np.allclose(np.sort(wrong[0])[-5:][::-1], [h.score for h in results[0]], atol=1e-4)
    single = index.search(queries[0], k=5)
    assert isinstance(single[0], Hit) and [h.id for h in single] == [h.id for h in results[0]]
    assert index.info()["query_task"] == "search_query" and index.info()["count"] == len(TEXTS)


@pytest.mark.parametrize(
    "kind,params,min_recall", [("hnsw", {"M": 16}, 0.97), ("ivfpq", {"nprobe": 32, "pq_m": 8}, 0.5)]
)
def test_approximate_kinds_recall_against_flat(kind, params, min_recall):
    x = clustered(4000, 32)
    q = clustered(100, 32, seed=1)
    ids = [f"v{i}" for i in range(len(x))]
    flat = FaissIndex(dim=32, fingerprint="fp")
    flat.add_embeddings(x, ids)
    approx = FaissIndex(dim=32, kind=kind, fingerprint="fp", **params)
    approx.add_embeddings(x, ids)
    truth = [[h.id for h in row] for row in flat.search_vectors(q, 10)]
    got = [[h.id for h in row] for row in approx.search_vectors(q, 10)]
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(truth, got)])
    assert recall >= min_recall
    if kind == "hnsw":  # HNSW scores are exact inner products of the stored vectors
        top = flat.search_vectors(q[0], 1)[0]
        assert approx.search_vectors(q[0], 1)[0].score == pytest.approx(top.score, abs=1e-5)
    else:
        assert approx.params["nlist"] > 1 and approx.params["nbits"] == 6  # auto: 4000 >= 39 * 2**6


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq"])
def test_delete_then_readd_and_roundtrip(kind, tmp_path):
    x = clustered(2000, 16)
    ids = [f"v{i}" for i in range(len(x))]
    index = FaissIndex(dim=16, kind=kind, fingerprint="fp", **({"pq_m": 8} if kind == "ivfpq" else {}))
    index.add_embeddings(x, ids, [{"i": i} for i in range(len(x))])
    top = [h.id for h in index.search_vectors(x[7], 10)]
    assert "v7" in (top if kind == "ivfpq" else top[:1])  # IVF-PQ ranks by approximate scores
    assert index.delete(["v7", "v8"]) == 2
    assert "v7" not in index and len(index) == 1998
    assert all(h.id not in ("v7", "v8") for h in index.search_vectors(x[7], 50))
    with pytest.raises(KeyError, match="v7"):
        index.delete(["v7"])
    with pytest.raises(ValueError, match="already in the index"):
        index.add_embeddings(x[:1], ["v1"])
    index.add_embeddings(x[7:8] * -1, ["v7"], [{"again": True}])  # same id, new vector
    hits = {h.id: h for h in index.search_vectors(-x[7], 10 if kind == "ivfpq" else 1)}
    assert hits["v7"].metadata == {"again": True}
    before = index.search_vectors(x[:20], 5)
    index.save(tmp_path / "ix")
    loaded = FaissIndex.load(tmp_path / "ix")
    assert len(loaded) == len(index) and loaded.kind == kind and loaded.params == index.params
    assert [[(h.id, round(h.score, 5)) for h in r] for r in loaded.search_vectors(x[:20], 5)] == [
        [(h.id, round(h.score, 5)) for h in r] for r in before
    ]
    assert loaded.get("v3").metadata == {"i": 3}


def test_hnsw_compacts_when_tombstones_pile_up():
    x = clustered(400, 16)
    index = FaissIndex(dim=16, kind="hnsw", fingerprint="fp")
    index.add_embeddings(x, [f"v{i}" for i in range(400)])
    index.delete([f"v{i}" for i in range(50)])
    assert index.faiss_index.ntotal == 400 and index.info()["tombstones"] == 50
    index.delete([f"v{i}" for i in range(50, 120)])  # 120 > 25% of 400: rebuilt
    assert index.faiss_index.ntotal == 280 and index.info()["tombstones"] == 0
    assert index.search_vectors(x[200], 1)[0].id == "v200"
    assert {h.id for h in index.search_vectors(x[:120], 3)[5]}.isdisjoint({f"v{i}" for i in range(120)})


def test_bad_inputs_are_clear():
    index = FaissIndex(dim=8, fingerprint="fp")
    with pytest.raises(EncoderMismatchError, match="dimension 5 but the index holds 8"):
        index.add_embeddings(np.ones((2, 5)), ["a", "b"])
    with pytest.raises(ValueError, match="duplicate id"):
        index.add_embeddings(np.ones((2, 8)), ["a", "a"])
    with pytest.raises(ValueError, match="all-zero"):
        index.add_embeddings(np.zeros((1, 8)), ["z"])
    with pytest.raises(TypeError, match="JSON"):
        index.add_embeddings(np.ones((1, 8)), ["a"], [{"x": object()}])
    with pytest.raises(ValueError, match="unknown index kind"):
        FaissIndex(dim=8, kind="lsh")
    with pytest.raises(ValueError, match="unknown option"):
        FaissIndex(dim=8, kind="hnsw", nprobe=3)
    with pytest.raises(RuntimeError, match="no encoder"):
        index.search("a query")
    with pytest.raises(ValueError, match="IVF-PQ"):
        FaissIndex(dim=8, kind="ivfpq").add_embeddings(np.eye(8), list("abcdefgh"))
    assert index.search_vectors(np.ones(8), 3) == []  # empty index: no hits, no error


def test_int_ids_are_stable_and_shard_friendly():
    import faiss

    assert int_id("doc-1") == int_id("doc-1") != int_id("doc-2")
    assert 0 <= int_id("x" * 1000) < 2**63
    # two shards searched together through faiss.IndexShards resolve through either shard's id table
    x = clustered(600, 16)
    shards = [FaissIndex(dim=16, fingerprint="fp") for _ in range(2)]
    shards[0].add_embeddings(x[:300], [f"v{i}" for i in range(300)])
    shards[1].add_embeddings(x[300:], [f"v{i}" for i in range(300, 600)])
    merged = faiss.IndexShards(16, False, False)
    for s in shards:
        merged.add_shard(s.faiss_index)
    _, labels = merged.search(x[[10, 450]], 1)
    hits = [next(h for s in shards if (h := s.lookup(lab))) for lab in labels[:, 0]]
    assert [h.id for h in hits] == ["v10", "v450"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_eight_threads_match_sequential(tiny_mote, kind):
    index = FaissIndex.build(
        tiny_mote, TEXTS, ids=[f"t{i}" for i in range(len(TEXTS))], kind=kind, show_progress_bar=False
    )
    queries = [f"question {i} about {w}" for i, w in enumerate(["ice", "music", "law", "sleep", "food"] * 8)]
    sequential = [[(h.id, h.score) for h in index.search(q, k=5)] for q in queries]
    with ThreadPoolExecutor(max_workers=8) as pool:
        parallel = list(pool.map(lambda q: [(h.id, h.score) for h in index.search(q, k=5)], queries))
    assert [[i for i, _ in r] for r in parallel] == [[i for i, _ in r] for r in sequential]
    np.testing.assert_allclose(
        [[s for _, s in r] for r in parallel], [[s for _, s in r] for r in sequential], atol=1e-6
    )
