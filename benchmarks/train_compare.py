"""TA-CL: MoTE vs instruction-conditioning (IC) vs plain fine-tuning, same recipe, one run.

Reference: the `plain` arm (the dense base fine-tuned on the same data, steps and seed, without prefixes), and
the untuned base. The paper's claim: MoTE's gain over the untuned model exceeds IC's (+5.21 vs +3.27 retrieval,
+2.60 vs +1.81 overall). This script
1. measures training step time of MoTE and IC on the same batches, interleaved (goal MoTE/IC <= 1.10), and uses
   it to turn the time budget into one step count shared by all arms;
2. trains and evaluates `mote`, `ic`, `plain` (only the model differs), then the untuned base (its embeddings
   are cached by fingerprint, so `--base-only` beforehand takes it off the clock);
3. writes benchmarks/results/train_compare.json and train_compare.md (results written after every arm).

Run: python benchmarks/train_compare.py [--budget-minutes 14] [--steps N] [--config FILE] [--full-eval]
A longer budget is a flag away (`--budget-minutes 45`); `--steps` fixes the count instead.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from _common import RESULTS, write_result
from mote_rag.atomic import write_bytes_atomic
from mote_rag.training.config import default_config_path, load_config

ARMS = ("mote", "ic", "plain")
REPO = Path(__file__).resolve().parents[1]
TYPES = ("retrieval", "reranking", "sts", "pair_classification", "classification", "clustering")


def eval_suite(full: bool):
    """A reduced suite (every type family, subsets) so base + 3 arms fit the session; --full-eval for all."""
    from mote_rag.evaluation.suite import DEFAULT, DatasetSpec, Suite

    if full:
        return DEFAULT
    d = DatasetSpec
    return Suite("train_compare", (
        d("scifact", "retrieval", "retrieval/scifact", "test", {"max_corpus": 1000}),
        d("medquad", "retrieval", "retrieval/medquad", "test", {"max_corpus": 800, "max_queries": 200}),
        d("quora_dup", "retrieval", "retrieval/quora_dup", "test",
          {"ignore_identical_ids": True, "max_corpus": 2000, "max_queries": 300}),
        d("stsb", "sts", "sts/stsb/test.jsonl"),
        d("sickr", "sts", "sts/sickr/test.jsonl", "test", {"max_rows": 1000}),
        d("mrpc", "pair_classification", "paraphrase/mrpc_test.jsonl", "test", {"max_rows": 800}),
        d("banking77", "classification", "classification/banking77", "test",
          {"train_split": "train", "max_rows": 1000}),
        d("trec", "classification", "classification/trec", "test", {"train_split": "train"}),
        d("banking77_clustering", "clustering", "clustering/banking77/test.jsonl", "test", {"max_rows": 1500}),
        d("ag_news_clustering", "clustering", "clustering/ag_news/test.jsonl", "test", {"max_rows": 1500}),
    ))


def measure_step_time(config, data, n_batches: int) -> dict:
    """MoTE vs IC training step time on the same batches, interleaved (order alternates), first batch warm-up."""
    from mote_rag.training.trainer import Trainer

    trainers = {arm: Trainer(config.with_arm(arm, "/nonexistent-unused"), data=data, show_progress=False)
                for arm in ("mote", "ic")}
    batches = [trainers["mote"].sampler.next_batch() for _ in range(n_batches + 1)]
    times = {"mote": [], "ic": []}
    for i, batch in enumerate(batches):
        order = ("mote", "ic") if i % 2 == 0 else ("ic", "mote")
        for arm in order:
            result = trainers[arm].train_step(batch)
            if i > 0:
                times[arm].append(result.seconds)
    med = {arm: statistics.median(t) for arm, t in times.items()}
    ratios = [m / c for m, c in zip(times["mote"], times["ic"])]
    return {"batches": [b.task for b in batches[1:]], "seconds": times, "median_seconds": med,
            "ratio_of_medians": med["mote"] / med["ic"], "ratio_of_sums": sum(times["mote"]) / sum(times["ic"]),
            "median_of_paired_ratios": statistics.median(ratios), "goal": 1.10}


def gains_table(results: dict, baseline: str) -> dict:
    out = {}
    for name in results:
        if name == baseline:
            continue
        g = {t: results[name]["averages"][t] - results[baseline]["averages"][t]
             for t in TYPES if t in results[name]["averages"] and t in results[baseline]["averages"]}
        g["overall"] = results[name]["average_of_types"] - results[baseline]["average_of_types"]
        out[name] = g
    return out


def markdown(payload: dict) -> str:
    from mote_rag.evaluation import compare

    results = payload["results"]
    lines = [f"# TA-CL comparison ({payload['steps']} steps per arm, batch {payload['batch_size']}, "
             f"seed {payload['seed']}, budget {payload['budget_minutes']} min/arm)", ""]
    for ref in ("plain", "base"):
        gains = payload.get(f"gains_vs_{ref}", {})
        if not gains:
            continue
        arms = [a for a in ("mote", "ic", "plain") if a in gains]
        lines += [f"## Gain over `{ref}` (points, per-type averages)", "",
                  "| type | " + " | ".join(arms) + " | MoTE - IC |", "|---" * (len(arms) + 2) + "|"]
        for t in (*TYPES, "overall"):
            if all(t in gains[a] for a in arms):
                diff = gains["mote"][t] - gains["ic"][t] if "mote" in gains and "ic" in gains else None
                lines.append(f"| {t} | " + " | ".join(f"{gains[a][t]:+.2f}" for a in arms) +
                             (f" | {diff:+.2f} |" if diff is not None else " | |"))
        lines.append("")
    st = payload.get("step_time")
    if st:
        lines += [f"Step time MoTE/IC at equal batch (same batches, interleaved, same run): "
                  f"{st['ratio_of_medians']:.3f} (median {st['median_seconds']['mote']:.2f}s vs "
                  f"{st['median_seconds']['ic']:.2f}s; goal <= 1.10)", ""]
    if len(results) > 1:
        baseline = "plain" if "plain" in results else next(iter(results))
        lines += ["## All scores", "", compare(results, baseline=baseline), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(default_config_path()), help="TA-CL recipe (default mix)")
    parser.add_argument("--budget-minutes", type=float, default=14.0, help="training time per arm")
    parser.add_argument("--steps", type=int, help="fixed steps per arm (overrides the budget)")
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--mini-batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=64, help="training sequence length")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)")
    parser.add_argument("--timing-batches", type=int, default=6)
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--work-dir", default=str(REPO / "tmp" / "train_compare"))
    parser.add_argument("--full-eval", action="store_true", help="the whole default suite (slow)")
    parser.add_argument("--eval-datasets", nargs="+", help="only these datasets of the suite (smoke runs)")
    parser.add_argument("--cache-dir", default=str(REPO / "tmp" / "train_compare" / "eval_cache"),
                        help="embedding cache (by fingerprint): the untuned base is embedded once across runs")
    parser.add_argument("--base-only", action="store_true", help="evaluate the untuned base only (warms the cache)")
    parser.add_argument("--name", default="train_compare", help="result file name under benchmarks/results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from mote_rag import MoTEModel
    from mote_rag.evaluation import evaluate
    from mote_rag.training.data import load_training_data
    from mote_rag.training.trainer import Trainer

    started = time.time()
    config = load_config(args.config, batch_size=args.batch_size, mini_batch_size=args.mini_batch_size,
                         max_seq_length=args.max_seq_length, learning_rate=args.learning_rate, seed=args.seed,
                         threads=args.threads, checkpoint_every=0)
    config = replace(config, tasks=tuple(replace(t, batch_size=args.batch_size) for t in config.tasks))
    data = load_training_data(config)
    suite = eval_suite(args.full_eval)
    if args.eval_datasets:
        suite = suite.select(datasets=args.eval_datasets)
    payload = {"reference": "plain arm (same recipe, dense, no prefixes) and the untuned base",
               "config": config.to_dict(), "budget_minutes": args.budget_minutes, "batch_size": args.batch_size,
               "seed": args.seed, "threads": args.threads, "eval_suite": [d.to_dict() for d in suite.datasets],
               "datasets": {t: {d.name: len(d.examples) for d in ds} for t, ds in data.items()},
               "results": {}, "train_logs": {}}

    def save():
        payload["elapsed_seconds"] = time.time() - started
        results = payload["results"]
        if "plain" in results:
            payload["gains_vs_plain"] = gains_table(results, "plain")
        if "base" in results:
            payload["gains_vs_base"] = gains_table(results, "base")
        write_result(args.name, payload)
        write_bytes_atomic(RESULTS / f"{args.name}.md", markdown(payload).encode())

    if args.base_only:
        base = MoTEModel.dense(config.base, use_prefixes=False)
        result = evaluate(base, suite=suite, name="base", show_progress=False, cache_dir=args.cache_dir)
        print({k: (round(v["main_score"], 2), round(v["seconds"], 1)) for k, v in result["datasets"].items()})
        return 0
    print(f"[{time.strftime('%H:%M:%S')}] measuring MoTE vs IC step time on {args.timing_batches} batches", flush=True)
    step_time = measure_step_time(config, data, args.timing_batches)
    payload["step_time"] = step_time
    print(f"  MoTE/IC step time {step_time['ratio_of_medians']:.3f} (medians {step_time['median_seconds']})", flush=True)
    if args.steps:
        steps = args.steps
    else:
        per_step = max(step_time["median_seconds"].values())
        steps = max(10, min(args.max_steps, int(args.budget_minutes * 60 / per_step)))
    payload["steps"] = steps
    config = replace(config, steps=steps, log_every=max(1, steps // 20))
    print(f"  {steps} steps per arm (budget {args.budget_minutes} min/arm)", flush=True)

    work = Path(args.work_dir)
    for arm in args.arms:
        print(f"[{time.strftime('%H:%M:%S')}] training {arm}", flush=True)
        trainer = Trainer(config.with_arm(arm, str(work / arm)), data=data, show_progress=False)
        log = trainer.train()
        payload["train_logs"][arm] = {k: log[k] for k in ("steps_done", "train_seconds", "per_task",
                                                          "median_step_seconds", "fingerprint", "temperatures")}
        print(f"  {arm}: {log['train_seconds']:.0f}s, " + ", ".join(
            f"{t} {s['first_loss']:.3f}->{s['last_loss']:.3f}" for t, s in log["per_task"].items()), flush=True)
        print(f"[{time.strftime('%H:%M:%S')}] evaluating {arm}", flush=True)
        payload["results"][arm] = evaluate(trainer.model, suite=suite, name=arm, show_progress=False)
        save()
        del trainer
    # the untuned base last: its embeddings are usually cached already (--base-only warms the cache)
    print(f"[{time.strftime('%H:%M:%S')}] evaluating the untuned base", flush=True)
    base = MoTEModel.dense(config.base, use_prefixes=False)
    payload["results"]["base"] = evaluate(base, suite=suite, name="base", show_progress=False,
                                         cache_dir=args.cache_dir)
    save()
    print(markdown(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
