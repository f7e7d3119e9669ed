"""SciFact end to end through LlamaIndex over MoTEVectorStore: VectorStoreIndex -> as_retriever ->
as_query_engine(llm=MockLLM()) on the session's slice gives the core evaluation's nDCG@10 and its scores."""

from __future__ import annotations

import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.schema import TextNode
from llama_index.embeddings.mote import MoTEEmbedding
from llama_index.vector_stores.mote import MoTEVectorStore

pytestmark = pytest.mark.slow


def test_vector_store_index_and_query_engine_match_core_evaluation_on_scifact(
    scifact_slice, scifact_encoder, scifact_core, ndcg_at_10
):
    corpus, queries, qrels = scifact_slice
    emb = MoTEEmbedding(scifact_encoder, embed_batch_size=256)
    store = MoTEVectorStore(emb)
    # plain text nodes, no metadata: LlamaIndex embeds exactly the abstract, as the core evaluation does
    nodes = [TextNode(id_=doc_id, text=text) for doc_id, text in corpus.items()]
    start = len(scifact_encoder.calls)
    index = VectorStoreIndex(nodes, embed_model=emb, storage_context=StorageContext.from_defaults(vector_store=store))
    calls = scifact_encoder.calls[start:]
    assert {c["task"] for c in calls} == {"search_document"} and sum(c["n"] for c in calls) == len(corpus)
    assert len(store.index) == len(corpus)

    retriever = index.as_retriever(similarity_top_k=10)
    engine = index.as_query_engine(llm=MockLLM(max_tokens=8), similarity_top_k=10)  # short answers: refine fits
    start = len(scifact_encoder.calls)
    run, engine_run = {}, {}
    for qid, text in queries.items():
        run[qid] = {hit.node.node_id: float(hit.score) for hit in retriever.retrieve(text)}
        response = engine.query(text)
        engine_run[qid] = {n.node.node_id: float(n.score) for n in response.source_nodes}
        assert str(response)  # the mock LLM answered over the retrieved abstracts
    # every query went through the index's query path (the store embeds it), once per retrieval
    assert [c["task"] for c in scifact_encoder.calls[start:]] == ["search_query"] * (2 * len(queries))

    ndcg, core = ndcg_at_10(qrels, run), scifact_core["ndcg@10"]
    print(f"SciFact slice nDCG@10: LlamaIndex VectorStoreIndex + MoTEVectorStore {ndcg:.4f}, core {core:.4f}")
    assert ndcg > 0.5  # a real ranking, not two empty runs agreeing
    # the core reports a percentage (main_score / 100 here): equal to its last bit of float rounding
    assert ndcg == pytest.approx(core, rel=0, abs=1e-12) and ndcg_at_10(qrels, engine_run) == ndcg
    assert engine_run.keys() == run.keys()
    for qid, hits in run.items():
        assert list(engine_run[qid]) == list(hits)
        assert len(hits) == 10
        for doc_id, score in hits.items():
            np.testing.assert_allclose(score, scifact_core["run"][qid][doc_id], atol=1e-5)
