"""mote-rag's evaluation reads MTEB's reranking JSON Lines ({"query", "positive", "negative"}) as it is."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from mote_rag.evaluation import evaluate, load_suite
from mote_rag.evaluation.metrics import average_precision, reciprocal_rank
from mote_rag.tasks import TaskSet

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


class HashingEncoder:
    """Bag of hashed words, with a task-dependent offset so that the side a text is embedded for matters."""

    dim, fingerprint = 64, None

    tasks, max_seq_length, source = TaskSet(), 128, "hashing"  # the rest of the mote_rag.encoders.Encoder protocol

    def encode_query(self, texts, **kwargs):
        return self.encode(texts, task="search_query", **kwargs)

    def encode_document(self, texts, **kwargs):
        return self.encode(texts, task="search_document", **kwargs)

    def __init__(self):
        self.seen: dict[str, set[str]] = {}

    def encode(self, texts, task="search_document", batch_size=32, show_progress_bar=False):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            self.seen.setdefault(task, set()).add(t)
            for w in t.split():
                out[i, zlib.crc32(w.encode()) % self.dim] += 1
            out[i, 0] += 0.5 if task == "search_query" else 0.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def write_suite(tmp_path, rows) -> str:
    (tmp_path / "rerank.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    suite = {"name": "mine", "datasets": [{"name": "my_rerank", "type": "reranking", "path": "rerank.jsonl"}]}
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    return str(tmp_path / "suite.json")


def test_scores_match_direct_computation_and_sides_use_their_experts(tmp_path):
    enc = HashingEncoder()
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
def test_bad_rows_name_the_file_and_row(tmp_path, row, message):
    suite = load_suite(write_suite(tmp_path, [ROWS[0], row]))
    with pytest.raises(ValueError, match=message) as err:
        evaluate(HashingEncoder(), suite=suite, show_progress=False)
    assert "rerank.jsonl" in str(err.value) and "row 2" in str(err.value)


def test_rows_without_a_positive_or_a_negative_are_skipped_and_counted(tmp_path, caplog):
    """MTEB's RerankingEvaluator skips them; scoring a row with no negative as average precision 1 raises MAP."""
    no_negative = {"query": "flu virus", "positive": ["flu is a virus", "rest treats flu"], "negative": []}
    no_positive = {"query": "anemia", "positive": [], "negative": ["anemia is caused by low iron"]}
    rows = [ROWS[0], no_negative, ROWS[1], no_positive, ROWS[3], no_negative]
    enc = HashingEncoder()
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


def test_a_file_where_no_row_can_rank_is_refused(tmp_path):
    rows = [{"query": "q", "positive": ["p"], "negative": []}, {"query": "r", "positive": [], "negative": ["n"]}]
    with pytest.raises(ValueError, match="rerank.jsonl: no row has both a positive and a negative"):
        evaluate(HashingEncoder(), suite=load_suite(write_suite(tmp_path, rows)), show_progress=False)
