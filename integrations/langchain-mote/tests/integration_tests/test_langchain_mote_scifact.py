"""SciFact end to end through LangChain's FAISS store and MoTEVectorStore: same nDCG@10 as the core evaluation on the
same slice."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from langchain_core.stores import InMemoryByteStore

with warnings.catch_warnings():  # langchain-community announces its sunset on import; its FAISS store still works
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy

from langchain_mote import MoTEEmbeddings, MoTEVectorStore, cache_backed

pytestmark = pytest.mark.slow


def test_faiss_store_matches_core_evaluation_on_scifact(scifact_slice, scifact_encoder, scifact_core, ndcg_at_10):
    corpus, queries, qrels = scifact_slice
    emb = MoTEEmbeddings(scifact_encoder)
    doc_ids = list(corpus)
    start = len(scifact_encoder.calls)
    store = FAISS.from_texts(
        [corpus[d] for d in doc_ids],
        emb,
        metadatas=[{"doc_id": d} for d in doc_ids],
        ids=doc_ids,
        distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
    )
    run = {}
    for qid, text in queries.items():
        hits = store.similarity_search_with_score(text, k=10)
        run[qid] = {doc.metadata["doc_id"]: float(score) for doc, score in hits}
    # routing: the corpus went through search_document, every query through search_query
    tasks = [c["task"] for c in scifact_encoder.calls[start:]]
    assert tasks == ["search_document"] + ["search_query"] * len(queries)

    ndcg = ndcg_at_10(qrels, run)
    core = scifact_core["ndcg@10"]
    print(f"SciFact slice nDCG@10: LangChain FAISS {ndcg:.4f}, core evaluation {core:.4f}")
    assert ndcg > 0.5  # a real ranking, not two empty runs agreeing
    assert abs(ndcg - core) <= 0.1
    # MAX_INNER_PRODUCT scores are the cosine similarities of the core run (unit vectors), hit for hit
    for qid, hits in run.items():
        assert len(hits) == 10
        for doc_id, score in hits.items():
            np.testing.assert_allclose(score, scifact_core["run"][qid][doc_id], atol=1e-5)


@pytest.mark.parametrize("cached", [False, True], ids=["plain", "cache_backed"])
def test_mote_vector_store_matches_core_evaluation_on_scifact(
    scifact_slice, scifact_encoder, scifact_core, ndcg_at_10, tmp_path, cached
):
    """MoTEVectorStore (FaissIndex underneath), directly or behind cache_backed, then saved and loaded again."""
    corpus, queries, qrels = scifact_slice
    emb = MoTEEmbeddings(scifact_encoder)
    embeddings = cache_backed(emb, InMemoryByteStore()) if cached else emb
    doc_ids = list(corpus)
    start = len(scifact_encoder.calls)
    store = MoTEVectorStore.from_texts([corpus[d] for d in doc_ids], embeddings, ids=doc_ids)
    runs = [
        {
            qid: {doc.id: score for doc, score in store.similarity_search_with_score(text, k=10)}
            for qid, text in queries.items()
        }
    ]
    assert [c["task"] for c in scifact_encoder.calls[start:]] == ["search_document"] + ["search_query"] * len(queries)
    store.save_local(tmp_path / "index")
    loaded = MoTEVectorStore.load_local(tmp_path / "index", embeddings)
    runs.append(
        {
            qid: {doc.id: score for doc, score in loaded.similarity_search_with_score(text, k=10)}
            for qid, text in queries.items()
        }
    )
    if cached:  # the second round of queries came from the query cache: no encoder call
        assert len(scifact_encoder.calls) == start + 1 + len(queries)
    assert runs[0] == runs[1]
    core = scifact_core["ndcg@10"]
    assert ndcg_at_10(qrels, runs[0]) > 0.5 and abs(ndcg_at_10(qrels, runs[0]) - core) <= 1e-4
    for qid, hits in runs[0].items():
        assert len(hits) == 10
        for doc_id, score in hits.items():
            np.testing.assert_allclose(score, scifact_core["run"][qid][doc_id], atol=1e-5)
