"""MTEB-style evaluation of any mote-rag encoder (mote_rag.encoders.Encoder: MoTE, ONNX, dense, sentence-transformers).

Python API (stable; the training code and benchmarks call it)::

    from mote_rag.evaluation import evaluate, compare, get_suite, Suite, DatasetSpec

    result = evaluate(encoder,                  # MoTEModel, OnnxEncoder, SentenceTransformerEncoder, ...
                      suite="default",          # "default" | "quick" | "full" | Suite | list of dataset names
                      out_dir=None,             # if set: writes <out_dir>/<name>.json
                      cache_dir=None,           # if set: corpus/sentence embeddings cached as .npy per
                                                #   (encoder.fingerprint, task, dataset, texts hash)
                      show_progress=True,
                      name=None,                # model name in the result (default: encoder class / source)
                      limits=None)              # e.g. {"max_corpus": 2000, "max_queries": 200, "max_rows": 1000}
    # -> {"model": name, "fingerprint": ..., "suite": ..., "datasets": {ds: {"type", "main_score", "metrics",
    #     "seconds", ...}}, "averages": {type: mean main score}, "seconds": total}
    # Scores are in percent (MTEB's presentation): nDCG@10 64.5, Spearman 82.0, ...

    md = compare({"dense": r1, "mote": r2}, baseline="dense")   # Markdown table with deltas vs baseline
    write_report({"dense": r1, "mote": r2}, out_dir, baseline="dense")  # JSON per model + table.md + averages.png

    get_suite("quick")          # a short suite for training loops (subsets, a few minutes on 2 cores)
    get_suite(["scifact", "stsb"])          # any names from the default suite
    load_suite("my_suite.json") # user folders: {"name": "...", "datasets": [{"name", "type", "path", ...}]}

Main scores (all x100): retrieval nDCG@10 (also MAP@10, Recall@100, MRR@10), reranking MAP (also MRR@10),
STS Spearman of cosine, pair classification AP of cosine, classification accuracy (also macro-F1),
clustering V-measure. Task paths: queries -> search_query, corpus -> search_document, classification ->
classification, clustering -> clustering, STS / pair classification -> configurable (default classification).
"""

from __future__ import annotations

_LAZY = {
    "evaluate": ("mote_rag.evaluation.runner", "evaluate"),
    "compare": ("mote_rag.evaluation.report", "compare"),
    "write_report": ("mote_rag.evaluation.report", "write_report"),
    "get_suite": ("mote_rag.evaluation.suite", "get_suite"),
    "load_suite": ("mote_rag.evaluation.suite", "load_suite"),
    "Suite": ("mote_rag.evaluation.suite", "Suite"),
    "DatasetSpec": ("mote_rag.evaluation.suite", "DatasetSpec"),
    "SentenceTransformerEncoder": ("mote_rag.evaluation.adapters", "SentenceTransformerEncoder"),
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mote_rag.evaluation' has no attribute {name!r}")
