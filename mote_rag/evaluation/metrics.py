"""Ranking metrics with pytrec_eval / BEIR semantics (cross-checked against ranx in the tests).

- nDCG@k: gain = relevance grade, discount log2(rank + 1); ideal from the query's judged grades.
- MAP@k (trec_eval map_cut): sum of precision at each relevant rank <= k, divided by ALL relevant docs.
- Recall@k: relevant docs in the top k / all relevant docs.
- MRR@k: 1 / rank of the first relevant doc within the top k, else 0.
Relevant means grade > 0. Rankings sort by score descending, ties by doc id descending (trec_eval's order).
Scores are averaged over the queries in qrels; a query with no ranking scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


def ranked_ids(scores: Mapping[str, float]) -> list[str]:
    # trec_eval: score descending, then doc id descending
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def query_metrics(rels: Mapping[str, int], ranking: list[str], k_ndcg=10, k_map=10, k_recall=100, k_mrr=10) -> dict:
    relevant = {d for d, g in rels.items() if g > 0}
    n_rel = len(relevant)
    dcg = sum(rels.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k_ndcg]) if rels.get(d, 0) > 0)
    ideal = sorted((g for g in rels.values() if g > 0), reverse=True)[:k_ndcg]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    hits, ap = 0, 0.0
    for i, d in enumerate(ranking[:k_map]):
        if d in relevant:
            hits += 1
            ap += hits / (i + 1)
    mrr = next((1.0 / (i + 1) for i, d in enumerate(ranking[:k_mrr]) if d in relevant), 0.0)
    return {
        f"ndcg@{k_ndcg}": dcg / idcg if idcg > 0 else 0.0,
        f"map@{k_map}": ap / n_rel if n_rel else 0.0,
        f"recall@{k_recall}": len(relevant.intersection(ranking[:k_recall])) / n_rel if n_rel else 0.0,
        f"mrr@{k_mrr}": mrr,
    }


def per_query_metrics(qrels: Qrels, run: Run, **ks) -> list[dict[str, float]]:
    """`query_metrics` of every query in qrels, in qrels order (the units of a paired bootstrap)."""
    per_query = [query_metrics(rels, ranked_ids(run.get(q, {})), **ks) for q, rels in qrels.items()]
    if not per_query:
        raise ValueError("no queries to evaluate")
    return per_query


def retrieval_metrics(qrels: Qrels, run: Run, **ks) -> dict[str, float]:
    """Mean of `query_metrics` over every query in qrels (as fractions, 0..1)."""
    per_query = per_query_metrics(qrels, run, **ks)
    return {m: float(np.mean([p[m] for p in per_query])) for m in per_query[0]}


def average_precision(is_relevant: np.ndarray, scores: np.ndarray) -> float:
    """AP of one ranked candidate list (MTEB reranking's MAP); ties keep candidate order (stable sort)."""
    order = np.argsort(-scores, kind="stable")
    rel = np.asarray(is_relevant, dtype=bool)[order]
    if not rel.any():
        return 0.0
    ranks = np.flatnonzero(rel) + 1
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks))


def reciprocal_rank(is_relevant: np.ndarray, scores: np.ndarray, k: int = 10) -> float:
    order = np.argsort(-scores, kind="stable")
    rel = np.asarray(is_relevant, dtype=bool)[order][:k]
    hit = np.flatnonzero(rel)
    return float(1.0 / (hit[0] + 1)) if len(hit) else 0.0
