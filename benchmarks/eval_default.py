"""Full default evaluation suite on the embedded base (all-MiniLM-L6-v2, no instruction prefixes), timed.

Reference: the published MTEB scores of all-MiniLM-L6-v2 (plain transformers + mean pooling,
max_seq_length 256): SciFact nDCG@10 64.51 and STS-B test Spearman 82.03; the run prints
measured / published ratios and the absolute differences (acceptance: within 0.5).

Retrieval metrics are cross-checked against ranx on every full retrieval run (report["ranx_check"]).
Runs one dataset at a time with a fresh embedding cache (cold: every embedding is computed once; the
reranking sets reuse their retrieval corpus from that cache, as a normal suite run does) and rewrites the
JSON after each dataset, so a run cut short still leaves its per-dataset timings.

    python benchmarks/eval_default.py [--threads N] [--datasets a,b] [--out benchmarks/results]
Writes benchmarks/results/eval_default.json and eval_default.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

PUBLISHED = {"scifact": 64.51, "stsb": 82.03}
# Cheap and acceptance-relevant sets first, the big corpora last.
ORDER = [
    "stsb",
    "scifact",
    "scifact_rerank",
    "sickr",
    "sts12",
    "sts13",
    "sts14",
    "sts15",
    "mrpc",
    "trec",
    "sst2",
    "mr",
    "cr",
    "subj",
    "mpqa",
    "banking77",
    "banking77_clustering",
    "ag_news_clustering",
    "quora_dup",
    "quora_dup_rerank",
    "medquad",
    "medquad_rerank",
]


def ranx_agreement(ds: dict) -> dict:
    """Largest |ours - ranx| over nDCG@10, MAP@10, Recall@100, MRR@10 on this run (fractions)."""
    from ranx import Qrels, Run
    from ranx import evaluate as ranx_evaluate

    theirs = ranx_evaluate(Qrels(ds["_qrels"]), Run(ds["_run"]), ["ndcg@10", "map@10", "recall@100", "mrr@10"])
    diff = max(abs(ds["metrics"][m] / 100 - float(v)) for m, v in theirs.items())
    return {"max_abs_diff": diff, "agree_1e-6": diff <= 1e-6}


def suite_names(datasets: str | None) -> list[str]:
    """--datasets as given, else the default suite's datasets in ORDER (any not listed there last)."""
    from mote_rag.evaluation.suite import DEFAULT

    names = datasets.split(",") if datasets else [n for n in ORDER if n in {d.name for d in DEFAULT.datasets}]
    missing = {d.name for d in DEFAULT.datasets} - set(names)
    if not datasets and missing:
        names += sorted(missing)
    return names


def add_averages(merged: dict) -> None:
    """Set merged["averages"] (mean main score per task type present) and merged["average_of_types"]."""
    import numpy as np

    from mote_rag.evaluation.suite import TASK_TYPES

    merged["averages"] = {
        t: float(np.mean([d["main_score"] for d in merged["datasets"].values() if d["type"] == t]))
        for t in TASK_TYPES
        if any(d["type"] == t for d in merged["datasets"].values())
    }
    merged["average_of_types"] = float(np.mean(list(merged["averages"].values())))


def published_checks(merged: dict) -> dict:
    """Measured vs published main score for each PUBLISHED dataset that was run (printed as it goes)."""
    checks = {}
    for name, published in PUBLISHED.items():
        if name in merged["datasets"]:
            got = merged["datasets"][name]["main_score"]
            checks[name] = {
                "measured": round(got, 3),
                "published": published,
                "diff": round(got - published, 3),
                "ratio": round(got / published, 4),
                "within_0.5": abs(got - published) <= 0.5,
            }
            print(
                f"{name}: measured {got:.2f} vs published {published:.2f} (ratio {got / published:.4f}, "
                f"diff {got - published:+.2f})"
            )
    return checks


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    ap.add_argument("--datasets", default=None, help="comma-separated subset of the default suite")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from mote_rag.atomic import write_bytes_atomic, write_json_atomic
    from mote_rag.evaluation import compare, evaluate, get_suite
    from mote_rag.model import MoTEModel

    names = suite_names(args.datasets)
    out = Path(args.out)
    t_load = time.perf_counter()
    model = MoTEModel.dense(None, use_prefixes=False)
    load_s = time.perf_counter() - t_load
    report = {
        "model": "all-MiniLM-L6-v2 (embedded base, no prefixes)",
        "suite": "default",
        "torch_threads": torch.get_num_threads(),
        "model_load_seconds": round(load_s, 2),
        "datasets": {},
        "complete": False,
    }
    merged = None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mote-eval-cache-") as cache:
        for name in names:
            r = evaluate(model, get_suite([name]), cache_dir=cache, show_progress=True, name="base", keep_runs=True)
            ds = r["datasets"][name]
            if "_run" in ds:  # retrieval: cross-check the metrics with ranx on the full run
                report.setdefault("ranx_check", {})[name] = ranx_agreement(ds)
            ds = r["datasets"][name] = {k: v for k, v in ds.items() if not k.startswith("_")}
            print(f"{name:22s} {ds['main_metric']:10s} {ds['main_score']:7.2f}  {ds['seconds']:8.1f} s", flush=True)
            if merged is None:
                merged = r
            else:
                merged["datasets"].update(r["datasets"])
            report["datasets"][name] = ds
            report["elapsed_seconds"] = round(time.perf_counter() - started, 1)
            write_json_atomic(out / "eval_default.json", report)
    add_averages(merged)
    report.update(averages=merged["averages"], average_of_types=merged["average_of_types"], complete=True)
    checks = published_checks(merged)
    report["published_check"] = checks
    total = time.perf_counter() - started
    report["elapsed_seconds"] = round(total, 1)
    report["under_20_minutes"] = total < 1200
    print(f"total {total / 60:.1f} min (budget 20 min): {'OK' if total < 1200 else 'OVER'}")
    write_json_atomic(out / "eval_default.json", report)
    table = compare({"base": merged})
    timing = "\n".join(f"| {n} | {d['seconds']:.1f} |" for n, d in report["datasets"].items())
    md = (
        f"# Default suite, embedded base (no prefixes)\n\n{table}\n"
        f"Total {total / 60:.1f} min with torch threads = {report['torch_threads']}.\n\n"
        f"| dataset | seconds |\n|---|---|\n{timing}\n"
    )
    write_bytes_atomic(out / "eval_default.md", md.encode("utf-8"))
    ok = all(c["within_0.5"] for c in checks.values()) and all(
        c["agree_1e-6"] for c in report.get("ranx_check", {}).values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
