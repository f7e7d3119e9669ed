"""MoTEEmbedding's embeddings cache: namespaced by encoder fingerprint and task on every read and write (sync,
async, per-text and batch), checked bit for bit against the uncached class on a model whose query and
document experts differ (tiny_mote), with the encoder calls counted through a recording encoder."""

from __future__ import annotations

import asyncio

import faiss
import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.schema import TextNode
from llama_index.core.storage.kvstore import SimpleKVStore
from llama_index.embeddings.mote import MoTEEmbedding
from llama_index.vector_stores.faiss import FaissVectorStore

pytestmark = pytest.mark.slow

TEXTS = [
    "Aspirin lowers the risk of heart attack.",
    "How do vaccines train the immune system?",
    "Insulin is a hormone made by the pancreas that lets cells take up glucose.",
]


def embed_both(in_order, emb, documents_first: bool, use_async: bool, batch: bool):
    """(text vectors, query vectors) of TEXTS: texts in one batch or one by one, the roles in the given order."""

    async def texts():
        if batch:
            return await emb.aget_text_embedding_batch(TEXTS) if use_async else emb.get_text_embedding_batch(TEXTS)
        return [await emb.aget_text_embedding(t) if use_async else emb.get_text_embedding(t) for t in TEXTS]

    async def queries():
        return [await emb.aget_query_embedding(t) if use_async else emb.get_query_embedding(t) for t in TEXTS]

    return in_order(texts, queries, documents_first)


def reference(in_order, model, batch: bool):
    return embed_both(in_order, MoTEEmbedding(model, embed_batch_size=len(TEXTS)), True, False, batch)


@pytest.mark.parametrize("batch", [False, True], ids=["per-text", "batch"])
@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("documents_first", [True, False], ids=["texts-first", "queries-first"])
def test_each_role_gets_its_own_expert_and_a_second_call_skips_the_encoder(
    tiny_mote, caching_encoder, in_order, documents_first, use_async, batch
):
    ref_texts, ref_queries = reference(in_order, tiny_mote, batch)
    assert np.abs(np.subtract(ref_texts, ref_queries)).max() > 1e-3  # the experts really differ
    spy = caching_encoder(tiny_mote)
    emb = MoTEEmbedding(spy, embed_batch_size=len(TEXTS), embeddings_cache=SimpleKVStore())
    assert embed_both(in_order, emb, documents_first, use_async, batch) == (ref_texts, ref_queries)
    calls = len(spy.calls)
    assert calls == (1 if batch else len(TEXTS)) + len(TEXTS)
    for order in (documents_first, not documents_first):  # everything from the cache now, both orders
        assert embed_both(in_order, emb, order, use_async, batch) == (ref_texts, ref_queries)
        assert embed_both(in_order, emb, order, not use_async, not batch)[1] == ref_queries
    assert len(spy.calls) == calls
    assert emb.embeddings_cache is None  # llama-index-core's text-only keys never see the store


def test_a_second_model_sharing_the_store_gets_its_own_vectors(tiny_mote, other_tiny_mote, caching_encoder, in_order):
    store = SimpleKVStore()
    first = MoTEEmbedding(tiny_mote, embed_batch_size=len(TEXTS), embeddings_cache=store)
    embed_both(in_order, first, True, False, True)
    spy = caching_encoder(other_tiny_mote)
    second = MoTEEmbedding(spy, embed_batch_size=len(TEXTS))
    second.embeddings_cache = store  # assigned after construction: namespaced all the same
    assert second.cache is store
    assert embed_both(in_order, second, True, True, True) == reference(in_order, other_tiny_mote, True)
    assert [c["task"] for c in spy.calls] == ["search_document"] + ["search_query"] * len(TEXTS)
    assert embed_both(in_order, first, False, False, True) == reference(in_order, tiny_mote, True)
    collections = {
        f"embeddings/mote/{m.fingerprint}/{task}"
        for m in (tiny_mote, other_tiny_mote)
        for task in ("search_document", "search_query")
    }
    assert set(store.to_dict()) == collections
    assert first.cache_collection("query_task") == f"embeddings/mote/{tiny_mote.fingerprint}/search_query"
    with pytest.raises(TypeError, match="BaseKVStore"):
        MoTEEmbedding(tiny_mote, embeddings_cache={})


def test_duplicate_texts_in_a_batch_are_encoded_once(tiny_mote, caching_encoder):
    spy = caching_encoder(tiny_mote)
    emb = MoTEEmbedding(spy, embed_batch_size=8, embeddings_cache=SimpleKVStore())
    emb.get_text_embedding_batch(TEXTS[:1])
    vectors = emb.get_text_embedding_batch(TEXTS + TEXTS)
    assert [c["n"] for c in spy.calls] == [1, len(TEXTS) - 1]
    assert vectors[: len(TEXTS)] == vectors[len(TEXTS) :]


def test_mixed_cached_workload_returns_the_uncached_results_exactly(tiny_mote):
    """Index texts as nodes, then ask the same texts (and others) as queries, twice, with a cache: every
    retrieval equals the uncached one, node ids and scores."""
    queries = ["how is insulin made?", *TEXTS]

    def workload(emb):
        out = []
        for _ in range(2):  # the second round is served from the cache when there is one
            index = VectorStoreIndex(
                [TextNode(id_=f"n{i}", text=t) for i, t in enumerate(TEXTS)],
                embed_model=emb,
                storage_context=StorageContext.from_defaults(
                    vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatIP(emb.dim))
                ),
            )
            retriever = index.as_retriever(similarity_top_k=3)
            out += [[(h.node.node_id, h.score) for h in retriever.retrieve(q)] for q in queries]
            out += [[(h.node.node_id, h.score) for h in asyncio.run(retriever.aretrieve(q))] for q in queries]
        return out

    uncached = workload(MoTEEmbedding(tiny_mote))
    assert workload(MoTEEmbedding(tiny_mote, embeddings_cache=SimpleKVStore())) == uncached
