"""Symmetric sentence-pair tasks; both sides go through one task path (default `classification`).

- STS: Spearman (main) and Pearson correlation of the cosine with the gold score (MTEB STS).
- Pair classification: average precision of the cosine against the 0/1 label (MTEB's main score, cos AP).
`max_rows` evaluates a seeded random subset of the pairs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..readers import SentencePairs, load_sentence_pairs


def _limit(pairs: SentencePairs, max_rows: int | None, seed: int = 0) -> SentencePairs:
    n = len(pairs.values)
    if not max_rows or n <= max_rows:
        return pairs
    idx = np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))
    return SentencePairs(
        pairs.name,
        [pairs.sentences1[i] for i in idx],
        [pairs.sentences2[i] for i in idx],
        [pairs.values[i] for i in idx],
    )


def pair_cosines(pairs: SentencePairs, task: str, embed, key: str) -> np.ndarray:
    texts = pairs.sentences1 + pairs.sentences2
    emb = embed(texts, task, key)
    n = len(pairs.sentences1)
    return np.sum(emb[:n] * emb[n:], axis=1)  # embed() returns L2-normalised rows


def evaluate_sts(spec, path: Path, embed) -> dict:
    from scipy.stats import pearsonr, spearmanr

    pairs = _limit(load_sentence_pairs(path, "score"), spec.option("max_rows"))
    if len(pairs.values) < 3:
        raise ValueError(f"{path}: STS needs at least 3 pairs, got {len(pairs.values)}")
    cos = pair_cosines(pairs, spec.option("task"), embed, f"{spec.name}-{path.stem}")
    gold = np.asarray(pairs.values)
    metrics = {"spearman": 100 * float(spearmanr(cos, gold)[0]), "pearson": 100 * float(pearsonr(cos, gold)[0])}
    return {
        "main_metric": "spearman",
        "main_score": metrics["spearman"],
        "metrics": metrics,
        "size": {"pairs": len(gold)},
        "units": {"pred": _rounded(cos), "gold": gold.tolist()},
    }


def evaluate_pair_classification(spec, path: Path, embed) -> dict:
    from sklearn.metrics import average_precision_score

    pairs = _limit(load_sentence_pairs(path, "label"), spec.option("max_rows"))
    labels = np.asarray(pairs.values)
    if not set(np.unique(labels)) <= {0.0, 1.0} or len(np.unique(labels)) < 2:
        raise ValueError(
            f"{path}: pair classification needs labels 0 and 1 (both present), got {sorted(set(labels))[:5]}"
        )
    cos = pair_cosines(pairs, spec.option("task"), embed, f"{spec.name}-{path.stem}")
    metrics = {"cos_ap": 100 * float(average_precision_score(labels, cos))}
    return {
        "main_metric": "cos_ap",
        "main_score": metrics["cos_ap"],
        "metrics": metrics,
        "size": {"pairs": len(labels), "positives": int(labels.sum())},
        "units": {"pred": _rounded(cos), "label": labels.astype(int).tolist()},
    }


def _rounded(values: np.ndarray) -> list[float]:
    """Per-pair cosines for paired bootstrap intervals (1e-7 is far below any score's resolution)."""
    return [round(float(v), 7) for v in values]
