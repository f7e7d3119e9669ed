"""TA-CL study: which way of training task experts pays, with paired bootstrap intervals, in and out of the mix.

Every variant trains on the same recipe (data, steps, batch, learning rate) and seed; only the model or its
trainable set differs (VARIANTS below). Each (variant, seed) run is trained, saved and evaluated on the `compare`
suite (mote_rag.evaluation.suite.COMPARE: every task type, datasets inside the training mix and outside it).
References, measured in the same study: the untuned base (no prefixes) and the best dense arm (`plain` or `ic`).

Resumable: a finished run (its eval JSON exists) is skipped; a stopped run resumes from its last checkpoint.
Results: benchmarks/results/<name>.json, .md (tables with 95% intervals) and .png (gains with error bars).

    python benchmarks/train_compare.py --variants plain ic mote mote_router_frozen --seeds 3 --steps 300 \
        --batch-size 32 --name train_study
    python benchmarks/train_compare.py --name train_study --report-only     # tables from what has finished

Post-hoc variants (no training): `--interpolate VARIANT` adds VARIANT+wise (each expert moved toward its initial
weights, alpha per task chosen on dev splits only); `--wave VARIANT` adds VARIANT+wave (experts averaged).

The study's parts live in benchmarks/train_study/ (arms, runner, reuse, wise, report); this file is its command line.
A dataset whose task paths are bit-identical to an evaluated run's (same path fingerprints) takes that run's score
instead of being evaluated again (train_study/reuse.py).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import torch
from train_study.arms import VARIANTS
from train_study.report import report
from train_study.runner import DONE, base_result, run_one
from train_study.wise import ALPHAS, posthoc

from mote_rag.training.config import default_config_path, load_config

REPO = Path(__file__).resolve().parents[1]
MIX_CONFIG = default_config_path().with_name("train_mix.json")  # every task; variants may keep only some


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(MIX_CONFIG), help="TA-CL recipe (default: the all-task mix)")
    parser.add_argument(
        "--variants", nargs="*", default=["plain", "ic", "mote", "mote_router_frozen"], choices=sorted(VARIANTS)
    )
    parser.add_argument("--seeds", type=int, default=1, help="seeds per variant (13, 14, ...)")
    parser.add_argument("--first-seed", type=int, default=13)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--mini-batch-size", type=int, default=64)
    parser.add_argument("--max-seq-length", type=int, default=64, help="training sequence length")
    parser.add_argument("--learning-rate", type=float, default=5e-5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--name", default="train_study", help="result file name under benchmarks/results")
    parser.add_argument("--work-dir", help="runs and checkpoints (default tmp/<name>)")
    parser.add_argument("--report-only", action="store_true", help="build the tables from finished runs")
    parser.add_argument("--skip-base", action="store_true", help="another process evaluates the base")
    parser.add_argument(
        "--interpolate",
        nargs="+",
        default=[],
        metavar="VARIANT",
        help="add VARIANT+wise: experts interpolated toward their start, alpha chosen on dev splits",
    )
    parser.add_argument("--wave", nargs="+", default=[], metavar="VARIANT", help="add VARIANT+wave: experts averaged")
    parser.add_argument(
        "--alphas",
        nargs="+",
        type=float,
        default=list(ALPHAS),
        help=f"interpolation grid searched on the dev splits (default {' '.join(map(str, ALPHAS))})",
    )
    parser.add_argument("--eval-datasets", nargs="+", help="only these datasets of the compare suite (smoke runs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from mote_rag.evaluation.suite import COMPARE
    from mote_rag.training.data import load_training_data

    suite = COMPARE.select(datasets=args.eval_datasets) if args.eval_datasets else COMPARE
    work = Path(args.work_dir or REPO / "tmp" / args.name)
    cache_dir = str(work / "eval_cache")
    config = load_config(
        args.config,
        batch_size=args.batch_size,
        mini_batch_size=args.mini_batch_size,
        max_seq_length=args.max_seq_length,
        learning_rate=args.learning_rate,
        threads=args.threads,
        checkpoint_every=args.checkpoint_every,
        steps=args.steps,
        log_every=max(1, args.steps // 20),
    )
    config = replace(config, tasks=tuple(replace(t, batch_size=args.batch_size) for t in config.tasks))
    meta = {
        "command": "python benchmarks/train_compare.py " + " ".join(sys.argv[1:]),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "threads": args.threads,
        "config": config.to_dict(),
        "variants": {v: VARIANTS[v] for v in args.variants},
        "eval_suite": [d.to_dict() for d in suite.datasets],
    }
    if not args.report_only:
        data = load_training_data(config)
        if not args.skip_base or (work / "base" / DONE).is_file():  # evaluated, or its scores indexed for reuse
            base_result(config, suite, cache_dir, work)
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            # the tables are built once at the end (the bootstrap over every run takes minutes); each finished
            # run's eval JSON is durable, and `--report-only` builds the tables from them at any time
            for name in args.variants:
                run_one(config, name, seed, work, data, suite, cache_dir)
            for kind, names in (("wave", args.wave), ("wise", args.interpolate)):
                for name in names:
                    posthoc(config, name, seed, work, suite, cache_dir, kind, args.eval_datasets, args.alphas)
    report(args.name, work, config, meta, args.n_boot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
