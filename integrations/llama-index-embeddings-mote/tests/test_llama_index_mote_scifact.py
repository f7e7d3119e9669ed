"""SciFact end to end through LlamaIndex (VectorStoreIndex + FaissVectorStore): same nDCG@10 as the core
evaluation on the same slice."""

from __future__ import annotations

import faiss
import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.embeddings.mote import MoTEEmbedding
from llama_index.vector_stores.faiss import FaissVectorStore

pytestmark = pytest.mark.slow


def test_vector_store_index_matches_core_evaluation_on_scifact(
    scifact_slice, scifact_encoder, scifact_core, ndcg_at_10
):
    corpus, queries, qrels = scifact_slice
    emb = MoTEEmbedding(scifact_encoder, embed_batch_size=256)
    start = len(scifact_encoder.calls)
    nodes = [TextNode(id_=doc_id, text=text) for doc_id, text in corpus.items()]
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(emb.dim))
    index = VectorStoreIndex(nodes, embed_model=emb, storage_context=StorageContext.from_defaults(vector_store=store))
    retriever = index.as_retriever(similarity_top_k=10)
    run = {
        qid: {hit.node.node_id: float(hit.score) for hit in retriever.retrieve(text)} for qid, text in queries.items()
    }
    # routing: nodes went through search_document, every query through search_query
    calls = scifact_encoder.calls[start:]
    assert {c["task"] for c in calls[: -len(queries)]} == {"search_document"}
    assert sum(c["n"] for c in calls[: -len(queries)]) == len(corpus)
    assert [c["task"] for c in calls[-len(queries) :]] == ["search_query"] * len(queries)

    ndcg = ndcg_at_10(qrels, run)
    core = scifact_core["ndcg@10"]
    print(f"SciFact slice nDCG@10: LlamaIndex VectorStoreIndex+FaissVectorStore {ndcg:.4f}, core {core:.4f}")
    assert ndcg > 0.5  # a real ranking, not two empty runs agreeing
    assert abs(ndcg - core) <= 0.1
    # IndexFlatIP scores are the cosine similarities of the core run (unit vectors), hit for hit
    for qid, hits in run.items():
        assert len(hits) == 10
        for doc_id, score in hits.items():
            np.testing.assert_allclose(score, scifact_core["run"][qid][doc_id], atol=1e-5)
