"""Post-hoc variants of a trained run, no training: `wise` moves each expert toward its initial weights with an alpha
per path chosen on dev splits only (WiSE-FT), `wave` averages the experts into one dense block (WAVE)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from mote_rag.atomic import write_bytes_atomic, write_json_atomic

from .arms import initial_model, run_dir
from .reuse import evaluate_reusing
from .runner import DONE, score_store

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
SENTENCE_DEV = ("stsb_dev", "sickr_dev", "sst2_dev")  # choose the classification and clustering paths' alpha


def dev_suite(config, seed: int, work: Path):
    """Dev data for choosing interpolation alphas, never the test splits: STS-B and SICK-R dev, SST-2 dev
    (classification path) and, for the retrieval experts, MedQuAD and Quora *training* queries that this seed's
    recipe did not sample (folders under the work dir that link the shared corpus and list those queries)."""
    from mote_rag.evaluation.suite import DatasetSpec, Suite
    from mote_rag.readers import load_beir
    from mote_rag.training.data import build_examples

    data = Path(config.data_dir)
    specs = []
    for task in config.tasks:
        for ds in task.datasets:
            if ds.format != "beir" or ds.max_examples is None:
                continue
            used = {ex.anchor for ex in build_examples(ds, data, seed)}
            src = ds.resolved_path(data)
            beir = load_beir(src, split=ds.split)
            unused = sorted(q for q in beir.qrels if beir.queries.get(q) not in used)
            keep = sorted(np.random.default_rng(seed).choice(unused, size=min(300, len(unused)), replace=False))
            folder = work / "dev" / f"{ds.name}-seed-{seed}"
            (folder / "qrels").mkdir(parents=True, exist_ok=True)
            for f in src.iterdir():
                if f.is_file() and not (folder / f.name).exists():
                    os.symlink(f, folder / f.name)
            lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{g}" for q in keep for d, g in beir.qrels[q].items()]
            write_bytes_atomic(folder / "qrels" / "dev.tsv", ("\n".join(lines) + "\n").encode())
            specs.append(
                DatasetSpec(
                    f"{ds.name}_dev",
                    "retrieval",
                    str(folder),
                    "dev",
                    {"max_corpus": 800, "ignore_identical_ids": ds.name == "quora_dup"},
                )
            )
    specs += [
        DatasetSpec("stsb_dev", "sts", str(data / "sts/stsb/dev.jsonl"), "dev"),
        DatasetSpec("sickr_dev", "sts", str(data / "sts/sickr/dev.jsonl"), "dev"),
        DatasetSpec(
            "sst2_dev",
            "classification",
            str(data / "classification/sst2"),
            "dev",
            {"train_split": "train", "max_rows": 500},
        ),
    ]
    return Suite("dev", tuple(specs))


def choose_alphas(scores: dict[float, dict[str, float]], alphas) -> dict[str, float]:
    """Per task path, the alpha with the best mean dev score (ties: the larger alpha). Retrieval experts are chosen
    on the retrieval dev sets; classification and clustering on the STS/SST-2 dev sets (no clustering dev split
    exists). A path with no dev set measured keeps the trained expert (alpha 1)."""
    measured = list(scores[alphas[-1]])
    paths = {
        "retrieval": [d for d in measured if d not in SENTENCE_DEV],
        "classification": [d for d in measured if d in SENTENCE_DEV],
    }
    best = {
        p: max(alphas, key=lambda a: (np.mean([scores[a][d] for d in ds]), a)) if ds else 1.0 for p, ds in paths.items()
    }
    return {
        "search_query": best["retrieval"],
        "search_document": best["retrieval"],
        "classification": best["classification"],
        "clustering": best["classification"],
    }


def wise_model(config, name: str, seed: int, work: Path, trained, cache_dir: str, only, alphas):
    """The trained model interpolated toward its start at the alphas chosen on dev; returns (model, what to record)."""
    from mote_rag.evaluation import evaluate
    from mote_rag.merging import interpolate_experts

    initial = initial_model(config, name)
    dev = dev_suite(config, seed, work)
    if only:  # smoke runs: the dev sets of the chosen test sets only
        dev = dev.select(datasets=[d.name for d in dev.datasets if d.name[:-4] in only] or None)
    scores = {}
    for a in alphas:
        print(f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: dev scores at alpha {a}", flush=True)
        model = interpolate_experts(trained, initial, a)
        r = evaluate(model, suite=dev, name=f"alpha {a}", show_progress=False, cache_dir=cache_dir)
        scores[a] = {d: x["main_score"] for d, x in r["datasets"].items()}
    chosen = choose_alphas(scores, alphas)
    print(f"  chosen on dev: {chosen}", flush=True)
    extra = {"alphas": chosen, "dev_scores": {str(a): v for a, v in scores.items()}}
    return interpolate_experts(trained, initial, chosen), extra


def posthoc(
    config,
    name: str,
    seed: int,
    work: Path,
    suite,
    cache_dir: str,
    kind: str,
    only: list[str] | None = None,
    alphas=ALPHAS,
) -> dict | None:
    """`wise` or `wave` of a finished (name, seed) run, evaluated like a trained run (VARIANT+kind/seed-N)."""
    from mote_rag import MoTEModel
    from mote_rag.merging import wave

    trained_dir = run_dir(work, name, seed)
    done = run_dir(work, f"{name}+{kind}", seed) / DONE
    if done.is_file():
        return json.loads(done.read_text())
    if not (trained_dir / DONE).is_file():
        print(f"  {name} seed {seed} has not finished: no {kind} variant yet", flush=True)
        return None
    trained = MoTEModel.from_pretrained(trained_dir)
    if kind == "wave":
        model, extra = wave(trained), {}
    else:
        model, extra = wise_model(config, name, seed, work, trained, cache_dir, only, alphas)
    print(f"[{time.strftime('%H:%M:%S')}] evaluating {name}+{kind} seed {seed}", flush=True)
    result = evaluate_reusing(model, suite, score_store(work), f"{name}+{kind}/seed-{seed}", cache_dir)
    result.update({"variant": f"{name}+{kind}", "seed": seed, **extra})
    write_json_atomic(done, result)
    return result
