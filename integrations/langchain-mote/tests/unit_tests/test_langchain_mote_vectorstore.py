"""MoTEVectorStore behaviour beyond the standard suites: routing, the fingerprint guard on save/load, shard sets,
metadata filters, MMR, and a mixed cached workload that must equal the uncached one exactly. The encoder is the
torch-free HashEncoder (fast tier); the real models' routing through the store is in the slow tests."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from langchain_classic.embeddings import CacheBackedEmbeddings
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.stores import InMemoryByteStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from langchain_mote import MoTEEmbeddings, MoTEVectorStore, cache_backed

from mote_rag.atomic import LOCK_NAME
from mote_rag.index import EncoderMismatchError, FaissIndex
from mote_rag.index.sharded import ShardedIndex, shard_name, shard_of, write_manifest

TEXTS = [
    f"{topic} note {i}: {detail}"
    for i, (topic, detail) in enumerate(
        [
            (t, d)
            for t in ("diabetes", "asthma", "anaemia", "vaccines")
            for d in ("symptoms and signs", "treatment options", "causes and risks", "tests and diagnosis", "outlook")
        ]
    )
]
IDS = [f"doc-{i}" for i in range(len(TEXTS))]
METAS = [{"topic": t.split()[0], "i": i, "even": i % 2 == 0} for i, t in enumerate(TEXTS)]
QUERIES = ["how is diabetes treated?", "what causes anaemia?", TEXTS[3], TEXTS[11]]


def ranked(store, query, k=5, **kwargs):
    return [(doc.id, score) for doc, score in store.similarity_search_with_score(query, k=k, **kwargs)]


def brute_force(emb, query, k, keep=lambda meta: True):
    """The exact answer: cosine of the query (query expert) with every kept document (document expert)."""
    docs = np.asarray(emb.embed_documents(TEXTS), np.float32)
    q = np.asarray(emb.embed_query(query), np.float32)
    order = [i for i in np.argsort(-(docs @ q), kind="stable") if keep(METAS[i])]
    return [IDS[i] for i in order[:k]]


@pytest.fixture()
def store(encoder):
    return MoTEVectorStore.from_texts(TEXTS, MoTEEmbeddings(encoder), metadatas=METAS, ids=IDS)


def test_documents_and_queries_take_their_own_experts(encoder, caching_encoder):
    spy = caching_encoder(encoder)
    store = MoTEVectorStore.from_texts(TEXTS, MoTEEmbeddings(spy, batch_size=8), ids=IDS)
    store.similarity_search(QUERIES[0], k=3)
    assert [(c["task"], c["n"]) for c in spy.calls] == [("search_document", len(TEXTS)), ("search_query", 1)]
    assert store.index.document_task == "search_document" and store.index.query_task == "search_query"
    assert [doc.id for doc in store.similarity_search(QUERIES[0], k=3)] == brute_force(
        MoTEEmbeddings(encoder), QUERIES[0], 3
    )


def test_scores_are_cosines_and_relevance_maps_them_onto_0_1(store, encoder):
    emb = MoTEEmbeddings(encoder)
    q = np.asarray(emb.embed_query(QUERIES[1]))
    docs = dict(zip(IDS, np.asarray(emb.embed_documents(TEXTS))))
    hits = ranked(store, QUERIES[1])
    np.testing.assert_allclose([s for _, s in hits], [docs[i] @ q for i, _ in hits], atol=1e-6)
    relevance = store.similarity_search_with_relevance_scores(QUERIES[1], k=5)
    np.testing.assert_allclose([r for _, r in relevance], [(1 + s) / 2 for _, s in hits], atol=1e-7)
    # a document asked as itself through the same expert: cosine 1 (give or take an ulp), relevance exactly <= 1
    same = MoTEVectorStore.from_texts(TEXTS, MoTEEmbeddings(encoder, query_task="search_document"), ids=IDS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # LangChain warns about relevance scores outside [0, 1]
        best = [same.similarity_search_with_relevance_scores(t, k=1)[0] for t in TEXTS]
    assert [d.id for d, _ in best] == IDS and all(0.9999 < r <= 1.0 for _, r in best)


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_save_and_load_round_trip_without_pickle(encoder, tmp_path, kind):
    emb = MoTEEmbeddings(encoder)
    store = MoTEVectorStore.from_texts(TEXTS, emb, metadatas=METAS, ids=IDS, kind=kind)
    store.delete(IDS[:3])
    store.save_local(tmp_path / "idx")
    files = sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name != LOCK_NAME)  # + the writer lock
    assert files[1] == "index.json" and files[0].startswith("index.") and files[0].endswith(".faiss")
    loaded = MoTEVectorStore.load_local(tmp_path / "idx", emb)
    assert loaded.index.kind == kind and len(loaded.index) == len(TEXTS) - 3
    assert loaded.index.read_header(tmp_path / "idx").fingerprint == encoder.fingerprint
    for q in QUERIES:
        assert ranked(loaded, q) == ranked(store, q)
    assert loaded.get_by_ids(["doc-5", "doc-0", "doc-7"]) == store.get_by_ids(["doc-5", "doc-7"])[
        :1
    ] + store.get_by_ids(["doc-7"])


def test_load_local_refuses_another_encoder_with_faiss_index_loads_error(encoder, other_encoder, tmp_path):
    MoTEVectorStore.from_texts(TEXTS, MoTEEmbeddings(encoder), ids=IDS).save_local(tmp_path / "idx")
    with pytest.raises(EncoderMismatchError) as core:
        FaissIndex.load(tmp_path / "idx", encoder=other_encoder)
    with pytest.raises(EncoderMismatchError) as ours:
        MoTEVectorStore.load_local(tmp_path / "idx", MoTEEmbeddings(other_encoder))
    assert str(ours.value) == str(core.value) and encoder.fingerprint in str(ours.value)
    # wrapped in a cache, still recognised; embeddings that are not MoTE cannot vouch for the fingerprint
    with pytest.raises(EncoderMismatchError, match="fingerprint"):
        MoTEVectorStore.load_local(tmp_path / "idx", cache_backed(MoTEEmbeddings(other_encoder), InMemoryByteStore()))
    with pytest.raises(EncoderMismatchError, match="not MoTEEmbeddings"):
        MoTEVectorStore.load_local(tmp_path / "idx", DeterministicFakeEmbedding(size=encoder.dim))
    # the same model with another query expert would compare vectors the index was not built for
    with pytest.raises(EncoderMismatchError, match="query_task='search_query'"):
        MoTEVectorStore.load_local(tmp_path / "idx", MoTEEmbeddings(encoder, query_task="clustering"))
    with pytest.raises(EncoderMismatchError, match="fingerprint"):
        MoTEVectorStore(MoTEEmbeddings(other_encoder), FaissIndex.load(tmp_path / "idx"))
    assert len(MoTEVectorStore.load_local(tmp_path / "idx", MoTEEmbeddings(encoder)).index) == len(TEXTS)
    # an index built with other embeddings records no fingerprint: MoTE embeddings of the same size refuse it
    fake = DeterministicFakeEmbedding(size=encoder.dim)
    MoTEVectorStore.from_texts(TEXTS, fake, ids=IDS).save_local(tmp_path / "fake")
    with pytest.raises(EncoderMismatchError, match="no encoder fingerprint"):
        MoTEVectorStore.load_local(tmp_path / "fake", MoTEEmbeddings(encoder))
    assert len(MoTEVectorStore.load_local(tmp_path / "fake", fake, allow_dangerous_deserialization=True).index) == 20


def test_a_shard_set_opens_read_only_and_searches_like_one_index(encoder, tmp_path, store):
    emb = MoTEEmbeddings(encoder)
    vectors = np.asarray(emb.embed_documents(TEXTS), np.float32)
    dirs = []
    for k in range(2):
        rows = [i for i, d in enumerate(IDS) if shard_of(d, 2) == k]
        shard = FaissIndex(encoder, kind="hnsw")
        shard.add_embeddings(vectors[rows], [IDS[i] for i in rows], [METAS[i] for i in rows], [TEXTS[i] for i in rows])
        dirs.append(shard.save(tmp_path / "set" / "b1" / shard_name(k, 2)))
    write_manifest(tmp_path / "set", dirs)
    sharded = MoTEVectorStore.load_local(tmp_path / "set", emb)
    assert isinstance(sharded.index, ShardedIndex)
    for q in QUERIES:
        assert [i for i, _ in ranked(sharded, q)] == [i for i, _ in ranked(store, q)]
        np.testing.assert_allclose([s for _, s in ranked(sharded, q)], [s for _, s in ranked(store, q)], atol=1e-6)
        assert [d.id for d in sharded.max_marginal_relevance_search(q, k=4, fetch_k=10)] == [
            d.id for d in store.max_marginal_relevance_search(q, k=4, fetch_k=10)
        ]
    assert sharded.get_by_ids(["doc-1", "nope", "doc-0"]) == store.get_by_ids(["doc-1", "doc-0"])
    with pytest.raises(NotImplementedError, match="read-only"):
        sharded.add_texts(["more"])
    with pytest.raises(NotImplementedError, match="read-only"):
        sharded.delete(["doc-1"])
    with pytest.raises(EncoderMismatchError):
        MoTEVectorStore.load_local(tmp_path / "set", MoTEEmbeddings(encoder, document_task="clustering"))


@pytest.mark.parametrize(
    "flt, keep",
    [
        ({"topic": "asthma"}, lambda m: m["topic"] == "asthma"),
        (
            {"topic": ["anaemia", "vaccines"], "even": True},
            lambda m: m["topic"] in ("anaemia", "vaccines") and m["even"],
        ),
        (lambda m: m["i"] % 7 == 3, lambda m: m["i"] % 7 == 3),
        ({"missing-key": 1}, lambda m: False),
    ],
    ids=["equal", "any-of-and-equal", "callable", "no-match"],
)
@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_filters_give_the_exact_top_k_among_matching_documents(encoder, flt, keep, kind):
    emb = MoTEEmbeddings(encoder)
    store = MoTEVectorStore.from_texts(TEXTS, emb, metadatas=METAS, ids=IDS, kind=kind)
    for q in QUERIES:
        # fetch_k=2 forces the search to widen until enough matches are found
        got = [d.id for d in store.similarity_search(q, k=3, filter=flt, fetch_k=2)]
        assert got == brute_force(emb, q, 3, keep)
        assert all(keep(d.metadata) for d in store.as_retriever(k=3, filter=flt).invoke(q))
    with pytest.raises(TypeError, match="filter"):
        store.similarity_search(QUERIES[0], filter=["topic"])


def test_mmr_uses_the_stored_vectors(store, encoder):
    emb = MoTEEmbeddings(encoder)
    q = QUERIES[0]
    candidates = [d.id for d in store.similarity_search(q, k=10)]
    vectors = np.asarray(emb.embed_documents([TEXTS[IDS.index(i)] for i in candidates]), np.float32)
    for lam in (0.0, 0.5, 1.0):
        expected = [
            candidates[i]
            for i in maximal_marginal_relevance(np.asarray(emb.embed_query(q)), vectors, lambda_mult=lam, k=4)
        ]
        assert [d.id for d in store.max_marginal_relevance_search(q, k=4, fetch_k=10, lambda_mult=lam)] == expected
    assert [d.id for d in store.max_marginal_relevance_search(q, k=4, fetch_k=10, lambda_mult=1.0)] == candidates[:4]
    mmr = store.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 10, "filter": {"even": True}})
    assert all(d.metadata["even"] for d in mmr.invoke(q)) and len(mmr.invoke(q)) == 3


def test_ivfpq_store_embeds_mmr_candidates_again():
    """IVF-PQ keeps codes, not vectors: MMR embeds the fetched candidates' texts again."""
    emb = DeterministicFakeEmbedding(size=8)
    texts = [f"text {i}" for i in range(64)]
    store = MoTEVectorStore.from_texts(texts, emb, kind="ivfpq", nlist=2, pq_m=2, nbits=4)
    q = emb.embed_query("text 5")
    candidates = [d.page_content for d in store.similarity_search_by_vector(q, k=8)]
    chosen = maximal_marginal_relevance(
        np.asarray(q, np.float32), np.asarray(emb.embed_documents(candidates), np.float32), k=3
    )
    assert [d.page_content for d in store.max_marginal_relevance_search_by_vector(q, k=3, fetch_k=8)] == [
        candidates[i] for i in chosen
    ]
    with pytest.raises(ValueError, match="nbits"):
        MoTEVectorStore.from_texts(texts[:3], emb, kind="ivfpq")


def test_mixed_cached_workload_returns_the_uncached_results_exactly(encoder):
    """Index texts as documents, then ask the same texts (and others) as queries, twice, through cache_backed:
    every result equals the uncached store's, ids and scores; LangChain's plain query cache does not."""

    def workload(emb):
        store = MoTEVectorStore.from_texts(TEXTS, emb, metadatas=METAS, ids=IDS)
        out = [ranked(store, q) for q in QUERIES + TEXTS[:6]]
        store.add_texts(TEXTS[:4], METAS[:4], ids=IDS[:4])  # re-indexing hits the document cache
        return out + [ranked(store, q) for q in QUERIES + TEXTS[:6]]

    uncached = workload(MoTEEmbeddings(encoder))
    assert workload(cache_backed(MoTEEmbeddings(encoder), InMemoryByteStore())) == uncached
    plain = CacheBackedEmbeddings.from_bytes_store(
        MoTEEmbeddings(encoder), InMemoryByteStore(), query_embedding_cache=True, key_encoder="sha256"
    )
    assert workload(plain) != uncached


def test_bad_arguments(encoder, store):
    with pytest.raises(ValueError, match="unknown index kind"):
        MoTEVectorStore(MoTEEmbeddings(encoder), kind="annoy")
    with pytest.raises(ValueError, match="unknown option"):
        MoTEVectorStore(DeterministicFakeEmbedding(size=4), kind="hnsw", M_max=3)
    with pytest.raises(TypeError, match="unexpected"):
        store.similarity_search("q", k=2, score_treshold=0.3)
    with pytest.raises(ValueError, match="duplicate"):
        store.add_texts(["a", "b"], ids=["x", "x"])
    with pytest.raises(TypeError, match="JSON"):  # nothing replaced when the new entries are invalid
        store.add_texts([TEXTS[0]], [{"bad": object()}], ids=[IDS[0]])
    assert store.get_by_ids([IDS[0]])[0].page_content == TEXTS[0]
    with pytest.raises(ValueError, match="nothing to save"):
        MoTEVectorStore(DeterministicFakeEmbedding(size=4)).save_local("unused")
