"""`cache_backed`: LangChain's CacheBackedEmbeddings with one namespace per model and expert.

Every check compares with the uncached MoTEEmbeddings, bit for bit, on a model whose query and document experts
differ (tiny_mote), and counts the encoder calls through a recording encoder.
"""

from __future__ import annotations

import numpy as np
import pytest
from langchain_classic.embeddings import CacheBackedEmbeddings
from langchain_core.stores import InMemoryByteStore
from langchain_mote import MoTEEmbeddings, cache_backed

pytestmark = pytest.mark.slow

TEXTS = [
    "Aspirin lowers the risk of heart attack.",
    "How do vaccines train the immune system?",
    "Insulin is a hormone made by the pancreas that lets cells take up glucose.",
]


def reference(model):
    """The uncached vectors: documents in one batch, queries one by one (how the cached calls below embed)."""
    emb = MoTEEmbeddings(model)
    return emb.embed_documents(TEXTS), [emb.embed_query(t) for t in TEXTS]


def both_roles(in_order, emb, documents_first: bool, use_async: bool):
    """(document vectors, query vectors) of TEXTS, the roles in the given order, sync or async."""

    async def documents():
        return await emb.aembed_documents(TEXTS) if use_async else emb.embed_documents(TEXTS)

    async def queries():
        return [await emb.aembed_query(t) if use_async else emb.embed_query(t) for t in TEXTS]

    return in_order(documents, queries, documents_first)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("documents_first", [True, False], ids=["documents-first", "queries-first"])
def test_each_role_gets_its_own_expert_and_a_second_call_skips_the_encoder(
    tiny_mote, caching_encoder, in_order, documents_first, use_async
):
    ref_docs, ref_queries = reference(tiny_mote)
    assert np.abs(np.subtract(ref_docs, ref_queries)).max() > 1e-3  # the experts really differ
    spy = caching_encoder(tiny_mote)
    emb = cache_backed(MoTEEmbeddings(spy), InMemoryByteStore())
    assert isinstance(emb, CacheBackedEmbeddings)
    docs, queries = both_roles(in_order, emb, documents_first, use_async)
    assert docs == ref_docs and queries == ref_queries
    assert len(spy.calls) == 1 + len(TEXTS)  # one document batch, one call per query
    # second round, both orders: every vector from the cache, none from the encoder
    for order in (documents_first, not documents_first):
        assert both_roles(in_order, emb, order, use_async) == (ref_docs, ref_queries)
    assert len(spy.calls) == 1 + len(TEXTS)


def test_a_second_model_sharing_the_store_gets_its_own_vectors(tiny_mote, other_tiny_mote, caching_encoder, in_order):
    store = InMemoryByteStore()
    first = cache_backed(MoTEEmbeddings(tiny_mote), store, namespace="app:")
    first.embed_documents(TEXTS)
    [first.embed_query(t) for t in TEXTS]
    spy = caching_encoder(other_tiny_mote)
    second = cache_backed(MoTEEmbeddings(spy), store, namespace="app:")
    assert both_roles(in_order, second, True, False) == reference(other_tiny_mote)
    assert [c["task"] for c in spy.calls] == ["search_document"] + ["search_query"] * len(TEXTS)
    assert both_roles(in_order, first, False, False) == reference(tiny_mote)  # the first model's entries are intact
    fp1, fp2 = tiny_mote.fingerprint, other_tiny_mote.fingerprint
    prefixes = {key.rsplit(":", 1)[0] for key in store.yield_keys()}
    assert prefixes == {f"app:mote:{fp}:{task}" for fp in (fp1, fp2) for task in ("search_document", "search_query")}


def test_tasks_are_named_canonically_and_custom_key_encoders_keep_the_namespace(tiny_mote):
    store = InMemoryByteStore()
    emb = cache_backed(
        MoTEEmbeddings(tiny_mote, query_task="query", document_task="passage"),
        store,
        key_encoder=lambda text: f"<{text}>",
    )
    emb.embed_documents(TEXTS[:1])
    emb.embed_query(TEXTS[0])
    fp = tiny_mote.fingerprint
    assert sorted(store.yield_keys()) == sorted(
        [f"mote:{fp}:search_document:<{TEXTS[0]}>", f"mote:{fp}:search_query:<{TEXTS[0]}>"]
    )
    with pytest.raises(TypeError, match="MoTEEmbeddings"):
        cache_backed(
            CacheBackedEmbeddings.from_bytes_store(MoTEEmbeddings(tiny_mote), store, key_encoder="sha256"), store
        )


def test_the_plain_query_cache_path_hands_back_the_wrong_expert(tiny_mote):
    """Why the README warns: LangChain's own query_embedding_cache=True shares one namespace between roles."""
    ref_docs, ref_queries = reference(tiny_mote)
    plain = CacheBackedEmbeddings.from_bytes_store(
        MoTEEmbeddings(tiny_mote), InMemoryByteStore(), namespace="m:", query_embedding_cache=True, key_encoder="sha256"
    )
    plain.embed_documents(TEXTS)
    assert plain.embed_query(TEXTS[0]) == ref_docs[0] != ref_queries[0]
