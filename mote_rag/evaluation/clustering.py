"""Clustering: k-means on embeddings (task path `clustering`), V-measure against the labels.

Follows MTEB's fast clustering protocol: `n_runs` = 10 runs, each on a seeded subsample of at most
`subsample` = 2,048 documents, MiniBatchKMeans(n_clusters = number of labels, batch_size=512, n_init=1,
seed per run); the score is the mean V-measure (std reported). `max_rows` caps how many documents are
embedded at all (stratified, seed 42).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..readers import load_labelled_texts
from .classification import SEED, stratified_subset


def evaluate_clustering(spec, path: Path, embed) -> dict:
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import v_measure_score

    data = load_labelled_texts(path)
    keep = stratified_subset(data.labels, spec.option("max_rows"))
    texts = [data.texts[i] for i in keep]
    labels = np.asarray([data.labels[i] for i in keep])
    if len(set(labels)) < 2:
        raise ValueError(f"{path}: clustering needs at least 2 labels")
    emb = embed(texts, spec.option("task"), f"{spec.name}-{path.stem}")
    n_runs = int(spec.option("n_runs", 10))
    size = min(int(spec.option("subsample", 2048)), len(labels))
    rng = np.random.default_rng(SEED)
    codes = np.unique(labels, return_inverse=True)[1]
    scores, run_labels, run_preds = [], [], []
    for run in range(n_runs):
        idx = rng.choice(len(labels), size=size, replace=False) if size < len(labels) else np.arange(len(labels))
        k = len(set(labels[idx]))
        km = MiniBatchKMeans(n_clusters=k, batch_size=512, n_init=1, random_state=SEED + run)
        pred = km.fit_predict(emb[idx])
        scores.append(v_measure_score(labels[idx], pred))
        run_labels.append(codes[idx].tolist())
        run_preds.append(pred.tolist())
    metrics = {"v_measure": 100 * float(np.mean(scores)), "v_measure_std": 100 * float(np.std(scores))}
    # units: per run, the gold label and cluster of each sampled document (the same documents for every model)
    return {
        "main_metric": "v_measure",
        "main_score": metrics["v_measure"],
        "metrics": metrics,
        "size": {"docs": len(labels), "per_run": size, "runs": n_runs, "labels": len(set(labels))},
        "units": {"labels": run_labels, "clusters": run_preds},
    }
