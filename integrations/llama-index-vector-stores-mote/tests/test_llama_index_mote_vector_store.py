"""llama_index.vector_stores.mote.MoTEVectorStore against LlamaIndex's own expectations.

llama-index-core 0.14 ships no vector-store test helpers (no `llama_index.core.tests` or similar), so the
behaviours of its `SimpleVectorStore` tests (llama-index-core/tests/vector_stores/test_simple.py) are ported:
every case there is a row of `SIMPLE_CASES` below, named after its test, and is run on both stores with the same
nodes, embeddings and query; the ids must equal the upstream expectation and `SimpleVectorStore`'s own result, the
scores its scores. `test_filters_agree_with_simple_vector_store_on_random_metadata` then compares every
FilterOperator and FilterCondition on random metadata. The rest is what the issue asks of this store: routing,
the encoder guard, persistence, shard sets, upsert, MMR and the VectorStoreIndex / query-engine path.
"""

# ruff: noqa: E501 - the ported test_simple.py cases are a table, one case a line
from __future__ import annotations

import random

import numpy as np
import pytest
from llama_index.core import StorageContext, VectorStoreIndex
from llama_index.core.llms import MockLLM
from llama_index.core.schema import Document, MetadataMode, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores import SimpleVectorStore
from llama_index.core.vector_stores.types import (
    ExactMatchFilter,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.embeddings.mote import MoTEEmbedding
from llama_index.vector_stores.mote import MoTEVectorStore

from mote_rag.index import EncoderMismatchError, FaissIndex
from mote_rag.index.sharded import ShardedIndex, shard_name, shard_of, write_manifest

W1_A = "AF3BE6C4-5F43-4D74-B075-6B0E07900DE8"  # the ids of test_simple.py
W2_C = "7D9CD555-846C-445C-A9DD-F8924A01411D"
W3_C = "452D24AB-F185-414C-A352-590B4B9EE51B"


def simple_nodes() -> list[TextNode]:
    """test_simple.py's `_node_embeddings_for_test`."""
    rows = [
        (W1_A, [1.0, 0.0], "test-0", {"weight": 1.0, "rank": "a", "quality": ["medium", "high"], "identifier": "6FTR78Yun"}),
        (W2_C, [0.0, 1.0], "test-1", {"weight": 2.0, "rank": "c", "quality": ["medium"], "identifier": "6FTR78Ygl"}),
        (W3_C, [1.0, 1.0], "test-2", {"weight": 3.0, "rank": "c", "quality": ["low", "medium", "high"], "identifier": "6FTR78Ztl"}),
    ]  # fmt: skip
    return [
        TextNode(
            text="lorem ipsum",
            id_=node_id,
            embedding=emb,
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=source)},
            metadata=meta,
        )
        for node_id, emb, source, meta in rows
    ]


def f(key, op, value) -> MetadataFilter:
    return MetadataFilter(key=key, operator=op, value=value)


# (test in test_simple.py, filters, similarity_top_k, node_ids, expected ids: a list where the order is asserted
# upstream, a set where only the members are)
SIMPLE_CASES = [
    ("test_query_without_filters_returns_all_rows_sorted_by_similarity", None, 3, None, {W1_A, W2_C, W3_C}),
    ("test_query_with_filters_returns_multiple_matches", [ExactMatchFilter(key="rank", value="c")], 3, None, [W3_C, W2_C]),
    ("test_query_with_filter_applies_top_k", [ExactMatchFilter(key="rank", value="c")], 1, None, [W3_C]),
    ("test_query_with_filter_applies_node_id_filter", [ExactMatchFilter(key="rank", value="c")], 3, [W3_C], [W3_C]),
    ("test_query_with_exact_filters_returns_single_match", [ExactMatchFilter(key="rank", value="c"), ExactMatchFilter(key="weight", value=2.0)], 1, None, [W2_C]),
    ("test_query_with_contradictive_filter_returns_no_matches", [ExactMatchFilter(key="weight", value=2), ExactMatchFilter(key="weight", value=3)], 1, None, []),
    ("test_query_with_filter_on_unknown_field_returns_no_matches", [ExactMatchFilter(key="unknown_field", value="c")], 1, None, []),
    ("test_query_with_filters_with_filter_condition (OR)", MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c"), ExactMatchFilter(key="weight", value=1.0)], condition=FilterCondition.OR), 3, None, {W1_A, W2_C, W3_C}),
    ("test_query_with_filters_with_filter_condition (AND)", MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c"), ExactMatchFilter(key="weight", value=1.0)], condition=FilterCondition.AND), 3, None, []),
    ("test_query_with_not_filter_returns_matches", MetadataFilters(filters=[f("rank", FilterOperator.EQ, "a")], condition=FilterCondition.NOT), 3, None, [W3_C, W2_C]),
    ("test_query_with_equal_filter_returns_matches", [f("weight", FilterOperator.EQ, 1.0)], 3, None, [W1_A]),
    ("test_query_with_notequal_filter_returns_matches", [f("weight", FilterOperator.NE, 1.0)], 3, None, [W3_C, W2_C]),
    ("test_query_with_greaterthan_filter_returns_matches", [f("weight", FilterOperator.GT, 1.5)], 3, None, [W3_C, W2_C]),
    ("test_query_with_greaterthanequal_filter_returns_matches", [f("weight", FilterOperator.GTE, 1.0)], 3, None, {W1_A, W2_C, W3_C}),
    ("test_query_with_lessthan_filter_returns_matches", [f("weight", FilterOperator.LT, 1.1)], 3, None, [W1_A]),
    ("test_query_with_lessthanequal_filter_returns_matches", [f("weight", FilterOperator.LTE, 1.0)], 3, None, [W1_A]),
    ("test_query_with_in_filter_returns_matches", [f("rank", FilterOperator.IN, ["a", "c"])], 3, None, {W1_A, W2_C, W3_C}),
    ("test_query_with_notin_filter_returns_matches", [f("rank", FilterOperator.NIN, ["c"])], 3, None, [W1_A]),
    ("test_query_with_contains_filter_returns_matches", [f("quality", FilterOperator.CONTAINS, "high")], 3, None, [W3_C, W1_A]),
    ("test_query_with_textmatch_filter_returns_matches", [f("identifier", FilterOperator.TEXT_MATCH, "6FTR78Y")], 3, None, {W1_A, W2_C}),
    ("test_query_with_any_filter_returns_matches", [f("quality", FilterOperator.ANY, ["high", "low"])], 3, None, [W3_C, W1_A]),
    ("test_query_with_all_filter_returns_matches", [f("quality", FilterOperator.ALL, ["medium", "high"])], 3, None, [W3_C, W1_A]),
    ("test_query_with_is_empty_filter_returns_matches", [f("not_existed_key", FilterOperator.IS_EMPTY, None)], 3, None, {W1_A, W2_C, W3_C}),
]  # fmt: skip


def both_stores(kind: str = "flat", nodes=None):
    nodes = nodes if nodes is not None else simple_nodes()
    simple, mote = SimpleVectorStore(), MoTEVectorStore(index=FaissIndex(dim=len(nodes[0].embedding), kind=kind))
    simple.add(nodes)
    assert mote.add(nodes) == [n.node_id for n in nodes]
    return simple, mote


def as_filters(filters) -> MetadataFilters | None:
    return filters if filters is None or isinstance(filters, MetadataFilters) else MetadataFilters(filters=filters)


def check_same(simple_result, mote_result, expected=None) -> None:
    """Same ids (in order, except among equal scores) and scores as SimpleVectorStore, and the upstream ids."""
    assert sorted(mote_result.ids) == sorted(simple_result.ids)
    np.testing.assert_allclose(mote_result.similarities, simple_result.similarities, atol=1e-6)
    if expected is not None:
        assert (set(mote_result.ids) if isinstance(expected, set) else mote_result.ids) == expected
    scores = dict(zip(mote_result.ids, mote_result.similarities))
    for a, b in zip(mote_result.ids, simple_result.ids):
        assert a == b or abs(scores[a] - scores[b]) < 1e-6  # a different order only among ties


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
@pytest.mark.parametrize("case", SIMPLE_CASES, ids=[c[0] for c in SIMPLE_CASES])
def test_simple_vector_store_cases(case, kind):
    _, filters, k, node_ids, expected = case
    simple, mote = both_stores(kind)
    query = VectorStoreQuery(query_embedding=[1.0, 1.0], similarity_top_k=k, filters=as_filters(filters))
    query.node_ids = node_ids
    check_same(simple.query(query), mote.query(query), expected)
    # a stored text and metadata come back with the node (stores_text)
    for node in mote.query(query).nodes:
        assert node.get_content() == "lorem ipsum" and node.metadata["identifier"].startswith("6FTR78")


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_delete_delete_nodes_and_clear_as_simple_vector_store(kind):
    query = VectorStoreQuery(query_embedding=[1.0, 1.0], similarity_top_k=3)
    # test_delete_removes_document_from_query_results
    simple, mote = both_stores(kind)
    simple.delete("test-1")
    mote.delete("test-1")
    check_same(simple.query(query), mote.query(query), [W3_C, W1_A])
    # test_delete_nodes
    simple, mote = both_stores(kind)
    simple.delete_nodes([W1_A, W2_C])
    mote.delete_nodes([W1_A, W2_C])
    check_same(simple.query(query), mote.query(query), [W3_C])
    # delete_nodes by filter, and by ids and filter together
    simple, mote = both_stores(kind)
    for store in (simple, mote):
        store.delete_nodes(filters=MetadataFilters(filters=[f("weight", FilterOperator.GT, 2.5)]))
        store.delete_nodes([W1_A, W2_C], filters=MetadataFilters(filters=[ExactMatchFilter(key="rank", value="a")]))
    check_same(simple.query(query), mote.query(query), [W2_C])
    # test_clear
    simple, mote = both_stores(kind)
    simple.clear()
    mote.clear()
    check_same(simple.query(query), mote.query(query), [])
    assert len(mote.index) == 0 and mote.get_nodes() == []


def random_nodes(n: int = 60, dim: int = 8, seed: int = 0) -> list[TextNode]:
    rng = random.Random(seed)
    vectors = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    nodes = []
    for i in range(n):
        meta = {
            "year": rng.choice([2019, 2020, 2021, 2022]),
            "score": round(rng.uniform(0, 1), 3),
            "source": rng.choice(["NIH", "CDC", "WHO", "nih"]),
            "tags": rng.sample(["a", "b", "c", "d"], rng.randint(0, 3)),
            "title": rng.choice(["Anaemia in adults", "Asthma", "anaemia and iron", ""]),
        }
        if i % 7 == 0:
            meta.pop("source")  # missing keys: the None branch of the filter function
        nodes.append(
            TextNode(
                id_=f"n{i}",
                text=f"text {i}",
                embedding=vectors[i].tolist(),
                metadata=meta,
                relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc{i % 5}")},
            )
        )
    return nodes


RANDOM_FILTERS = [
    [f("year", FilterOperator.EQ, 2020)],
    [f("year", FilterOperator.NE, 2020)],
    [f("score", FilterOperator.GT, 0.5)],
    [f("score", FilterOperator.GTE, 0.5), f("year", FilterOperator.LT, 2021)],
    [f("score", FilterOperator.LTE, 0.3)],
    [f("source", FilterOperator.IN, ["NIH", "WHO"])],
    [f("source", FilterOperator.NIN, ["NIH", "WHO"])],
    [f("tags", FilterOperator.CONTAINS, "b")],
    [f("title", FilterOperator.TEXT_MATCH, "naemia")],
    [f("title", FilterOperator.TEXT_MATCH_INSENSITIVE, "ANAEMIA")],
    [f("tags", FilterOperator.ANY, ["a", "d"])],
    [f("tags", FilterOperator.ALL, ["a", "b"])],
    [f("tags", FilterOperator.IS_EMPTY, None)],
    [f("source", FilterOperator.IS_EMPTY, None)],
    [f("ref_doc_id", FilterOperator.EQ, "doc3")],  # LlamaIndex's own keys filter too
    MetadataFilters(filters=[f("year", FilterOperator.EQ, 2019), f("source", FilterOperator.EQ, "CDC")], condition=FilterCondition.OR),
    MetadataFilters(filters=[f("year", FilterOperator.EQ, 2019), f("source", FilterOperator.EQ, "CDC")], condition=FilterCondition.NOT),
    [f("_node_content", FilterOperator.IS_EMPTY, None)],  # SimpleVectorStore filters without the serialised node
]  # fmt: skip


@pytest.mark.parametrize("kind", ["flat", "hnsw"])
def test_filters_agree_with_simple_vector_store_on_random_metadata(kind):
    nodes = random_nodes()
    simple, mote = both_stores(kind, nodes)
    queries = np.random.default_rng(1).standard_normal((4, 8)).tolist()
    for filters in RANDOM_FILTERS:
        for q in queries:
            for k in (1, 5, 60):
                query = VectorStoreQuery(query_embedding=q, similarity_top_k=k, filters=as_filters(filters))
                check_same(simple.query(query), mote.query(query))
        # get_nodes and delete_nodes select the same nodes as the query filter
        picked = {n.node_id for n in mote.get_nodes(filters=as_filters(filters))}
        query = VectorStoreQuery(query_embedding=queries[0], similarity_top_k=60, filters=as_filters(filters))
        assert picked == set(simple.query(query).ids)
    # an operator the value type does not allow fails as in SimpleVectorStore
    bad = VectorStoreQuery(
        query_embedding=queries[0], filters=MetadataFilters(filters=[f("year", FilterOperator.TEXT_MATCH, "20")])
    )
    for store in (simple, mote):
        with pytest.raises(TypeError, match="TEXT_MATCH"):
            store.query(bad)


def test_get_nodes_upsert_and_nodes_without_embeddings(encoder):
    simple_store = MoTEVectorStore(index=FaissIndex(dim=2))
    simple_store.add(simple_nodes())
    got = simple_store.get_nodes([W3_C, W1_A])
    assert [n.node_id for n in got] == [W3_C, W1_A]
    assert got[0].ref_doc_id == "test-2" and got[0].metadata["quality"] == ["low", "medium", "high"]
    assert got[0].get_content() == "lorem ipsum" and got[0].embedding is None
    assert [
        n.node_id for n in simple_store.get_nodes(filters=MetadataFilters(filters=[f("rank", FilterOperator.EQ, "c")]))
    ] == [W2_C, W3_C]
    # the same id again replaces text, metadata and vector (SimpleVectorStore overwrites too); last one wins
    node = simple_nodes()[0]
    node.text, node.metadata, node.embedding = "changed", {"rank": "z"}, [0.0, 1.0]
    other = node.model_copy()
    other.text = "changed again"
    simple_store.add([node, other])
    assert len(simple_store.index) == 3 and simple_store.get_nodes([W1_A])[0].get_content() == "changed again"
    result = simple_store.query(VectorStoreQuery(query_embedding=[0.0, 1.0], similarity_top_k=2))
    np.testing.assert_allclose(result.similarities, [1.0, 1.0], atol=1e-6)
    assert set(result.ids) == {W1_A, W2_C}
    # nodes without an embedding are embedded with the index's document path
    store = MoTEVectorStore(MoTEEmbedding(encoder))
    nodes = [TextNode(id_="x", text="insulin and glucose", metadata={"s": "NIH"}), TextNode(id_="y", text="asthma")]
    store.add(nodes)
    shown = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]  # what VectorStoreIndex would embed
    assert shown[0] != "insulin and glucose"
    np.testing.assert_allclose(
        store.index.vectors(["x", "y"]), encoder.encode(shown, task="search_document"), atol=1e-6
    )
    assert [n.get_content() for n in store.get_nodes(["x", "y"])] == ["insulin and glucose", "asthma"]


@pytest.mark.parametrize("threshold", [None, 0.2, 0.8])
def test_mmr_matches_simple_vector_store(threshold):
    nodes = random_nodes(40)
    simple, mote = both_stores("flat", nodes)
    q = np.random.default_rng(2).standard_normal(8).tolist()
    query = VectorStoreQuery(query_embedding=q, similarity_top_k=6, mode=VectorStoreQueryMode.MMR)
    # every stored vector as candidate: SimpleVectorStore's MMR exactly
    got = mote.query(query, mmr_threshold=threshold, mmr_prefetch_k=len(nodes))
    want = simple.query(query, mmr_threshold=threshold)
    assert got.ids == want.ids
    np.testing.assert_allclose(got.similarities, want.similarities, atol=1e-5)
    # the default prefetch (4 x top k) reranks the best candidates; with filters too
    filters = MetadataFilters(filters=[f("year", FilterOperator.GTE, 2020)])
    query.filters = filters
    got = mote.query(query, mmr_threshold=threshold)
    assert len(got.ids) == 6 and {n.metadata["year"] for n in got.nodes} <= {2020, 2021, 2022}
    if threshold == 0.8:  # mostly similarity: the best match comes first
        assert (
            got.ids[0] == simple.query(VectorStoreQuery(query_embedding=q, similarity_top_k=1, filters=filters)).ids[0]
        )


def test_unsupported_modes_and_arguments_are_refused():
    _, mote = both_stores()
    with pytest.raises(ValueError, match="query modes"):
        mote.query(VectorStoreQuery(query_embedding=[1.0, 0.0], mode=VectorStoreQueryMode.SVM))
    with pytest.raises(TypeError, match="unexpected"):
        mote.add(simple_nodes(), refresh=True)
    with pytest.raises(RuntimeError, match="no encoder"):  # no embed model: a text query cannot be embedded
        mote.query(VectorStoreQuery(query_str="lorem"))
    with pytest.raises(EncoderMismatchError, match="dimension"):
        mote.add([TextNode(id_="z", text="t", embedding=[1.0, 0.0, 0.0])])
    with pytest.raises(ValueError, match="embed_model"):
        MoTEVectorStore()
    with pytest.raises(TypeError, match="MoTEEmbedding"):
        MoTEVectorStore(object())


@pytest.fixture()
def recording(encoder, caching_encoder):
    """`encoder` behind the session's recording encoder (every call's task is kept in `.calls`)."""
    return caching_encoder(encoder)


DOCS = [
    "Insulin is a hormone made by the pancreas.",
    "Asthma narrows the airways.",
    "Iron deficiency causes anaemia.",
    "Vaccines train the immune system.",
    "Aspirin lowers the risk of heart attack.",
    "Statins lower cholesterol.",
]
QUESTIONS = ["what causes anaemia?", "how do vaccines work?", "what does insulin do?"]


def test_vector_store_index_routes_documents_and_queries_and_needs_no_docstore(recording, encoder, tmp_path):
    embed_model = MoTEEmbedding(recording)
    store = MoTEVectorStore(embed_model)
    documents = [Document(id_=f"doc{i}", text=t, metadata={"n": i}) for i, t in enumerate(DOCS)]
    start = len(recording.calls)
    index = VectorStoreIndex.from_documents(
        documents, embed_model=embed_model, storage_context=StorageContext.from_defaults(vector_store=store)
    )
    assert {c["task"] for c in recording.calls[start:]} == {"search_document"}
    assert index.index_struct.nodes_dict == {}  # the store keeps the nodes: none in the index struct
    retriever = index.as_retriever(similarity_top_k=3)
    for q in QUESTIONS:
        start = len(recording.calls)
        hits = retriever.retrieve(q)
        assert [c["task"] for c in recording.calls[start:]] == ["search_query"]  # embedded once, by the store
        expected = store.index.search(q, k=3)
        assert [h.node.ref_doc_id for h in hits] == [e.metadata["ref_doc_id"] for e in expected]
        qv = encoder.encode([q], task="search_query")[0]
        shown = [h.node.get_content(metadata_mode=MetadataMode.EMBED) for h in hits]  # what LlamaIndex embedded
        dv = encoder.encode(shown, task="search_document")
        np.testing.assert_allclose([h.score for h in hits], dv @ qv, atol=1e-5)  # cosines of the query path
    # delete a source document through the index
    index.delete_ref_doc("doc2")
    assert "doc2" not in {h.node.ref_doc_id for h in retriever.retrieve(QUESTIONS[0])}
    # persist through the StorageContext, reopen with from_persist_dir and no docstore
    index.storage_context.persist(str(tmp_path / "storage"))
    assert (tmp_path / "storage" / "default__vector_store" / "index.json").is_file()
    reopened = MoTEVectorStore.from_persist_dir(str(tmp_path / "storage"), embed_model=MoTEEmbedding(encoder))
    engine = VectorStoreIndex.from_vector_store(reopened, embed_model=MoTEEmbedding(encoder)).as_query_engine(
        llm=MockLLM(), similarity_top_k=3
    )
    for q in QUESTIONS:
        response = engine.query(q)
        assert [n.node.node_id for n in response.source_nodes] == [h.node.node_id for h in retriever.retrieve(q)]
        assert all(n.node.get_content() in DOCS for n in response.source_nodes) and str(response)
    # the folder is mote-rag's index format: FaissIndex opens it
    assert len(FaissIndex.load(tmp_path / "storage" / "default__vector_store", encoder=encoder)) == len(DOCS) - 1


def test_queries_follow_the_query_path_the_index_records(recording, encoder, tmp_path):
    """An index built for another query path (as a collection expert is) routes the store's queries there, whatever
    the embed model's query_task; the store never asks the embed model for a query vector."""
    index = FaissIndex(recording, query_task="clustering")
    index.add(DOCS, ids=[f"d{i}" for i in range(len(DOCS))])
    index.save(tmp_path / "idx")
    store = MoTEVectorStore.from_persist_dir(tmp_path / "idx", embed_model=MoTEEmbedding(recording))
    assert store.index.query_task == "clustering"
    retriever = VectorStoreIndex.from_vector_store(store, embed_model=MoTEEmbedding(recording)).as_retriever(
        similarity_top_k=2
    )
    for q in QUESTIONS:
        start = len(recording.calls)
        hits = retriever.retrieve(q)
        assert [c["task"] for c in recording.calls[start:]] == ["clustering"]
        want = index.search_vectors(encoder.encode([q], task="clustering")[0], k=2)
        assert [h.node.node_id for h in hits] == [w.id for w in want]
        # the query expert really differs here: the default query path would rank with other scores
        other = index.search_vectors(encoder.encode([q], task="search_query")[0], k=2)
        assert not np.allclose([h.score for h in hits], [o.score for o in other], atol=1e-4)
    # MMR embeds the query text with the same recorded path
    start = len(recording.calls)
    store.query(VectorStoreQuery(query_str=QUESTIONS[0], similarity_top_k=2, mode=VectorStoreQueryMode.MMR))
    assert [c["task"] for c in recording.calls[start:]] == ["clustering"]


def test_another_model_is_refused_with_faiss_index_loads_error(encoder, other_encoder, tmp_path):
    store = MoTEVectorStore(MoTEEmbedding(encoder))
    store.add([TextNode(id_=f"d{i}", text=t) for i, t in enumerate(DOCS)])
    store.persist(tmp_path / "idx")
    with pytest.raises(EncoderMismatchError) as core:
        FaissIndex.load(tmp_path / "idx", encoder=other_encoder)
    with pytest.raises(EncoderMismatchError) as ours:
        MoTEVectorStore.from_persist_dir(tmp_path / "idx", embed_model=MoTEEmbedding(other_encoder))
    assert str(ours.value) == str(core.value)
    # an open index and another model: the same check (only the place named differs)
    with pytest.raises(EncoderMismatchError) as in_memory:
        MoTEVectorStore(MoTEEmbedding(other_encoder), index=FaissIndex.load(tmp_path / "idx"))
    assert str(in_memory.value) == str(core.value).replace(str(tmp_path / "idx"), "in memory")
    # the right model, but nodes embedded by another document path
    with pytest.raises(EncoderMismatchError, match="text_task='search_document'"):
        MoTEVectorStore.from_persist_dir(tmp_path / "idx", embed_model=MoTEEmbedding(encoder, text_task="clustering"))
    # vectors embedded outside mote-rag record no fingerprint: a MoTE model cannot vouch for them
    external = MoTEVectorStore(index=FaissIndex(dim=encoder.dim))
    external.add([TextNode(id_="e", text="t", embedding=np.ones(encoder.dim).tolist())])
    external.persist(tmp_path / "external")
    with pytest.raises(EncoderMismatchError, match="no encoder fingerprint"):
        MoTEVectorStore.from_persist_dir(tmp_path / "external", embed_model=MoTEEmbedding(encoder))
    reopened = MoTEVectorStore.from_persist_dir(tmp_path / "idx", embed_model=MoTEEmbedding(encoder))
    assert len(reopened.index) == len(DOCS)


def test_a_shard_set_opens_read_only_and_answers_like_one_index(encoder, tmp_path):
    ids = [f"d{i}" for i in range(len(DOCS))]
    metas = [{"parity": "even" if i % 2 == 0 else "odd"} for i in range(len(DOCS))]
    whole = MoTEVectorStore(MoTEEmbedding(encoder))
    whole.add([TextNode(id_=i, text=t, metadata=m) for i, t, m in zip(ids, DOCS, metas)])
    dirs = []
    for s in range(2):
        rows = [i for i, d in enumerate(ids) if shard_of(d, 2) == s]
        shard = FaissIndex(encoder, kind="hnsw")
        shard.add_embeddings(
            whole.index.vectors([ids[i] for i in rows]),
            [ids[i] for i in rows],
            [whole.index.get(ids[i]).metadata for i in rows],
            [DOCS[i] for i in rows],
        )
        dirs.append(shard.save(tmp_path / "set" / "b1" / shard_name(s, 2)))
    write_manifest(tmp_path / "set", dirs)
    sharded = MoTEVectorStore.from_persist_dir(tmp_path / "set", embed_model=MoTEEmbedding(encoder))
    assert isinstance(sharded.index, ShardedIndex)
    even = MetadataFilters(filters=[f("parity", FilterOperator.EQ, "even")])
    for q in QUESTIONS:
        for filters in (None, even):
            query = VectorStoreQuery(query_str=q, similarity_top_k=3, filters=filters)
            got, want = sharded.query(query), whole.query(query)
            assert got.ids == want.ids
            np.testing.assert_allclose(got.similarities, want.similarities, atol=1e-6)
        mmr = VectorStoreQuery(query_str=q, similarity_top_k=3, mode=VectorStoreQueryMode.MMR)
        assert sharded.query(mmr).ids == whole.query(mmr).ids
    assert [n.node_id for n in sharded.get_nodes(["d3", "d0"])] == ["d3", "d0"]
    with pytest.raises(NotImplementedError, match="read-only"):
        sharded.add([TextNode(id_="new", text="t", embedding=[0.1] * encoder.dim)])
    with pytest.raises(NotImplementedError, match="read-only"):
        sharded.delete("d1")


@pytest.mark.slow
def test_an_index_built_for_a_collection_routes_queries_to_its_expert(tiny_mote, tmp_path):
    """A collection's query expert (`search_query@medquad`, issue 21): the index records it, and the store's queries
    go there with no argument; a model without that expert is refused; the base index keeps the base path."""
    import copy

    import torch

    model = copy.deepcopy(tiny_mote)
    name = model.add_collection_expert("medquad")
    torch.manual_seed(3)
    with torch.no_grad():
        for p in model.expert_parameters(name):
            p.add_(0.5 * torch.randn_like(p))
    model.refresh_fingerprint()
    ids = [f"d{i}" for i in range(len(DOCS))]
    FaissIndex.build(model, DOCS, ids=ids, collection="medquad", show_progress_bar=False).save(tmp_path / "medquad")
    store = MoTEVectorStore.from_persist_dir(tmp_path / "medquad", embed_model=MoTEEmbedding(model))
    assert (store.index.document_task, store.index.query_task) == ("search_document", name)
    retriever = VectorStoreIndex.from_vector_store(store, embed_model=MoTEEmbedding(model)).as_retriever(
        similarity_top_k=3
    )
    docs = model.encode(DOCS, task="search_document")
    for q in QUESTIONS:
        hits = retriever.retrieve(q)
        want = docs @ model.encode([q], task=name)[0]
        np.testing.assert_allclose([h.score for h in hits], np.sort(want)[::-1][:3], atol=1e-5)
        base = docs @ model.encode([q], task="search_query")[0]
        assert np.abs(np.sort(base)[::-1][:3] - [h.score for h in hits]).max() > 1e-3  # the expert really differs
    # the model without the collection's expert cannot answer this index's queries
    with pytest.raises(EncoderMismatchError, match="search_query@medquad"):
        MoTEVectorStore.from_persist_dir(tmp_path / "medquad", embed_model=MoTEEmbedding(tiny_mote))
    # an index of the same documents built without the collection keeps the base query path, bit for bit
    FaissIndex.build(tiny_mote, DOCS, ids=ids, show_progress_bar=False).save(tmp_path / "base")
    base_store = MoTEVectorStore.from_persist_dir(tmp_path / "base", embed_model=MoTEEmbedding(model))
    got = base_store.query(VectorStoreQuery(query_str=QUESTIONS[0], similarity_top_k=3))
    expected = FaissIndex.load(tmp_path / "base", encoder=tiny_mote).search(QUESTIONS[0], k=3)
    assert got.ids == [h.id for h in expected] and got.similarities == [h.score for h in expected]
