"""mote-rag's evaluation reads MTEB's reranking JSON Lines ({"query", "positive", "negative"}) as it is."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mote_rag.evaluation import evaluate, load_suite
from mote_rag.evaluation.metrics import average_precision, reciprocal_rank

ROWS = [
    {
        "query": "what causes anemia",
        "positive": ["anemia is caused by low iron"],
        "negative": ["insulin treats diabetes", "flu is a virus", "iron rich food and anemia risk"],
    },
    {
        "query": "how is diabetes treated",
        "positive": ["insulin treats diabetes", "diet helps diabetes"],
        "negative": ["anemia is caused by low iron", "rest treats flu"],
    },
    {"query": "is flu a virus", "positive": ["flu is a virus"], "negative": ["rest treats flu", "diet helps diabetes"]},
    {"query": "rest and flu", "positive": ["flu is a virus"], "negative": ["rest and flu"]},  # a negative ranks first
]


def write_suite(tmp_path, rows) -> str:
    (tmp_path / "rerank.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = {"name": "mine", "datasets": [{"name": "my_rerank", "type": "reranking", "path": "rerank.jsonl"}]}
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    return str(tmp_path / "suite.json")


def test_scores_match_direct_computation_and_sides_use_their_experts(tmp_path, hash_encoder):
    enc = hash_encoder()
    result = evaluate(enc, suite=load_suite(write_suite(tmp_path, ROWS)), show_progress=False)
    got = result["datasets"]["my_rerank"]
    aps, rrs = [], []
    for row in ROWS:
        q = enc.encode([row["query"]], task="search_query")[0]
        docs = row["positive"] + row["negative"]
        scores = enc.encode(docs, task="search_document") @ q
        rel = np.array([True] * len(row["positive"]) + [False] * len(row["negative"]))
        aps.append(average_precision(rel, scores))
        rrs.append(reciprocal_rank(rel, scores, 10))
    assert got["main_metric"] == "map"
    assert got["main_score"] == pytest.approx(100 * np.mean(aps), abs=1e-9)
    assert got["metrics"]["mrr@10"] == pytest.approx(100 * np.mean(rrs), abs=1e-9)
    assert got["size"] == {
        "queries": 4,
        "candidates_per_query": pytest.approx(13 / 4),
        "skipped": {"no_positive": 0, "no_negative": 0},
    }
    assert enc.seen["search_query"] == {r["query"] for r in ROWS}
    assert "anemia is caused by low iron" in enc.seen["search_document"]
    assert 0 < got["main_score"] < 100  # not a degenerate ranking


@pytest.mark.parametrize(
    "row,message",
    [
        ({"query": ["a list"], "positive": ["p"], "negative": []}, "'query' must be a string"),
        ({"query": "q", "positive": "p", "negative": []}, "'positive' must be a list of strings"),
        ({"query": "q", "positive": ["p"]}, "lacks field"),
    ],
)
def test_bad_rows_name_the_file_and_row(tmp_path, row, message, hash_encoder):
    suite = load_suite(write_suite(tmp_path, [ROWS[0], row]))
    with pytest.raises(ValueError, match=message) as err:
        evaluate(hash_encoder(), suite=suite, show_progress=False)
    assert "rerank.jsonl" in str(err.value) and "row 2" in str(err.value)


def test_rows_without_a_positive_or_a_negative_are_skipped_and_counted(tmp_path, caplog, hash_encoder):
    """MTEB's RerankingEvaluator skips them; scoring a row with no negative as average precision 1 raises MAP."""
    no_negative = {"query": "flu virus", "positive": ["flu is a virus", "rest treats flu"], "negative": []}
    no_positive = {"query": "anemia", "positive": [], "negative": ["anemia is caused by low iron"]}
    rows = [ROWS[0], no_negative, ROWS[1], no_positive, ROWS[3], no_negative]
    enc = hash_encoder()
    with caplog.at_level("WARNING", logger="mote_rag.evaluation.reranking"):
        got = evaluate(enc, suite=load_suite(write_suite(tmp_path, rows)), show_progress=False)["datasets"]["my_rerank"]
    assert got["size"]["skipped"] == {"no_positive": 1, "no_negative": 2}
    assert got["size"]["queries"] == 3
    assert "skipped 3 of 6 rows (1 with no positive, 2 with no negative)" in caplog.text
    kept = [ROWS[0], ROWS[1], ROWS[3]]
    aps = []
    for row in kept:
        q = enc.encode([row["query"]], task="search_query")[0]
        scores = enc.encode(row["positive"] + row["negative"], task="search_document") @ q
        rel = np.array([True] * len(row["positive"]) + [False] * len(row["negative"]))
        aps.append(average_precision(rel, scores))
    assert got["main_score"] == pytest.approx(100 * np.mean(aps), abs=1e-9)
    counted_as_perfect = 100 * np.mean(aps + [1.0, 1.0])  # what scoring the no-negative rows would have given
    assert got["main_score"] < counted_as_perfect - 1


def test_a_file_where_no_row_can_rank_is_refused(tmp_path, hash_encoder):
    rows = [{"query": "q", "positive": ["p"], "negative": []}, {"query": "r", "positive": [], "negative": ["n"]}]
    with pytest.raises(ValueError, match="rerank.jsonl: no row has both a positive and a negative"):
        evaluate(hash_encoder(), suite=load_suite(write_suite(tmp_path, rows)), show_progress=False)
