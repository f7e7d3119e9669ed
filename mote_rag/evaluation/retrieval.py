"""Retrieval: embed queries (search_query) and the whole corpus (search_document), exact inner-product
search with FAISS (IndexFlatIP on L2-normalised vectors = cosine), then nDCG@10, MAP@10, Recall@100, MRR@10.

`ignore_identical_ids` (Quora, as BEIR): a query's own id is dropped from its ranking.
Limits for short runs: `max_queries` (seeded sample of the split's queries) and `max_corpus` (every
relevant doc of the kept queries plus a seeded sample of the rest).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..readers import BeirDataset, load_beir
from .metrics import per_query_metrics

TOP_K = 100


def limit_beir(ds: BeirDataset, max_queries: int | None, max_corpus: int | None, seed: int = 0) -> BeirDataset:
    rng = np.random.default_rng(seed)
    qids = sorted(ds.queries)
    if max_queries and len(qids) > max_queries:
        qids = sorted(rng.choice(qids, size=max_queries, replace=False).tolist())
    qrels = {q: ds.qrels[q] for q in qids}
    corpus_ids = list(ds.corpus)
    if max_corpus and len(corpus_ids) > max_corpus:
        keep = {d for rels in qrels.values() for d in rels}
        rest = sorted(set(corpus_ids) - keep)
        extra = max(0, max_corpus - len(keep))
        keep.update(rng.choice(rest, size=min(extra, len(rest)), replace=False).tolist())
        corpus_ids = [d for d in corpus_ids if d in keep]
    return BeirDataset(
        ds.name, {d: ds.corpus[d] for d in corpus_ids}, {q: ds.queries[q] for q in qids}, qrels, ds.split
    )


def load(spec, path: Path) -> BeirDataset:
    ds = load_beir(path, spec.split)
    if not ds.queries:
        raise ValueError(f"{path / 'qrels' / (spec.split + '.tsv')}: split {spec.split!r} has no queries")
    return limit_beir(ds, spec.option("max_queries"), spec.option("max_corpus"))


def search(query_emb: np.ndarray, doc_emb: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner product (FAISS IndexFlatIP): (scores, indices), each (n_queries, k)."""
    import faiss

    index = faiss.IndexFlatIP(doc_emb.shape[1])
    index.add(np.ascontiguousarray(doc_emb, dtype=np.float32))
    return index.search(np.ascontiguousarray(query_emb, dtype=np.float32), min(k, doc_emb.shape[0]))


def build_run(
    scores: np.ndarray,
    indices: np.ndarray,
    doc_ids: list[str],
    qids: list[str],
    ignore_identical_ids: bool,
    k: int,
) -> dict[str, dict[str, float]]:
    run = {}
    for qi, q in enumerate(qids):
        ranked = {}
        for s, j in zip(scores[qi], indices[qi]):
            if j < 0:
                continue
            d = doc_ids[j]
            if ignore_identical_ids and d == q:
                continue
            ranked[d] = float(s)
            if len(ranked) == k:
                break
        run[q] = ranked
    return run


def evaluate_retrieval(spec, path: Path, embed) -> dict:
    ds = load(spec, path)
    doc_ids, qids = list(ds.corpus), list(ds.queries)
    doc_emb = embed([ds.corpus[d] for d in doc_ids], spec.option("doc_task"), f"{path.name}-corpus")
    query_emb = embed([ds.queries[q] for q in qids], spec.option("query_task"), f"{path.name}-queries-{spec.split}")
    ignore = bool(spec.option("ignore_identical_ids", False))
    scores, indices = search(query_emb, doc_emb, TOP_K + (1 if ignore else 0))
    run = build_run(scores, indices, doc_ids, qids, ignore, TOP_K)
    per_query = per_query_metrics(ds.qrels, run)
    metrics = {m: 100 * float(np.mean([p[m] for p in per_query])) for m in per_query[0]}
    return {
        "main_metric": "ndcg@10",
        "main_score": metrics["ndcg@10"],
        "metrics": metrics,
        "size": {"queries": len(qids), "corpus": len(doc_ids)},
        "units": {"scores": [round(p["ndcg@10"], 6) for p in per_query]},  # per query, for intervals
        "_run": run,
        "_qrels": ds.qrels,
    }
