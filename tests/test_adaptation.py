"""Adapting to a collection without re-embedding it: per-path fingerprints, query-only adaptation, collection
experts routed by every front end, resume, and the errors users meet (mote_rag.training.adapt)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from mote_rag.index import EncoderMismatchError, FaissIndex
from mote_rag.index.sharded import ShardedIndex, write_manifest

pytestmark = pytest.mark.slow

DOCS = [f"passage {i} about topic {i % 5}: " + " ".join(f"w{(i * 7 + j) % 50}" for j in range(12)) for i in range(24)]
PAIRS = [(f"question on topic {i % 5} number {i}", DOCS[i]) for i in range(24)]
QUERIES = ["question on topic 3", "what about w12 and w19", "topic 1 number 6"]


def digest(x) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


@pytest.fixture
def base(tiny_bert_dir):
    from mote_rag import MoTEModel

    return MoTEModel.upcycle(tiny_bert_dir, use_prefixes=False)


def adapt_quick(model, **kw):
    from mote_rag.training.adapt import adapt

    kw = {"steps": 4, "batch_size": 8, "learning_rate": 5e-3, "show_progress_bar": False, **kw}
    return adapt(model, PAIRS, **kw)


# ---------------------------------------------------------------------------------------------- fingerprints
def test_path_fingerprint_hashes_only_its_path(base, nudge_experts):
    import torch

    before = {t: base.path_fingerprint(t) for t in base.tasks.names}
    whole = base.fingerprint
    name = base.add_collection_expert("docs")
    assert name == "search_query@docs"
    assert base.path_fingerprint(name) == before["search_query"]  # a fresh copy computes what its source does
    with torch.no_grad():
        for p in base.expert_parameters(name):
            p.add_(0.05)
    base.refresh_fingerprint()
    assert base.path_fingerprint(name) != before["search_query"]
    assert {t: base.path_fingerprint(t) for t in before} == before  # every base path untouched
    assert base.fingerprint != whole
    nudge_experts(base, seed=1)
    assert all(base.path_fingerprint(t) != before[t] for t in before)


def test_collection_expert_routes_and_removes(base):
    name = base.add_collection_expert("docs")
    assert base.tasks.names[-1] == name and base.tasks.get(name).collection == "docs"
    np.testing.assert_array_equal(base.encode(QUERIES, task=name), base.encode_query(QUERIES))
    with pytest.raises(ValueError, match="already has the task"):
        base.add_collection_expert("docs")
    with pytest.raises(ValueError, match="collection name"):
        base.add_collection_expert("bad name")
    with pytest.raises(ValueError, match="base task"):
        base.remove_collection_expert("search_query")
    base.remove_collection_expert(name)
    assert name not in base.tasks


def test_dense_model_has_no_collection_experts(tiny_bert_dir):
    from mote_rag import MoTEModel

    with pytest.raises(ValueError, match="dense model"):
        MoTEModel.dense(tiny_bert_dir).add_collection_expert("docs")


def test_saved_model_keeps_collection_experts(base, tmp_path):
    from mote_rag import MoTEModel

    adapt_quick(base, collection="docs")
    base.save_pretrained(tmp_path / "m")
    loaded = MoTEModel.from_pretrained(tmp_path / "m")
    assert loaded.tasks.names == base.tasks.names
    assert loaded.path_fingerprint("search_query@docs") == base.path_fingerprint("search_query@docs")
    np.testing.assert_array_equal(
        loaded.encode(QUERIES, task="search_query@docs"), base.encode(QUERIES, task="search_query@docs")
    )


# ---------------------------------------------------------------------------------------------- zero re-embedding
def test_query_only_adaptation_opens_the_old_index_with_the_old_vectors(base, tmp_path):
    from mote_rag import MoTEModel

    index = FaissIndex.build(base, DOCS, ids=[f"d{i}" for i in range(len(DOCS))], show_progress_bar=False)
    index.save(tmp_path / "ix")
    doc_before = digest(base.encode_document(DOCS))
    others_before = {t: digest(base.encode(QUERIES, task=t)) for t in base.tasks.names}
    result = adapt_quick(base, side="query")
    assert result.steps == 4 and result.passages == len(DOCS)
    assert digest(base.encode_document(DOCS)) == doc_before  # hash-identical document vectors
    for t in ("search_document", "classification", "clustering"):
        assert digest(base.encode(QUERIES, task=t)) == others_before[t]
    assert digest(base.encode_query(QUERIES)) != others_before["search_query"]  # the query expert did learn
    opened = FaissIndex.load(tmp_path / "ix", encoder=base)  # another whole-model fingerprint, same documents
    assert opened.fingerprint == base.fingerprint
    hits = opened.search(QUERIES[0], k=3)
    expected = opened.search_vectors(base.encode_query(QUERIES[0]), k=3)
    assert [(h.id, h.score) for h in hits] == [(h.id, h.score) for h in expected]
    base.save_pretrained(tmp_path / "adapted")
    FaissIndex.load(tmp_path / "ix", encoder=MoTEModel.from_pretrained(tmp_path / "adapted"))


def test_changed_document_path_is_refused_naming_both_fingerprints(base, tmp_path):
    FaissIndex.build(base, DOCS, show_progress_bar=False).save(tmp_path / "ix")
    stored = base.path_fingerprint("search_document")
    adapt_quick(base, side="both")  # no collection: the shared search_document expert moves
    with pytest.raises(EncoderMismatchError) as err:
        FaissIndex.load(tmp_path / "ix", encoder=base)
    assert stored in str(err.value) and base.path_fingerprint("search_document") in str(err.value)


def test_index_needs_the_query_path_it_routes_to(base, tiny_bert_dir, tmp_path):
    from mote_rag import MoTEModel

    adapt_quick(base, collection="docs")
    FaissIndex.build(base, DOCS, collection="docs", show_progress_bar=False).save(tmp_path / "ix")
    plain = MoTEModel.upcycle(tiny_bert_dir, use_prefixes=False)  # same document path, no collection expert
    with pytest.raises(EncoderMismatchError, match="routes queries to 'search_query@docs'"):
        FaissIndex.load(tmp_path / "ix", encoder=plain)


def test_index_written_before_path_fingerprints_needs_the_whole_model(base, tmp_path):
    FaissIndex.build(base, DOCS, show_progress_bar=False).save(tmp_path / "ix")
    header = json.loads((tmp_path / "ix" / "index.json").read_text())
    for key in ("document_path", "query_path"):
        del header["encoder"][key]
    del header["search_sha256"]  # an older release wrote neither
    (tmp_path / "ix" / "index.json").write_text(json.dumps(header))
    FaissIndex.load(tmp_path / "ix", encoder=base)
    adapt_quick(base, side="query")
    with pytest.raises(EncoderMismatchError, match="was built with encoder fingerprint"):
        FaissIndex.load(tmp_path / "ix", encoder=base)


# ---------------------------------------------------------------------------------------------- routing
@pytest.fixture
def adapted(base):
    """A model with a strongly trained collection expert for 'docs' (so its queries differ from the base's)."""
    adapt_quick(base, collection="docs", steps=6)
    assert digest(base.encode(QUERIES, task="search_query@docs")) != digest(base.encode_query(QUERIES))
    return base


def expected_hits(index, model, task):
    return [
        [(h.id, round(h.score, 5)) for h in row] for row in index.search_vectors(model.encode(QUERIES, task=task), k=4)
    ]


def as_pairs(rows):
    return [[(h.id, round(h.score, 5)) for h in row] for row in rows]


def test_routing_faiss_and_sharded(adapted, tmp_path):
    ids = [f"d{i}" for i in range(len(DOCS))]
    index = FaissIndex.build(adapted, DOCS, ids=ids, collection="docs", show_progress_bar=False)
    assert (index.document_task, index.query_task) == ("search_document", "search_query@docs")
    routed = expected_hits(index, adapted, "search_query@docs")
    assert routed != expected_hits(index, adapted, "search_query")
    assert as_pairs(index.search(QUERIES, k=4)) == routed
    index.save(tmp_path / "ix")
    assert as_pairs(FaissIndex.load(tmp_path / "ix", encoder=adapted).search(QUERIES, k=4)) == routed
    for half, part in enumerate((slice(0, 12), slice(12, 24))):
        shard = FaissIndex.build(adapted, DOCS[part], ids=ids[part], collection="docs", show_progress_bar=False)
        shard.save(tmp_path / "set" / f"shard-{half}")
    write_manifest(tmp_path / "set", [tmp_path / "set" / "shard-0", tmp_path / "set" / "shard-1"])
    sharded = ShardedIndex.load(tmp_path / "set", encoder=adapted)
    assert sharded.query_task == "search_query@docs"
    assert [[h.id for h in row] for row in sharded.search(QUERIES, k=4)] == [[i for i, _ in row] for row in routed]


def test_route_queries_of_an_existing_index_without_reembedding(base, tmp_path):
    index = FaissIndex.build(base, DOCS, show_progress_bar=False)
    index.save(tmp_path / "ix")
    faiss_file = json.loads((tmp_path / "ix" / "index.json").read_text())["faiss_sha256"]
    adapt_quick(base, collection="docs")
    opened = FaissIndex.load(tmp_path / "ix", encoder=base)
    opened.route_queries("search_query@docs")
    opened.save(tmp_path / "ix")
    header = json.loads((tmp_path / "ix" / "index.json").read_text())
    assert header["faiss_sha256"] == faiss_file and header["query_task"] == "search_query@docs"
    again = FaissIndex.load(tmp_path / "ix", encoder=base)
    assert as_pairs(again.search(QUERIES, k=4)) == expected_hits(again, base, "search_query@docs")


def test_routing_langchain_store(adapted, tmp_path):
    from langchain_mote import MoTEEmbeddings, MoTEVectorStore

    emb = MoTEEmbeddings(adapted)  # plain embeddings: query_task search_query
    index = FaissIndex.build(
        adapted, DOCS, ids=[f"d{i}" for i in range(len(DOCS))], collection="docs", show_progress_bar=False
    )
    index.save(tmp_path / "ix")
    store = MoTEVectorStore.load_local(tmp_path / "ix", emb)
    got = [(d.id, round(s, 5)) for d, s in store.similarity_search_with_score(QUERIES[1], k=4)]
    want = [(h.id, round(h.score, 5)) for h in index.search(QUERIES[1], k=4)]
    assert [i for i, _ in got] == [i for i, _ in want]
    base_ids = [h.id for h in index.search_vectors(adapted.encode_query(QUERIES[1]), k=4)]
    assert [i for i, _ in got] != base_ids or got != want  # routed, not the base query expert


def test_unadapted_collections_stay_bit_identical(base):
    before = {t: digest(base.encode(QUERIES + DOCS, task=t)) for t in base.tasks.names}
    adapt_quick(base, collection="docs", side="both")
    assert {t: digest(base.encode(QUERIES + DOCS, task=t)) for t in before} == before
    assert base.tasks.collections() == ["search_query@docs", "search_document@docs"]


# ---------------------------------------------------------------------------------------------- training run
def test_passages_are_embedded_once(base, monkeypatch):
    calls = []
    real = type(base).embed_batch

    def counting(self, texts, tasks, max_length=None):
        calls.append((tasks[0], len(texts)))
        return real(self, texts, tasks, max_length)

    monkeypatch.setattr(type(base), "embed_batch", counting)
    adapt_quick(base, steps=5)
    assert sum(n for t, n in calls if t == "search_document") == len(DOCS)  # once, for the whole run
    assert sum(1 for t, _ in calls if t == "search_query") == 5


def test_resume_gives_the_uninterrupted_run(tiny_bert_dir, tmp_path):
    from mote_rag import MoTEModel
    from mote_rag.training import adapt as adapt_module

    def fresh():
        return MoTEModel.upcycle(tiny_bert_dir, use_prefixes=False)

    whole = fresh()
    adapt_quick(whole, collection="docs", steps=4)
    stopped = fresh()
    real_loss = adapt_module.Adapter.loss
    count = {"n": 0}

    def interrupt(self, rows, cached):
        count["n"] += 1
        if count["n"] == 3:
            raise KeyboardInterrupt
        return real_loss(self, rows, cached)

    adapt_module.Adapter.loss = interrupt
    try:
        with pytest.raises(KeyboardInterrupt):
            adapt_quick(stopped, collection="docs", steps=4, checkpoint_every=2, output_dir=tmp_path / "run")
    finally:
        adapt_module.Adapter.loss = real_loss
    resumed = fresh()
    result = adapt_quick(
        resumed, collection="docs", steps=4, checkpoint_every=2, output_dir=tmp_path / "run", resume=True
    )
    assert result.steps == 4
    assert resumed.path_fingerprint("search_query@docs") == whole.path_fingerprint("search_query@docs")
    with pytest.raises(ValueError, match="another recipe"):
        adapt_quick(fresh(), collection="docs", steps=5, output_dir=tmp_path / "run", resume=True)


def test_evaluation_cache_serves_unchanged_paths(base, tmp_path):
    from mote_rag.evaluation.cache import EmbeddingCache
    from mote_rag.evaluation.runner import Embedder

    cache = EmbeddingCache(tmp_path / "cache")
    Embedder(base, cache, show_progress=False)(DOCS, "search_document", "docs")
    adapt_quick(base, side="query")
    embedder = Embedder(base, cache, show_progress=False)
    embedder(DOCS, "search_document", "docs")
    embedder(QUERIES, "search_query", "queries")
    assert embedder.stats["cached_texts"] == len(DOCS) and embedder.stats["encoded_texts"] == len(QUERIES)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (['{"anchor": "q", "positive": "p"}', '{"anchor": "q2"}'], r"pairs\.jsonl:2: a pair needs"),
        (
            ['{"anchor": "q", "positive": "p"}', "", '{"query": "q", "passage": "  "}'],
            r"pairs\.jsonl:3: field 'passage' is empty",
        ),
        (['{"anchor": 3, "positive": "p"}'], r"pairs\.jsonl:1: field 'anchor' must be a string"),
        (['{"anchor": "q", "positive": "p"}', "not json"], r"pairs\.jsonl:2: not valid JSON"),
    ],
)
def test_bad_pairs_file_names_the_line(tmp_path, lines, match):
    from mote_rag.cli.main import main
    from mote_rag.readers import load_pairs

    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=match):
        load_pairs(path)
    assert main(["adapt", "--pairs", str(path), "-o", str(tmp_path / "out")]) == 2


def test_bad_adapt_options(base, tmp_path, capsys):
    from mote_rag.cli.main import main
    from mote_rag.training.adapt import AdaptConfig, check_pairs

    with pytest.raises(ValueError, match="side must be one of"):
        AdaptConfig(side="documents")
    with pytest.raises(ValueError, match="takes no collection"):
        AdaptConfig(side="all", collection="docs")
    with pytest.raises(ValueError, match="pairs\\[1\\]: the passage"):
        check_pairs([("q", "p"), ("q", "")])
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text('{"anchor": "q", "positive": "p"}\n{"anchor": "r", "positive": "s"}\n')
    assert main(["adapt", "--pairs", str(pairs), "-o", str(tmp_path / "o"), "--batch-size", "1"]) == 2
    assert "--batch-size" in capsys.readouterr().err
    assert main(["adapt", "--pairs", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "o")]) == 2
    assert main(["adapt", "--pairs", str(pairs), "-o", str(tmp_path / "o"), "--collection", "a b"]) == 2


def test_experts_cli(base, tmp_path, capsys):
    from mote_rag.cli.main import main

    base.save_pretrained(tmp_path / "m")
    assert main(["experts", "add", str(tmp_path / "m"), "--collection", "docs"]) == 0
    capsys.readouterr()
    assert main(["experts", "list", str(tmp_path / "m")]) == 0
    listed = json.loads(capsys.readouterr().out)
    by_task = {t["task"]: t for t in listed["tasks"]}
    assert by_task["search_query@docs"]["path_fingerprint"] == by_task["search_query"]["path_fingerprint"]
    assert main(["experts", "add", str(tmp_path / "m"), "--collection", "docs"]) == 2
    assert main(["experts", "remove", str(tmp_path / "m"), "search_query"]) == 2
    assert main(["experts", "remove", str(tmp_path / "m"), "search_query@docs"]) == 0
    capsys.readouterr()
    assert main(["experts", "list", str(tmp_path / "m")]) == 0
    assert "search_query@docs" not in capsys.readouterr().out


def test_adapt_cli_reroutes_an_index_without_reembedding(base, tmp_path, capsys):
    from mote_rag import MoTEModel
    from mote_rag.cli.main import main

    base.save_pretrained(tmp_path / "m")
    FaissIndex.build(base, DOCS, show_progress_bar=False).save(tmp_path / "ix")
    before = json.loads((tmp_path / "ix" / "index.json").read_text())
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"anchor": q, "positive": p}) + "\n" for q, p in PAIRS))
    args = ["adapt", "--model", str(tmp_path / "m"), "--pairs", str(pairs), "--collection", "docs"]
    args += ["-o", str(tmp_path / "out"), "--steps", "2", "--batch-size", "8", "--threads", "1", "-q"]
    assert main([*args, "--index", str(tmp_path / "ix"), "--side", "both"]) == 2  # would need re-embedding
    assert main([*args, "--index", str(tmp_path / "ix")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["index"] == {
        "path": str(tmp_path / "ix"),
        "query_task": "search_query@docs",
        "documents_reembedded": 0,
    }
    after = json.loads((tmp_path / "ix" / "index.json").read_text())
    assert after["faiss_sha256"] == before["faiss_sha256"] and after["query_task"] == "search_query@docs"
    adapted = MoTEModel.from_pretrained(tmp_path / "out")
    index = FaissIndex.load(tmp_path / "ix", encoder=adapted)
    assert as_pairs(index.search(QUERIES, k=4)) == expected_hits(index, adapted, "search_query@docs")


def test_routing_llama_index_store(adapted, tmp_path):
    from llama_index.core import VectorStoreIndex
    from llama_index.embeddings.mote import MoTEEmbedding
    from llama_index.vector_stores.mote import MoTEVectorStore

    ids = [f"d{i}" for i in range(len(DOCS))]
    FaissIndex.build(adapted, DOCS, ids=ids, collection="docs", show_progress_bar=False).save(tmp_path / "ix")
    embed_model = MoTEEmbedding(adapted)  # its query task is the base search_query: the store routes it
    store = MoTEVectorStore.from_persist_dir(tmp_path / "ix", embed_model=embed_model)
    retriever = VectorStoreIndex.from_vector_store(store, embed_model=embed_model).as_retriever(similarity_top_k=4)
    index = FaissIndex.load(tmp_path / "ix", encoder=adapted)
    for query, want in zip(QUERIES, expected_hits(index, adapted, "search_query@docs")):
        got = [(n.node.node_id, round(n.score, 5)) for n in retriever.retrieve(query)]
        assert got == want


def test_evaluate_routes_a_collection(adapted, tmp_path, capsys):
    from mote_rag.cli.main import main
    from mote_rag.evaluation import evaluate
    from mote_rag.evaluation.suite import DatasetSpec, Suite

    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    (beir / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(DOCS))
    )
    (beir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": q}) + "\n" for i, (q, _) in enumerate(PAIRS))
    )
    (beir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(len(PAIRS)))
    )
    suite = Suite("tiny", (DatasetSpec("docs", "retrieval", str(beir)),), root=str(tmp_path))
    explicit = Suite(
        "tiny", (DatasetSpec("docs", "retrieval", str(beir), options={"query_task": "search_query@docs"}),)
    )
    routed = evaluate(adapted, suite, show_progress=False, collection="docs")["datasets"]["docs"]["main_score"]
    plain = evaluate(adapted, suite, show_progress=False)["datasets"]["docs"]["main_score"]
    assert routed == evaluate(adapted, explicit, show_progress=False)["datasets"]["docs"]["main_score"]
    assert routed != plain
    adapted.save_pretrained(tmp_path / "m")
    (tmp_path / "suite.json").write_text(
        json.dumps({"name": "tiny", "datasets": [{"name": "docs", "type": "retrieval", "path": str(beir)}]})
    )
    base_args = [
        "eval",
        "--model",
        str(tmp_path / "m"),
        "--suite",
        str(tmp_path / "suite.json"),
        "--out",
        str(tmp_path / "r"),
        "--quiet",
    ]
    assert main([*base_args, "--collection", "nope"]) == 2
    assert "no expert for the collection 'nope'" in capsys.readouterr().err
    assert main([*base_args, "--collection", "docs"]) == 0
    assert f"{routed:7.2f}" in capsys.readouterr().out


def test_export_writes_a_graph_per_path_and_the_onnx_encoder_opens_the_index(adapted, tmp_path):
    from mote_rag import OnnxEncoder

    adapted.export_onnx(tmp_path / "onnx", tasks=["search_document", "search_query", "search_query@docs"])
    manifest = json.loads((tmp_path / "onnx" / "manifest.json").read_text())
    assert manifest["tasks"]["search_query@docs"]["graphs"]["fp32"] == "search_query@docs.onnx"
    for task, entry in manifest["tasks"].items():
        assert entry["path_fingerprint"] == adapted.path_fingerprint(task)
    enc = OnnxEncoder(tmp_path / "onnx")
    np.testing.assert_allclose(
        enc.encode(QUERIES, task="search_query@docs"), adapted.encode(QUERIES, task="search_query@docs"), atol=1e-5
    )
    FaissIndex.build(adapted, DOCS, collection="docs", show_progress_bar=False).save(tmp_path / "ix")
    index = FaissIndex.load(tmp_path / "ix", encoder=enc)  # torch built it, the ONNX document path opens it
    assert index.query_task == "search_query@docs"
    assert [h.id for h in index.search(QUERIES[0], k=3)] == [
        h.id for h in FaissIndex.load(tmp_path / "ix", encoder=adapted).search(QUERIES[0], k=3)
    ]
