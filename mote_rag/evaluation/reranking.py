"""Reranking: built from retrieval qrels (a BEIR folder), or read from MTEB's reranking file (a .jsonl file).

A reranking spec whose `path` is a JSON Lines file (`.jsonl` or `.jsonl.gz`) reads MTEB's format, one row per
query: {"query": str, "positive": [str, ...], "negative": [str, ...]}; the candidates of a row are its positives
then its negatives (MTEB's order) and are scored exactly as below. A spec whose `path` is a folder builds the
candidates from the qrels:

Candidates per query, fixed and model-independent so every encoder reranks the same lists:
its judged positives plus the top `negatives` (default 20) non-relevant docs by TF-IDF cosine
(scikit-learn TfidfVectorizer, sublinear tf, fitted on the corpus); ties broken by corpus order; a query's
own id is excluded when `ignore_identical_ids`. The encoder scores candidates by cosine of the query
(search_query) and document (search_document) embeddings. Metrics as MTEB's RerankingEvaluator: MAP
(average precision over each candidate list, the main score) and MRR@10.

Rows that cannot rank anything are skipped, as MTEB's RerankingEvaluator skips them: a row with no positive
(its average precision is undefined) and a row with no negative (every order is perfect: it would count as
average precision 1 and raise MAP). The result says how many: `size.skipped` ({"no_positive": n,
"no_negative": m}), and a warning is logged. Which rows skip depends only on the data, so every model is scored
on the same rows.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .metrics import average_precision, reciprocal_rank
from .retrieval import load

logger = logging.getLogger(__name__)


def lexical_candidates(
    corpus_texts: list[str],
    query_texts: list[str],
    positives: list[set[int]],
    negatives: int,
    exclude: list[int | None],
) -> list[list[int]]:
    """Positives + top-`negatives` TF-IDF hard negatives per query, as corpus indices (deterministic)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True, dtype=np.float32)
    docs = vec.fit_transform(corpus_texts)
    queries = vec.transform(query_texts)
    out = []
    for start in range(0, len(query_texts), 256):
        sims = (queries[start : start + 256] @ docs.T).toarray()
        for row, qi in zip(sims, range(start, start + 256)):
            banned = set(positives[qi])
            if exclude[qi] is not None:
                banned.add(exclude[qi])
            order = np.argsort(-row, kind="stable")
            negs = [int(j) for j in order[: negatives + len(banned)] if int(j) not in banned][:negatives]
            out.append(sorted(set(positives[qi]).union(negs)))  # corpus order: no tie advantage for positives
    return out


def read_mteb_reranking(path: Path, max_rows: int | None = None) -> list[dict]:
    """Rows of an MTEB reranking file, checked (a query string, lists of strings); rows without a positive or a
    negative are kept here and skipped when scored."""
    from ..readers import read_jsonl

    rows = read_jsonl(path, required=("query", "positive", "negative"))
    for i, row in enumerate(rows, 1):
        if not isinstance(row["query"], str):
            raise ValueError(f"{path}: row {i}: 'query' must be a string, got {type(row['query']).__name__}")
        for key in ("positive", "negative"):
            if not isinstance(row[key], list) or not all(isinstance(t, str) for t in row[key]):
                raise ValueError(f"{path}: row {i}: {key!r} must be a list of strings")
    return rows[:max_rows] if max_rows else rows


def evaluate_mteb_reranking(spec, path: Path, embed) -> dict:
    rows = read_mteb_reranking(path, spec.option("max_rows"))
    docs = list(dict.fromkeys(t for row in rows for t in row["positive"] + row["negative"]))
    where = {t: i for i, t in enumerate(docs)}
    doc_emb = embed(docs, spec.option("doc_task"), f"{path.name}-candidates")
    query_emb = embed([row["query"] for row in rows], spec.option("query_task"), f"{path.name}-queries")
    candidates = [[where[t] for t in row["positive"] + row["negative"]] for row in rows]
    positives = [{where[t] for t in row["positive"]} for row in rows]
    return score_candidates(
        doc_emb, query_emb, candidates, positives, f"{path}: no row has both a positive and a negative", str(path)
    )


def evaluate_reranking(spec, path: Path, embed) -> dict:
    if path.is_file():
        return evaluate_mteb_reranking(spec, path, embed)
    ds = load(spec, path)
    doc_ids, qids = list(ds.corpus), list(ds.queries)
    pos = {d: i for i, d in enumerate(doc_ids)}
    corpus_texts = [ds.corpus[d] for d in doc_ids]
    query_texts = [ds.queries[q] for q in qids]
    positives = [{pos[d] for d, g in ds.qrels[q].items() if g > 0 and d in pos} for q in qids]
    ignore = bool(spec.option("ignore_identical_ids", False))
    exclude = [pos.get(q) if ignore else None for q in qids]
    candidates = lexical_candidates(corpus_texts, query_texts, positives, int(spec.option("negatives", 20)), exclude)
    # Same cache entry as the retrieval task on this folder: the corpus is embedded once per model.
    doc_emb = embed(corpus_texts, spec.option("doc_task"), f"{path.name}-corpus")
    query_emb = embed(query_texts, spec.option("query_task"), f"{path.name}-queries-{spec.split}")
    return score_candidates(
        doc_emb,
        query_emb,
        candidates,
        positives,
        f"{path}: no query of split {spec.split!r} has both a relevant and a non-relevant candidate",
        str(path),
    )


def score_candidates(
    doc_emb, query_emb, candidates: list[list[int]], positives: list[set[int]], empty: str, source: str = "reranking"
) -> dict:
    """MAP (main score) and MRR@10 of each query's candidate list ranked by cosine. A query with no positive or no
    negative candidate is skipped (MTEB's RerankingEvaluator does the same) and counted in `size.skipped`."""
    aps, rrs, kept = [], [], []
    skipped = {"no_positive": 0, "no_negative": 0}
    for qi, cands in enumerate(candidates):
        rel = np.array([j in positives[qi] for j in cands], dtype=bool)
        if not rel.any():
            skipped["no_positive"] += 1
            continue
        if rel.all():
            skipped["no_negative"] += 1
            continue
        scores = doc_emb[cands] @ query_emb[qi]
        aps.append(average_precision(rel, scores))
        rrs.append(reciprocal_rank(rel, scores, 10))
        kept.append(len(cands))
    if not aps:
        raise ValueError(empty)
    if any(skipped.values()):
        logger.warning(
            "%s: skipped %d of %d rows (%d with no positive, %d with no negative), as MTEB's RerankingEvaluator does",
            source,
            sum(skipped.values()),
            len(candidates),
            skipped["no_positive"],
            skipped["no_negative"],
        )
    metrics = {"map": 100 * float(np.mean(aps)), "mrr@10": 100 * float(np.mean(rrs))}
    return {
        "main_metric": "map",
        "main_score": metrics["map"],
        "metrics": metrics,
        "size": {"queries": len(aps), "candidates_per_query": float(np.mean(kept)), "skipped": skipped},
        "units": {"scores": [round(a, 6) for a in aps]},
    }
