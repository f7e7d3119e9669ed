"""mteb's harness scores a mote-rag encoder offline, routing each side to its expert, as mote-rag's own evaluation."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module", autouse=True)
def offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.mark.slow
def test_mteb_scifact_matches_mote_rag_evaluation(scifact_encoder, scifact_limits, data_dir):
    """On the session's SciFact slice, through the session's caching encoder (the MiniLM MoTE's ONNX export): both
    harnesses score the same vectors, each embedded once per session."""
    import mteb

    from mote_rag.evaluation import evaluate, get_suite
    from mote_rag.interop.mteb_model import MTEBEncoder
    from mote_rag.interop.mteb_tasks import local_retrieval_task

    enc, start = scifact_encoder, len(scifact_encoder.calls)
    task = local_retrieval_task(data_dir / "retrieval" / "scifact", name="SciFactLocal", **scifact_limits)
    result = mteb.evaluate(MTEBEncoder(enc), task, cache=None, show_progress_bar=False)
    mteb_ndcg = 100 * result.task_results[0].get_score()
    calls = [(c["task"], c["n"]) for c in enc.calls[start:]]
    assert {t for t, _ in calls} == {"search_query", "search_document"}
    assert sum(n for t, n in calls if t == "search_query") == scifact_limits["max_queries"]
    ours = evaluate(enc, suite=get_suite(["scifact"]), limits=scifact_limits, show_progress=False)
    ndcg = ours["datasets"]["scifact"]["main_score"]
    assert ours["datasets"]["scifact"]["size"] == {"queries": 40, "corpus": 300}
    assert abs(mteb_ndcg - ndcg) <= 0.01, (mteb_ndcg, ndcg)
    assert ndcg > 30  # a real ranking, not two empty ones agreeing


@pytest.mark.parametrize(
    "task_type,prompt_type,expected",
    [
        ("Retrieval", "query", "search_query"),
        ("Retrieval", "document", "search_document"),
        ("Reranking", "query", "search_query"),
        ("STS", None, "classification"),
        ("PairClassification", None, "classification"),
        ("Classification", None, "classification"),
        ("Clustering", None, "clustering"),
        ("Retrieval", None, "search_document"),
    ],
)
def test_routing_table(task_type, prompt_type, expected):
    from mteb.types import PromptType

    from mote_rag.interop.mteb_model import MTEBEncoder

    assert MTEBEncoder.task_for(task_type, PromptType(prompt_type) if prompt_type else None) == expected


@pytest.mark.slow
def test_protocol_and_meta(tiny_mote):
    from mteb.models import EncoderProtocol

    from mote_rag.interop.mteb_model import MTEBEncoder

    model = tiny_mote
    wrapped = MTEBEncoder(model, name="me/tiny-mote")
    assert isinstance(wrapped, EncoderProtocol)
    meta = wrapped.mteb_model_meta
    assert meta.name == "me/tiny-mote" and meta.embed_dim == model.dim and meta.revision == model.fingerprint
    a = model.encode(["a", "b"], task="classification")
    assert np.allclose(np.asarray(wrapped.similarity(a, a)).diagonal(), 1, atol=1e-5)
