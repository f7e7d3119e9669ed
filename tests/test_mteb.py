"""mteb's harness scores a mote-rag encoder offline, routing each side to its expert, as mote-rag's own evaluation."""

from __future__ import annotations

import numpy as np
import pytest

LIMITS = {"max_queries": 40, "max_corpus": 250}  # the same seeded subsample on both sides


@pytest.fixture(scope="module", autouse=True)
def offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


class RecordingEncoder:
    """Wraps a MoTEModel: remembers (task, text) -> vector, so both harnesses share one embedding per pair, and
    records which task each text was embedded with."""

    def __init__(self, model):
        self.model, self.memo, self.calls = model, {}, []
        self.dim, self.max_seq_length, self.fingerprint = model.dim, model.max_seq_length, model.fingerprint
        self.tasks, self.source = model.tasks, model.source

    def encode_query(self, texts, **kwargs):
        return self.encode(texts, task="search_query", **kwargs)

    def encode_document(self, texts, **kwargs):
        return self.encode(texts, task="search_document", **kwargs)

    def encode(self, texts, task="search_document", batch_size=32, **kwargs):
        task = self.model.tasks.get(task).name
        self.calls.append((task, len(texts)))
        todo = [t for t in dict.fromkeys(texts) if (task, t) not in self.memo]
        if todo:
            for t, v in zip(todo, self.model.encode(todo, task=task, batch_size=batch_size)):
                self.memo[(task, t)] = v
        return np.stack([self.memo[(task, t)] for t in texts])


@pytest.mark.slow
def test_mteb_scifact_matches_mote_rag_evaluation(mote_model, data_dir):
    import mteb

    from mote_rag.evaluation import evaluate, get_suite
    from mote_rag.interop.mteb_model import MTEBEncoder
    from mote_rag.interop.mteb_tasks import local_retrieval_task

    enc = RecordingEncoder(mote_model)
    task = local_retrieval_task(data_dir / "retrieval" / "scifact", name="SciFactLocal", **LIMITS)
    result = mteb.evaluate(MTEBEncoder(enc), task, cache=None, show_progress_bar=False)
    mteb_ndcg = 100 * result.task_results[0].get_score()
    assert {t for t, _ in enc.calls} == {"search_query", "search_document"}
    assert dict(enc.calls)["search_query"] == LIMITS["max_queries"]
    ours = evaluate(enc, suite=get_suite(["scifact"]), limits=LIMITS, show_progress=False)
    ndcg = ours["datasets"]["scifact"]["main_score"]
    assert ours["datasets"]["scifact"]["size"] == {"queries": 40, "corpus": 250}
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
def test_protocol_and_meta(tiny_bert_dir):
    from mteb.models import EncoderProtocol

    from mote_rag import MoTEModel
    from mote_rag.interop.mteb_model import MTEBEncoder

    model = MoTEModel.upcycle(tiny_bert_dir)
    wrapped = MTEBEncoder(model, name="me/tiny-mote")
    assert isinstance(wrapped, EncoderProtocol)
    meta = wrapped.mteb_model_meta
    assert meta.name == "me/tiny-mote" and meta.embed_dim == model.dim and meta.revision == model.fingerprint
    a = model.encode(["a", "b"], task="classification")
    assert np.allclose(np.asarray(wrapped.similarity(a, a)).diagonal(), 1, atol=1e-5)
