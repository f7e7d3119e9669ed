"""Figures on real data: the embedded base reproduces its published MTEB STS-B score, retrieval metrics agree
with ranx on SciFact, and the torch (MoTEModel.dense) and sentence-transformers backends give the same scores.

The full-SciFact published-score check (nDCG@10 64.51) takes minutes on 2 cores: benchmarks/eval_default.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import RANX_METRICS, ranx_scores
from mote_rag.evaluation import evaluate, get_suite
from mote_rag.evaluation.metrics import retrieval_metrics

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def plain_base(base_path):
    """all-MiniLM-L6-v2 as published: mean pooling, max_seq_length 256, no prefixes."""
    from mote_rag import MoTEModel

    model = MoTEModel.dense(base_path, use_prefixes=False)
    assert model.max_seq_length == 256
    return model


@pytest.fixture(scope="module")
def st_base(base_path):
    from mote_rag.evaluation import SentenceTransformerEncoder

    return SentenceTransformerEncoder(base_path)


def test_stsb_test_reproduces_published_mteb_score(plain_base, data_dir):
    res = evaluate(plain_base, get_suite(["stsb"]), show_progress=False)["datasets"]["stsb"]
    assert res["size"]["pairs"] == 1379
    assert abs(res["main_score"] - 82.03) <= 0.5, res["main_score"]


def test_scifact_metrics_agree_with_ranx_and_across_backends(plain_base, st_base, data_dir):
    """SciFact subset (20 test queries, their positives + distractors = 80 docs): our metrics equal ranx's
    on the same run to 1e-6, and the sentence-transformers pipeline (the one MTEB's published numbers
    come from) gives the same figures as MoTEModel.dense."""
    limits = {"max_queries": 20, "max_corpus": 80}
    torch_res = evaluate(plain_base, get_suite(["scifact"]), limits=limits, show_progress=False, keep_runs=True)
    st_res = evaluate(st_base, get_suite(["scifact"]), limits=limits, show_progress=False, keep_runs=True)
    for res in (torch_res, st_res):
        d = res["datasets"]["scifact"]
        assert d["size"] == {"queries": 20, "corpus": 80}
        theirs = ranx_scores(d["_qrels"], d["_run"])
        for m in RANX_METRICS:
            assert d["metrics"][m] / 100 == pytest.approx(theirs[m], abs=1e-6), m
    a, b = torch_res["datasets"]["scifact"]["metrics"], st_res["datasets"]["scifact"]["metrics"]
    for m in RANX_METRICS:
        assert a[m] == pytest.approx(b[m], abs=0.5), m
    assert 55 < a["ndcg@10"] <= 100  # the subset keeps every positive: easier than the full corpus (64.5)


def test_full_scifact_qrels_metrics_agree_with_ranx(data_dir):
    """All 300 SciFact test queries against the whole corpus, ranked by a TF-IDF run (no model needed)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from mote_rag.readers import load_beir

    ds = load_beir(data_dir / "retrieval" / "scifact", "test")
    doc_ids, qids = list(ds.corpus), list(ds.queries)
    vec = TfidfVectorizer(sublinear_tf=True)
    sims = (
        vec.fit_transform([ds.corpus[d] for d in doc_ids]) @ vec.transform([ds.queries[q] for q in qids]).T
    ).T.toarray()
    run = {}
    for qi, q in enumerate(qids):
        top = np.argsort(-sims[qi], kind="stable")[:100]
        run[q] = {doc_ids[j]: float(sims[qi, j]) + 1e-9 * (100 - r) for r, j in enumerate(top)}  # no ties
    mine = retrieval_metrics(ds.qrels, run)
    theirs = ranx_scores(ds.qrels, run)
    assert len(ds.qrels) == 300
    for m in RANX_METRICS:
        assert mine[m] == pytest.approx(theirs[m], abs=1e-6), m
    assert 0.3 < mine["ndcg@10"] < 0.9


def test_sentence_transformers_adapter_matches_torch_backend_on_sts(plain_base, st_base):
    suite = get_suite(["sickr"])
    limits = {"max_rows": 200}
    a = evaluate(plain_base, suite, limits=limits, show_progress=False)["datasets"]["sickr"]["main_score"]
    b = evaluate(st_base, suite, limits=limits, show_progress=False)["datasets"]["sickr"]["main_score"]
    assert a == pytest.approx(b, abs=0.05)
    assert st_base.fingerprint != plain_base.fingerprint and len(st_base.fingerprint) == 32
