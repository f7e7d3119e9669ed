"""`mote-rag adapt`: adapt a model to one collection's (query, passage) pairs, by default without re-embedding it."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Train only the query expert (--side query, the default) on (query, passage) pairs: the passages go through
the frozen document path once, so every vector already in an index stays valid and no document is
re-embedded. With --collection NAME the trained expert is a new path, search_query@NAME, that starts as a
copy of search_query: other collections keep the base query expert bit for bit, and an index built or
re-routed for the collection (--index, or `mote-rag index --collection NAME`) sends its queries there.
--side both trains the document expert too (search_document@NAME with a collection): that collection must
then be re-indexed.

Pairs: a BEIR folder (its train split's judged pairs), or a JSON Lines file with one pair a line:
{"anchor": "...", "positive": "..."} (also "query"/"passage" or "question"/"answer"). No pairs? Make
some with `mote-rag pairs`.

Exit codes: 0 adapted, 2 bad input (missing path, bad pairs line, bad option), 1 failure while training,
130 interrupted (resume with --resume).
"""

EPILOG = """\
examples:
  mote-rag adapt --model base --pairs ../shared/data/retrieval/medquad --collection medquad -o medquad-model
  mote-rag adapt --model my-mote --pairs pairs.jsonl --collection docs -o my-mote-docs --index docs-index
  mote-rag adapt --model my-mote --pairs pairs.jsonl -o out --resume
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "adapt",
        help="adapt a model to a collection without re-embedding it (query expert only)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="base", help="a saved MoTE folder, or 'base' for the embedded default")
    p.add_argument("--pairs", required=True, help="a BEIR folder (train split) or a JSON Lines pairs file")
    p.add_argument("--split", default="train", help="the BEIR split whose judged pairs train (default: train)")
    p.add_argument("-o", "--output", required=True, help="folder for the adapted model (and its checkpoints)")
    p.add_argument("--collection", default=None, help="train a collection expert, <task>@NAME (default: none)")
    p.add_argument("--side", choices=["query", "both"], default="query", help="which experts learn (default: query)")
    p.add_argument("--index", default=None, help="an index of this collection to re-route to the new query expert")
    p.add_argument("--steps", type=int, default=300, help="optimisation steps (default: 300)")
    p.add_argument("--batch-size", type=int, default=32, help="pairs per step (default: 32)")
    p.add_argument("--lr", type=float, default=5e-5, help="learning rate (default: 5e-5)")
    p.add_argument("--max-seq-length", type=int, default=64, help="training truncation in tokens (default: 64)")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints; 0: none")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--resume", action="store_true", help="continue from the latest checkpoint under --output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def open_model(spec: str):
    from mote_rag.cli.main import BadInput
    from mote_rag.loading import EMBEDDED, encoder_kind

    from ..model import MoTEModel

    if spec in EMBEDDED:
        return MoTEModel.upcycle(use_prefixes=False)  # the default recipe's start: router-only MoTE
    try:
        kind = encoder_kind(spec)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        raise BadInput(f"--model {spec}: {exc}") from None
    if kind == "onnx":
        raise BadInput(f"--model {spec} is an ONNX export; adapt the saved MoTE folder it came from, then export")
    if kind == "dense":
        return MoTEModel.upcycle(spec, use_prefixes=False)
    return MoTEModel.from_pretrained(spec)


def run(args) -> int:
    from pathlib import Path

    from mote_rag.cli.main import BadInput, output_folder

    from ..readers import load_pairs
    from ..training.adapt import AdaptConfig, Adapter

    try:
        config = AdaptConfig(
            side=args.side,
            collection=args.collection,
            steps=args.steps,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            max_seq_length=args.max_seq_length,
            seed=args.seed,
            checkpoint_every=args.checkpoint_every,
        )
    except ValueError as exc:
        raise BadInput(str(exc).replace("batch_size", "--batch-size").replace("steps", "--steps")) from None
    pairs_path = Path(args.pairs)
    if not pairs_path.exists():
        raise BadInput(f"--pairs {pairs_path} not found; it expects a BEIR folder or a JSON Lines pairs file")
    try:
        pairs = load_pairs(pairs_path, split=args.split)
    except (FileNotFoundError, ValueError) as exc:
        raise BadInput(f"--pairs: {exc}") from None
    output_folder(args.output, "--output")
    if args.index is not None and args.side == "both":
        raise BadInput(
            "--index re-routes an index's queries without re-embedding it, which only a query-side adaptation "
            "allows; with --side both, rebuild the collection's index: mote-rag index ... --collection NAME"
        )
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    model = open_model(args.model)
    index = None
    if args.index is not None:  # refused now, not after training, if its documents are not this model's
        from ..index.faiss_index import FaissIndex

        index = FaissIndex.load(args.index, encoder=model)
    adapter = Adapter(model, pairs, config, output_dir=args.output, show_progress_bar=not args.quiet)
    result = adapter.run(resume=args.resume)
    summary = {k: v for k, v in result.to_dict().items() if k != "history"}
    if index is not None:
        index.route_queries(result.query_task)
        index.save(args.index)
        summary["index"] = {"path": args.index, "query_task": index.query_task, "documents_reembedded": 0}
    print(json.dumps(summary, indent=2), file=sys.stdout)
    return 0
