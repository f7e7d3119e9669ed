"""`mote-rag experts`: list, add and remove a saved model's collection experts."""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """\
examples:
  mote-rag experts list my-mote
  mote-rag experts add my-mote --collection medquad            # search_query@medquad, a copy of search_query
  mote-rag experts add my-mote --collection medquad --task search_document
  mote-rag experts remove my-mote search_query@medquad
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "experts",
        help="list, add or remove a model's collection experts",
        description="A model's paths and their fingerprints; add a collection expert (an exact copy of a base "
        "expert, to train with `mote-rag adapt`) or remove one. Every other path stays bit-identical.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="the model's tasks, experts and path fingerprints (JSON)")
    ls.add_argument("model", help="a saved MoTE folder")
    add = sub.add_parser("add", help="add <task>@<collection>, a copy of <task>'s expert")
    add.add_argument("model", help="a saved MoTE folder (rewritten in place)")
    add.add_argument("--collection", required=True)
    add.add_argument("--task", default="search_query", choices=["search_query", "search_document"])
    rm = sub.add_parser("remove", help="remove a collection expert")
    rm.add_argument("model", help="a saved MoTE folder (rewritten in place)")
    rm.add_argument("task", help="the collection task to remove, e.g. search_query@medquad")
    p.set_defaults(func=run)


def run(args) -> int:
    from mote_rag.cli.main import BadInput
    from mote_rag.loading import encoder_kind

    from ..model import MoTEModel

    try:
        kind = encoder_kind(args.model)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        raise BadInput(f"MODEL {args.model}: {exc}") from None
    if kind != "mote":
        raise BadInput(f"MODEL {args.model} is not a saved MoTE folder (it is a {kind} model)")
    model = MoTEModel.from_pretrained(args.model)
    if args.action == "add":
        try:
            name = model.add_collection_expert(args.collection, args.task)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        model.save_pretrained(args.model)
        print(f"added {name} (a copy of {args.task}) to {args.model}", file=sys.stdout)
    elif args.action == "remove":
        try:
            model.remove_collection_expert(args.task)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        model.save_pretrained(args.model)
        print(f"removed {args.task} from {args.model}", file=sys.stdout)
    tasks = [
        {
            "task": t.name,
            "collection": t.collection,
            "expert": t.expert,
            "path_fingerprint": model.path_fingerprint(t.name),
        }
        for t in model.tasks
    ]
    if args.action == "list":
        print(json.dumps({"model": args.model, "fingerprint": model.fingerprint, "tasks": tasks}, indent=2))
    return 0
