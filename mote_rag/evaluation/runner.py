"""Run a suite against one encoder: embed (deduplicated, cached, with progress), score each dataset,
collect a JSON-ready result with per-type averages and timings.

Every task type only sees `embed(texts, task, key) -> L2-normalised float32 rows`, so any encoder with the
mote_rag.encoders.Encoder protocol can be evaluated and figures are comparable across backends (MoTE, ONNX,
dense, sentence-transformers).
"""

from __future__ import annotations

import logging
import os
import platform
import re
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import write_json_atomic
from ..encoders import Encoder, check_encoder
from .cache import EmbeddingCache, texts_digest
from .classification import evaluate_classification
from .clustering import evaluate_clustering
from .pairs import evaluate_pair_classification, evaluate_sts
from .reranking import evaluate_reranking
from .retrieval import evaluate_retrieval
from .suite import TASK_TYPES, Suite, get_suite

RUNNERS = {
    "retrieval": evaluate_retrieval,
    "reranking": evaluate_reranking,
    "sts": evaluate_sts,
    "pair_classification": evaluate_pair_classification,
    "classification": evaluate_classification,
    "clustering": evaluate_clustering,
}
logger = logging.getLogger(__name__)
CHUNK = 512  # texts per encode() call: bounds memory and drives the progress bar


class Embedder:
    """Deduplicates texts, serves repeats from memory or the disk cache, encodes the rest longest-first."""

    def __init__(
        self, encoder: Encoder, cache: EmbeddingCache | None = None, batch_size: int = 64, show_progress: bool = True
    ):
        self.encoder = check_encoder(encoder)
        self.fingerprint = encoder.fingerprint
        self.cache = cache if self.fingerprint else None
        # The backend is part of the cache key: an ONNX fp32 export shares its torch model's fingerprint, but an
        # ONNX-vs-torch comparison must embed with each backend, not read the other's vectors.
        variant = getattr(encoder, "variant", None)
        self.backend = type(encoder).__name__ + (f"-{variant}" if variant else "")
        self.cache_key = f"{self.fingerprint}-{self.backend}"
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.memory: dict[tuple, np.ndarray] = {}
        self.stats = {"encoded_texts": 0, "cached_texts": 0, "encode_seconds": 0.0}

    def path_key(self, task: str) -> str:
        """The disk-cache key of one task path: its own fingerprint, so a path that training left unchanged (a
        frozen document expert, the classification path of a retrieval-only MoTE) hits the cache of the model
        it was copied from."""
        fn = getattr(self.encoder, "path_fingerprint", None)
        return f"{fn(task)}-{self.backend}" if callable(fn) else self.cache_key

    def __call__(self, texts: Sequence[str], task: str, key: str) -> np.ndarray:
        unique = list(dict.fromkeys(texts))
        if not unique:
            raise ValueError(f"{key}: nothing to embed")
        mem_key = (task, key, texts_digest(unique))
        emb = self.memory.get(mem_key)
        if emb is None and self.cache is not None:
            emb = self.cache.get(self.path_key(task), task, key, unique)
        if emb is None:
            emb = self._encode(unique, task, f"{key} [{task}]")
            if self.cache is not None:
                self.cache.put(self.path_key(task), task, key, unique, emb)
        else:
            self.stats["cached_texts"] += len(unique)
        self.memory[mem_key] = emb
        if len(unique) == len(texts):
            return emb
        where = {t: i for i, t in enumerate(unique)}
        return emb[[where[t] for t in texts]]

    def _encode(self, texts: list[str], task: str, desc: str) -> np.ndarray:
        from tqdm.auto import tqdm

        start = time.perf_counter()
        order = np.argsort([-len(t) for t in texts], kind="stable")  # similar lengths share a batch
        out = None
        with tqdm(total=len(texts), desc=desc, unit="text", disable=not self.show_progress, leave=False) as bar:
            for s in range(0, len(texts), CHUNK):
                idx = order[s : s + CHUNK]
                emb = np.asarray(
                    self.encoder.encode(
                        [texts[i] for i in idx], task=task, batch_size=self.batch_size, show_progress_bar=False
                    ),
                    dtype=np.float32,
                )
                if emb.ndim != 2 or emb.shape[0] != len(idx):
                    raise ValueError(f"encoder returned shape {emb.shape} for {len(idx)} texts")
                if out is None:
                    out = np.empty((len(texts), emb.shape[1]), dtype=np.float32)
                out[idx] = emb
                bar.update(len(idx))
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)  # cosine everywhere, whatever the backend returns
        self.stats["encoded_texts"] += len(texts)
        self.stats["encode_seconds"] += time.perf_counter() - start
        return out


def encoder_name(encoder: Encoder) -> str:
    """A short name for results: the encoder's folder name (the parent of a packaged `model/` folder)."""
    source = check_encoder(encoder).source
    if not source:
        return type(encoder).__name__
    path = Path(str(source))
    return path.parent.name if path.name == "model" and path.parent.name else path.name  # packaged model dirs


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def evaluate(
    encoder,
    suite: str | Suite | Sequence[str] = "default",
    out_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    show_progress: bool = True,
    name: str | None = None,
    limits: dict | None = None,
    batch_size: int = 64,
    keep_runs: bool = False,
    collection: str | None = None,
) -> dict:
    """Evaluate `encoder` on every dataset of `suite`; write <out_dir>/<name>.json when out_dir is given.

    `collection`: read retrieval and reranking sets through that collection's experts (`search_query@<name>`, and
    `search_document@<name>` where the model has one), as an index built for the collection routes them.

    `limits` (max_corpus, max_queries, max_rows) shrink every dataset for short runs. Returns the result dict
    (scores x100, per-type averages, seconds per dataset). `keep_runs=True` keeps retrieval runs/qrels
    (under "_run"/"_qrels", never written to JSON) for cross-checks.
    """
    from tqdm.auto import tqdm

    chosen = get_suite(suite).with_limits(limits)
    if collection is not None:
        chosen = chosen.routed(*encoder.tasks.collection_paths(collection))
    root = chosen.root_dir()
    embed = Embedder(encoder, EmbeddingCache(cache_dir) if cache_dir else None, batch_size, show_progress)
    name = name or encoder_name(encoder)
    results: dict[str, dict] = {}
    started = time.perf_counter()
    for spec in tqdm(chosen.datasets, desc=f"eval {name}", unit="dataset", disable=not show_progress):
        t0 = time.perf_counter()
        res = RUNNERS[spec.type](spec, spec.resolve(root), embed)
        res = {"type": spec.type, **res, "seconds": round(time.perf_counter() - t0, 2)}
        if not keep_runs:
            res = {k: v for k, v in res.items() if not k.startswith("_")}
        results[spec.name] = res
        logger.info("%s on %s: %s %.2f (%.1fs)", name, spec.name, spec.type, res["main_score"], res["seconds"])
    averages = type_averages(results)
    result = {
        "model": name,
        "fingerprint": embed.fingerprint,
        "collection": collection,
        "suite": chosen.name,
        "datasets": results,
        "averages": averages,
        "average_of_types": float(np.mean(list(averages.values()))),
        "seconds": round(time.perf_counter() - started, 2),
        "embedding": {k: round(v, 2) if isinstance(v, float) else v for k, v in embed.stats.items()},
        "settings": {"batch_size": batch_size, "limits": limits or {}, "specs": [s.to_dict() for s in chosen.datasets]},
        "host": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
    if out_dir is not None:
        write_json_atomic(Path(out_dir) / f"{safe_name(name)}.json", strip_private(result))
    return result


def type_averages(datasets: dict[str, dict]) -> dict[str, float]:
    """Mean main score per task type, in TASK_TYPES order: the `averages` of a result, also when a caller assembles
    one from datasets scored in several runs (benchmarks/train_study/reuse.py)."""
    averages = {}
    for t in TASK_TYPES:
        scores = [r["main_score"] for r in datasets.values() if r["type"] == t]
        if scores:
            averages[t] = float(np.mean(scores))
    return averages


def strip_private(result: dict) -> dict:
    out = dict(result)
    out["datasets"] = {n: {k: v for k, v in r.items() if not k.startswith("_")} for n, r in result["datasets"].items()}
    return out
