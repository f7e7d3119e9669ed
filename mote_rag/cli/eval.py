"""`mote-rag eval`: score a model on an evaluation suite, or compare saved results."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .main import BadInput

DESCRIPTION = """\
Evaluate an encoder on an MTEB-style suite (retrieval nDCG@10, reranking MAP, STS Spearman, pair
classification AP, classification accuracy, clustering V-measure) and write <out>/<name>.json,
<out>/table.md and <out>/averages.png.

--model takes a saved MoTE dir, an exported ONNX dir, a dense transformers checkpoint dir, or `base`
(the embedded all-MiniLM-L6-v2); --backend sentence-transformers loads the dir as a plain
sentence-transformers model instead. Corpus and sentence embeddings are cached under --cache-dir
(default <out>/cache) per (model fingerprint, task path, dataset), so reruns are cheap.

Compare saved results without running a model:
  mote-rag eval --compare results/base.json results/mote.json --baseline base --out report/
(the baseline is a model name as stored in its JSON, or its file stem). With --model, any --compare
files are added to the table next to the new result. Files whose JSON names the same model are seeds of that
model. Beside the score table, <out>/gains.md and <out>/gains.png give every model's gain over the baseline
with 95% paired bootstrap intervals (over queries/pairs/rows, and seeds), per dataset and per task type, with
datasets inside the training mix (--train-config, default: the default recipe) apart from those outside it.

Examples:
  mote-rag eval --model base --no-prefixes --suite default --out results/
  mote-rag eval --model runs/mote --suite quick --out results/ --max-corpus 2000
  mote-rag eval --model runs/mote --datasets scifact,stsb --out results/
  mote-rag eval --model runs/onnx --suite my_suite.json --tasks retrieval,sts --out results/
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a model on an MTEB-style suite, or compare results",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", help="MoTE dir, ONNX dir, dense checkpoint dir, or `base`")
    p.add_argument("--name", help="model name in the results (default: the model folder's name)")
    p.add_argument(
        "--backend",
        choices=["auto", "sentence-transformers"],
        default="auto",
        help="how to open --model (auto: by what the folder holds)",
    )
    p.add_argument("--no-prefixes", action="store_true", help="no instruction prefixes (dense/base models)")
    p.add_argument(
        "--suite",
        default="default",
        help="default | quick | full (default with the whole MedQuAD corpus) | a suite JSON file of your folders",
    )
    p.add_argument("--datasets", help="comma-separated dataset names of the suite to run")
    p.add_argument(
        "--collection",
        help="read retrieval/reranking sets through this collection's experts (search_query@NAME from "
        "`mote-rag adapt --collection NAME`), as the collection's index routes its queries",
    )
    p.add_argument(
        "--tasks",
        help="comma-separated task types: retrieval,reranking,sts,pair_classification,classification,clustering",
    )
    p.add_argument("--out", default="results", help="output folder (default: results/)")
    p.add_argument("--cache-dir", help="embedding cache folder (default: <out>/cache)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the embedding cache")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-corpus", type=int, help="cap corpus size per retrieval set (keeps all positives)")
    p.add_argument("--max-queries", type=int, help="cap queries per retrieval set")
    p.add_argument("--max-rows", type=int, help="cap rows/pairs of STS, pair, classification, clustering sets")
    p.add_argument("--compare", nargs="+", metavar="RESULT_JSON", help="result JSON files to put in the table")
    p.add_argument("--baseline", help="column the deltas are computed against (default: the first column)")
    p.add_argument(
        "--train-config",
        help="TA-CL recipe whose datasets count as 'in the mix' (default: the default "
        "recipe; 'none': every dataset counts as outside)",
    )
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap draws for the intervals (default 1000)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _csv(value: str | None, option: str = "--datasets") -> list[str] | None:
    from .main import option_list

    return option_list(value, option)


def open_model(args):
    from ..cli.main import BadInput
    from ..loading import EMBEDDED, load_encoder

    if args.backend == "sentence-transformers":
        if args.model in EMBEDDED:
            from ..default_base import embedded_base_path

            path = embedded_base_path()
        else:
            path = Path(args.model)
            if not path.is_dir():
                raise BadInput(f"model path {path} is not a directory")
        from ..evaluation.adapters import SentenceTransformerEncoder

        return SentenceTransformerEncoder(path)
    return load_encoder(args.model, use_prefixes=not args.no_prefixes)


def run(args) -> int:
    from ..evaluation.report import load_result, write_report
    from ..evaluation.suite import get_suite

    if not args.model and not args.compare:
        raise BadInput("give --model to evaluate, or --compare RESULT_JSON ... to build a comparison table")
    if args.n_boot < 100:
        raise BadInput(f"--n-boot must be at least 100, got {args.n_boot}")
    from .main import input_file, output_folder

    output_folder(args.out, "--out")  # before any work: a file there would fail only when the report is written
    if args.cache_dir and not args.no_cache:
        output_folder(args.cache_dir, "--cache-dir")
    if args.model and (Path(args.suite).suffix == ".json" or Path(args.suite).is_dir()):
        input_file(args.suite, "--suite", "a suite JSON file")
    seeds: dict[str, list[dict]] = {}
    stems: dict[str, str] = {}
    for f in args.compare or []:
        r = load_result(input_file(f, "--compare", "result JSON files"))
        name = str(r.get("model") or Path(f).stem)
        seeds.setdefault(name, []).append(r)
        stems[Path(f).stem] = name
    results = {name: rs[0] for name, rs in seeds.items()}
    out = Path(args.out)
    if args.model:
        from ..evaluation.runner import encoder_name, evaluate

        suite = get_suite(args.suite).select(_csv(args.datasets), _csv(args.tasks, "--tasks"))
        limits = {
            k: v
            for k, v in (
                ("max_corpus", args.max_corpus),
                ("max_queries", args.max_queries),
                ("max_rows", args.max_rows),
            )
            if v is not None
        }
        encoder = open_model(args)
        if args.collection is not None:
            try:
                encoder.tasks.collection_paths(args.collection)
            except ValueError as exc:
                raise BadInput(f"--collection {args.collection}: {exc}") from None
        name = args.name or ("base" if args.model in ("base", "embedded", "default") else encoder_name(encoder))
        cache = None if args.no_cache else (args.cache_dir or out / "cache")
        result = evaluate(
            encoder,
            suite,
            out_dir=None,
            cache_dir=cache,
            show_progress=not args.quiet,
            name=name,
            limits=limits or None,
            batch_size=args.batch_size,
            collection=args.collection,
        )
        results[name] = result
        seeds.setdefault(name, []).append(result)
        for ds, r in result["datasets"].items():
            print(f"{ds:24s} {r['main_metric']:10s} {r['main_score']:7.2f}   ({r['seconds']:.1f} s)")
        print(f"{len(result['datasets'])} datasets in {result['seconds']:.1f} s")
    baseline = stems.get(args.baseline, args.baseline) if args.baseline else None
    if baseline and baseline not in results:
        raise BadInput(f"--baseline {args.baseline!r} is not one of: {', '.join(results)}")
    paths = write_report(results, out, baseline)
    if len(seeds) > 1:
        paths.update(write_gains(seeds, baseline or next(iter(seeds)), out, args))
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0


def write_gains(seeds: dict[str, list[dict]], baseline: str, out: Path, args) -> dict[str, Path]:
    """gains.md / gains.json / gains.png: gains over the baseline with paired bootstrap intervals."""
    from ..atomic import write_bytes_atomic, write_json_atomic
    from ..evaluation.gains import compute_gains, gains_markdown, gains_to_json, plot_gains

    sources = _mix_sources(args.train_config)
    try:
        gains = compute_gains(seeds, baseline, sources, n_boot=args.n_boot)
    except ValueError as exc:
        print(f"no intervals: {exc}", file=sys.stderr)
        return {}
    md = gains_markdown(gains)
    print(md)
    write_bytes_atomic(out / "gains.md", md.encode("utf-8"))
    write_json_atomic(out / "gains.json", gains_to_json(gains))
    return {"gains": out / "gains.md", "gains_chart": plot_gains(gains, out / "gains.png")}


def _mix_sources(train_config: str | None) -> set[str] | None:
    """Sources of the recipe's datasets (its data folder need not exist to know what it trains on)."""
    import json

    from ..evaluation.training_mix import recipe_sources
    from ..training.config import ConfigError, default_config_path, parse_config

    if (train_config or "").lower() == "none":
        return None
    path = Path(train_config) if train_config else default_config_path()
    if path.is_dir():
        raise BadInput(f"--train-config {path} is a directory; it expects a TA-CL recipe JSON file")
    if not path.is_file():
        raise BadInput(f"--train-config {path} is not a file")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return recipe_sources(parse_config(raw, source=str(path), data_dir=".", check_files=False))
    except (json.JSONDecodeError, ConfigError) as exc:
        raise BadInput(f"--train-config {path}: {exc}") from None
