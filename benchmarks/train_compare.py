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
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from _common import RESULTS, write_result

from mote_rag.atomic import write_bytes_atomic, write_json_atomic
from mote_rag.training.config import default_config_path, load_config

REPO = Path(__file__).resolve().parents[1]
MIX_CONFIG = default_config_path().with_name("train_mix.json")  # every task; variants may keep only some

# name -> TrainConfig overrides. Only the model or its trainable set differs between variants.
VARIANTS: dict[str, dict] = {
    "plain": {"arm": "plain"},  # dense, no prefixes
    "ic": {"arm": "ic"},  # dense, instruction prefixes
    "mote": {"arm": "mote"},  # the paper: experts + prefixes
    "mote_router": {"arm": "mote", "use_prefixes": False},  # experts reached by routing alone
    "mote_frozen": {"arm": "mote", "experts_only": True},  # trunk frozen, prefixes
    "mote_router_frozen": {"arm": "mote", "use_prefixes": False, "experts_only": True},
    "mote_router_frozen_lr3": {"arm": "mote", "use_prefixes": False, "experts_only": True, "expert_lr_multiplier": 3.0},
    "mote_router_frozen_all": {"arm": "mote", "use_prefixes": False, "experts_only": True, "placement": "all"},
    "mote_router_all": {"arm": "mote", "use_prefixes": False, "placement": "all"},
    "mote_router_lora16": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "expert_rank": 16,
        "expert_lr_multiplier": 10.0,
    },
    "mote_router_lora16_all": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "expert_rank": 16,
        "expert_lr_multiplier": 10.0,
        "placement": "all",
    },
    # Retrieval-only recipes (the RAG user's case): every step is a retrieval batch from the same datasets. The
    # frozen-trunk MoTE then leaves the classification and clustering paths bit-identical to the base.
    "plain_retrieval": {"arm": "plain", "train_tasks": ("retrieval",)},
    "mote_router_frozen_retrieval": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "train_tasks": ("retrieval",),
    },
    # Screens of the retrieval recipe: more expert layers (EB), a larger expert learning rate, low-rank experts,
    # and experts on top of a trainable trunk (asymmetric query/document paths, no bit-identity guarantee).
    "mote_router_frozen_all_retrieval": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "placement": "all",
        "train_tasks": ("retrieval",),
    },
    "mote_router_frozen_lr3_retrieval": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "expert_lr_multiplier": 3.0,
        "train_tasks": ("retrieval",),
    },
    "mote_router_lora16_retrieval": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "expert_rank": 16,
        "expert_lr_multiplier": 10.0,
        "train_tasks": ("retrieval",),
    },
    "mote_router_retrieval": {"arm": "mote", "use_prefixes": False, "train_tasks": ("retrieval",)},
}
DENSE = ("plain", "ic", "plain_retrieval")  # the dense arms; the best on retrieval is the reference
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)


def variant_config(config, name: str, seed: int, work: Path):
    overrides = dict(VARIANTS[name])
    arm = overrides.pop("arm")
    cfg = config.with_arm(arm, str(work / name / f"seed-{seed}"))
    train_tasks = overrides.pop("train_tasks", None)
    if train_tasks is not None:
        overrides["tasks"] = tuple(t for t in cfg.tasks if t.name in train_tasks)
    return replace(cfg, seed=seed, **overrides)


def run_one(config, name: str, seed: int, work: Path, data, suite, cache_dir: str) -> dict:
    """Train (resuming from a checkpoint if one exists), save, evaluate; the eval JSON marks the run done."""
    from mote_rag import MoTEModel
    from mote_rag.training.trainer import LOG_NAME, Trainer, latest_checkpoint

    out = work / name / f"seed-{seed}"
    done = out / "eval_compare.json"
    if done.is_file():
        return json.loads(done.read_text())
    cfg = variant_config(config, name, seed, work)
    log_file = out / LOG_NAME
    if (out / "mote_config.json").is_file() and log_file.is_file() and json.loads(log_file.read_text()).get("finished"):
        model = MoTEModel.from_pretrained(out)
    else:
        trainer = Trainer(cfg, data={t.name: data[t.name] for t in cfg.tasks}, show_progress=False)
        resume = latest_checkpoint(out) is not None
        print(
            f"[{time.strftime('%H:%M:%S')}] training {name} seed {seed}" + (" (resumed)" if resume else ""), flush=True
        )
        log = trainer.train(resume=resume or None)
        print(
            f"  {log['train_seconds']:.0f}s, "
            + ", ".join(f"{t} {s['first_loss']:.3f}->{s['last_loss']:.3f}" for t, s in log["per_task"].items()),
            flush=True,
        )
        model = trainer.model
    print(f"[{time.strftime('%H:%M:%S')}] evaluating {name} seed {seed}", flush=True)
    result = evaluate_reusing_base(model, config, name, suite, work, f"{name}/seed-{seed}", cache_dir)
    result["variant"], result["seed"] = name, seed
    write_json_atomic(done, result)
    return result


def unchanged_tasks(model, config, name: str) -> set[str]:
    """Task paths of a trained model whose weights equal the variant's starting point bit for bit, with the
    same prefix, length and pooling settings as the evaluated base: their scores are the base's by construction."""
    from mote_rag import MoTEModel

    base = MoTEModel.dense(config.base, use_prefixes=False)
    if (model.use_prefixes, model.max_seq_length, model.normalize) != (
        base.use_prefixes,
        base.max_seq_length,
        base.normalize,
    ):
        return set()
    start = initial_model(config, name)
    same = set()
    for task in model.tasks.names:
        trained, initial = model.dense_path(task).state_dict(), start.dense_path(task).state_dict()
        if trained.keys() == initial.keys() and all(torch.equal(trained[k], initial[k]) for k in trained):
            same.add(task)
    return same


def evaluate_reusing_base(model, config, name: str, suite, work: Path, run_name: str, cache_dir: str) -> dict:
    """evaluate() on the datasets whose task paths changed; datasets read only through paths that are bit-identical
    to the base's take the base's result (marked `reused_from_base`). Frozen-trunk retrieval recipes change only
    the query and document paths, so this skips most of their evaluation without changing a figure."""
    from mote_rag.evaluation import evaluate
    from mote_rag.evaluation.suite import Suite

    same = unchanged_tasks(model, config, name)
    base_file = work / "base" / "eval_compare.json"
    base = json.loads(base_file.read_text()) if base_file.is_file() else None

    def reads(spec) -> set[str]:
        return {spec.option(k) for k in ("task", "query_task", "doc_task")} - {None}

    reuse = [s for s in suite.datasets if base and s.name in base["datasets"] and reads(s) <= same]
    todo = tuple(s for s in suite.datasets if s not in reuse)
    result = (
        evaluate(
            model, suite=Suite(suite.name, todo, suite.root), name=run_name, show_progress=False, cache_dir=cache_dir
        )
        if todo
        else None
    )
    if not reuse:
        return result
    print(
        f"  {len(reuse)} datasets read only unchanged paths ({', '.join(sorted(same))}): base results reused",
        flush=True,
    )
    datasets = {
        s.name: (result["datasets"][s.name] if s in todo else {**base["datasets"][s.name], "reused_from_base": True})
        for s in suite.datasets
    }
    averages = {}
    for t in dict.fromkeys(r["type"] for r in datasets.values()):
        averages[t] = float(np.mean([r["main_score"] for r in datasets.values() if r["type"] == t]))
    out = dict(result or base)
    out.update(
        {
            "model": run_name,
            "fingerprint": model.fingerprint,
            "datasets": datasets,
            "averages": averages,
            "average_of_types": float(np.mean(list(averages.values()))),
            "unchanged_tasks": sorted(same),
        }
    )
    return out


def dev_suite(config, seed: int, work: Path):
    """Dev data for choosing interpolation alphas, never the test splits: STS-B and SICK-R dev, SST-2 dev
    (classification path) and, for the retrieval experts, MedQuAD and Quora *training* queries that this seed's
    recipe did not sample (folders under the work dir that link the shared corpus and list those queries)."""
    import os

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


def initial_model(config, name: str):
    """The model a variant's training started from (upcycled base, same layout)."""
    from mote_rag import MoTEModel

    v = VARIANTS[name]
    placement = v.get("placement", config.placement)
    return MoTEModel.upcycle(
        config.base,
        placement=list(placement) if isinstance(placement, tuple) else placement,
        use_prefixes=v.get("use_prefixes", True),
        expert_rank=v.get("expert_rank"),
    )


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
    """`wise`: each expert interpolated toward its start, alpha per path chosen on dev splits (retrieval experts
    on the retrieval dev sets; classification and clustering experts on the STS/SST-2 dev sets, as no clustering
    dev split exists); `wave`: the experts averaged into one dense block. Evaluated like a trained run."""
    from mote_rag import MoTEModel
    from mote_rag.evaluation import evaluate
    from mote_rag.merging import interpolate_experts, wave

    trained_dir = work / name / f"seed-{seed}"
    out = work / f"{name}+{kind}" / f"seed-{seed}"
    done = out / "eval_compare.json"
    if done.is_file():
        return json.loads(done.read_text())
    if not (trained_dir / "eval_compare.json").is_file():
        print(f"  {name} seed {seed} has not finished: no {kind} variant yet", flush=True)
        return None
    trained = MoTEModel.from_pretrained(trained_dir)
    extra = {}
    if kind == "wave":
        model = wave(trained)
    else:
        initial = initial_model(config, name)
        dev = dev_suite(config, seed, work)
        if only:  # smoke runs: the dev sets of the chosen test sets only
            dev = dev.select(datasets=[d.name for d in dev.datasets if d.name[:-4] in only] or None)
        scores = {}
        for a in alphas:
            print(f"[{time.strftime('%H:%M:%S')}] {name} seed {seed}: dev scores at alpha {a}", flush=True)
            r = evaluate(
                interpolate_experts(trained, initial, a),
                suite=dev,
                name=f"alpha {a}",
                show_progress=False,
                cache_dir=cache_dir,
            )
            scores[a] = {d: x["main_score"] for d, x in r["datasets"].items()}
        sentence_dev = ("stsb_dev", "sickr_dev", "sst2_dev")
        measured = list(scores[alphas[-1]])
        paths = {
            "retrieval": [d for d in measured if d not in sentence_dev],
            "classification": [d for d in measured if d in sentence_dev],
        }
        best = {
            p: max(alphas, key=lambda a: (np.mean([scores[a][d] for d in ds]), a)) if ds else 1.0
            for p, ds in paths.items()
        }
        chosen = {
            "search_query": best["retrieval"],
            "search_document": best["retrieval"],
            "classification": best["classification"],
            "clustering": best["classification"],
        }
        extra = {"alphas": chosen, "dev_scores": {str(a): v for a, v in scores.items()}}
        print(f"  chosen on dev: {chosen}", flush=True)
        model = interpolate_experts(trained, initial, chosen)
    print(f"[{time.strftime('%H:%M:%S')}] evaluating {name}+{kind} seed {seed}", flush=True)
    result = evaluate_reusing_base(model, config, name, suite, work, f"{name}+{kind}/seed-{seed}", cache_dir)
    result.update({"variant": f"{name}+{kind}", "seed": seed, **extra})
    write_json_atomic(done, result)
    return result


def base_result(config, suite, cache_dir: str, work: Path) -> dict:
    from mote_rag import MoTEModel
    from mote_rag.evaluation import evaluate

    done = work / "base" / "eval_compare.json"
    if done.is_file():
        return json.loads(done.read_text())
    print(f"[{time.strftime('%H:%M:%S')}] evaluating the untuned base", flush=True)
    result = evaluate(
        MoTEModel.dense(config.base, use_prefixes=False),
        suite=suite,
        name="base",
        show_progress=False,
        cache_dir=cache_dir,
    )
    write_json_atomic(done, result)
    return result


def collect(work: Path) -> dict[str, list[dict]]:
    """Every finished run under the work folder: {variant: [result per seed]}, the base first."""
    runs: dict[str, list[dict]] = {}
    base = work / "base" / "eval_compare.json"
    if base.is_file():
        runs["base"] = [json.loads(base.read_text())]
    for f in sorted(work.glob("*/seed-*/eval_compare.json")):
        runs.setdefault(f.parent.parent.name, []).append(json.loads(f.read_text()))
    return runs


def report(name: str, work: Path, config, meta: dict, n_boot: int) -> None:
    from mote_rag.evaluation.gains import compute_gains, gains_markdown, gains_to_json, plot_gains
    from mote_rag.evaluation.training_mix import recipe_sources

    runs = collect(work)
    if "base" not in runs or len(runs) < 2:
        print("nothing to report yet")
        return
    sources = recipe_sources(config)
    variants = [v for v in runs if v != "base"]
    vs_base = compute_gains(runs, "base", sources, n_boot=n_boot)
    payload = {
        **meta,
        "reference": "untuned base (no prefixes); the best dense arm (plain or ic)",
        "runs": {
            v: [
                {
                    "seed": r.get("seed"),
                    "fingerprint": r.get("fingerprint"),
                    "averages": r["averages"],
                    "scores": {d: x["main_score"] for d, x in r["datasets"].items()},
                }
                for r in rs
            ]
            for v, rs in runs.items()
        },
        "gains_vs_base": gains_to_json(vs_base),
        "in_mix_sources": sorted(sources),
    }
    lines = [
        f"# TA-CL study: {meta.get('steps')} steps x batch {meta.get('batch_size')} per run",
        "",
        "Command: `" + meta.get("command", "") + "`",
        "",
        "## Gain over the untuned base",
        "",
        gains_markdown(vs_base, variants),
    ]
    dense = [d for d in DENSE if d in runs]
    if dense:
        best = max(dense, key=lambda d: sum(r["averages"].get("retrieval", 0) for r in runs[d]) / len(runs[d]))
        others = [v for v in variants if v != best]
        if others:
            vs_dense = compute_gains({k: runs[k] for k in [best, *others]}, best, sources, n_boot=n_boot)
            payload["best_dense_on_retrieval"] = best
            payload[f"gains_vs_{best}"] = gains_to_json(vs_dense)
            lines += [f"## Gain over the best dense arm on retrieval (`{best}`)", "", gains_markdown(vs_dense, others)]
    if "ic" in runs:
        ratio = {}
        for v in variants:
            if v.startswith("mote") and "retrieval" in vs_base["models"][v]["types"]["all"]:
                ic = vs_base["models"]["ic"]["types"]["all"]["retrieval"].delta
                ratio[v] = vs_base["models"][v]["types"]["all"]["retrieval"].delta / ic if ic else None
        payload["retrieval_gain_ratio_vs_ic"] = ratio
        lines += [
            "Retrieval gain over the base, variant / IC (the paper's MoTE/IC is 1.59): "
            + ", ".join(f"{v} {r:.2f}" if r is not None else f"{v} n/a" for v, r in ratio.items()),
            "",
        ]
    targets = check_targets(vs_base, payload)
    if targets:
        payload["targets"] = targets
        lines += [
            "## Targets (issue 12), per MoTE variant",
            "",
            "| variant | outside the mix: overall > 0, no type "
            "below -1 | retrieval vs best dense: interval above 0 | retrieval gain >= 1.6x IC's |",
            "|---|---|---|---|",
        ]
        lines += [f"| {v} | {t['outside']} | {t['vs_dense']} | {t['ratio']} |" for v, t in targets.items()] + [""]
    write_result(name, payload)
    write_bytes_atomic(RESULTS / f"{name}.md", "\n".join(lines).encode())
    plot_gains(vs_base, RESULTS / f"{name}.png", variants)
    print("\n".join(lines))


def check_targets(vs_base: dict, payload: dict) -> dict:
    """The three targets for every MoTE variant, each 'met' or 'missed' with the figure that decides it."""
    best = payload.get("best_dense_on_retrieval")
    vs_dense = payload.get(f"gains_vs_{best}", {}).get("models", {}) if best else {}
    out = {}
    for v, g in vs_base["models"].items():
        if not v.startswith("mote"):
            continue
        outside = g["types"].get("out_of_mix", {})
        overall = g["overall"].get("out_of_mix") if isinstance(g.get("overall"), dict) else None
        worst = min((iv.delta for iv in outside.values()), default=None)
        t = {}
        if overall is not None and worst is not None:
            ok = overall.delta > 0 and worst >= -1
            t["outside"] = f"{'met' if ok else 'missed'}: overall {overall}, worst type {worst:+.2f}"
        else:
            t["outside"] = "n/a"
        r = vs_dense.get(v, {}).get("types", {}).get("all", {}).get("retrieval")
        t["vs_dense"] = (
            (f"{'met' if r['low'] > 0 else 'missed'}: {r['delta']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}] vs {best}")
            if r
            else "n/a"
        )
        ratio = payload.get("retrieval_gain_ratio_vs_ic", {}).get(v)
        t["ratio"] = f"{'met' if ratio is not None and ratio >= 1.6 else 'missed'}: {ratio:.2f}x" if ratio else "n/a"
        out[v] = t
    return out


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
        if not args.skip_base:
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
