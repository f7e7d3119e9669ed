"""`mote-rag index --ray`: the distributed variant of `mote-rag index` (options and run), kept out of index.py.

cli/index.py adds these options with `add_ray_arguments(parser)` and hands over to `run_ray(args)` when
--ray is given. Ray is an optional extra: without it the command says how to install it and exits 2.
"""

from __future__ import annotations

import argparse
import sys


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "distributed indexing on Ray (pip install 'mote-rag[ray]')",
        "--ray embeds the corpus on a Ray cluster (Ray Data, one ONNX encoder actor per worker)\n"
        "and writes --shards N shard indexes in the single-machine format plus shards.json;\n"
        "--model must be an exported ONNX folder. Search the set with mote_rag.index.sharded.ShardedIndex.\n"
        "  mote-rag index corpus.jsonl -o my-set --ray --shards 4 --model ./onnx --address auto",
    )
    group.add_argument(
        "--ray",
        action="store_true",
        help="embed on a Ray cluster and write --shards N shard indexes plus a shards.json manifest",
    )
    group.add_argument(
        "--address", default=None, help="Ray cluster to join ('auto', 'ray://head:10001'); default: start a local one"
    )
    group.add_argument("--shards", type=int, default=None, help="number of shard indexes to write (with --ray)")
    group.add_argument(
        "--workers", type=int, default=None, help="encoder actors (default: the cluster's CPUs // --threads-per-worker)"
    )
    group.add_argument(
        "--threads-per-worker",
        type=int,
        default=1,
        help="onnxruntime threads (and CPUs reserved) per encoder actor (default: 1)",
    )


def check_ray_arguments(args) -> None:
    """Ray-only options without --ray are a mistake worth naming."""
    from mote_rag.cli.main import BadInput

    if getattr(args, "ray", False):
        return
    given = [
        flag
        for flag, value in (("--address", args.address), ("--shards", args.shards), ("--workers", args.workers))
        if value is not None
    ]
    if args.threads_per_worker != 1:
        given.append("--threads-per-worker")
    if given:
        raise BadInput(f"{', '.join(given)} only apply to distributed indexing: add --ray")


def run_ray(args) -> int:
    from mote_rag.cli.main import BadInput
    from mote_rag.index.ray_build import RayNotInstalled, build_ray_index, require_ray

    try:
        require_ray()
    except RayNotInstalled as exc:
        raise BadInput(str(exc)) from None
    if args.shards is None:
        raise BadInput("--ray needs --shards N (the number of shard indexes to write)")
    from mote_rag.loading import EMBEDDED

    if args.model in EMBEDDED:
        raise BadInput(
            f"--ray runs the exported ONNX graphs on the workers: export the model first "
            f"(`mote-rag export MODEL model-onnx`) and pass --model model-onnx (got --model {args.model})"
        )
    for flag, value in (
        ("--shards", args.shards),
        ("--workers", args.workers),
        ("--threads-per-worker", args.threads_per_worker),
        ("--batch-size", args.batch_size),
    ):
        if value is not None and value < 1:
            raise BadInput(f"{flag} must be >= 1, got {value}")
    kind_params = {
        "flat": {},
        "hnsw": {"M": args.hnsw_m, "ef_search": args.ef_search},
        "ivfpq": {"nprobe": args.nprobe},
    }[args.kind]
    manifest = build_ray_index(
        args.corpus,
        args.output,
        args.model,
        shards=args.shards,
        workers=args.workers,
        threads=args.threads_per_worker,
        address=args.address,
        kind=args.kind,
        id_field=args.id_field,
        text_fields=args.text_field,
        metadata_fields=args.metadata_fields,
        batch_size=args.batch_size,
        store_text=not args.no_store_text,
        overwrite=args.overwrite,
        show_progress=not args.quiet,
        **kind_params,
    )
    build = manifest["build"]
    counts = ", ".join(str(s["count"]) for s in manifest["shards"])
    print(
        f"indexed {manifest['count']} documents from {args.corpus} into {manifest['num_shards']} shards "
        f"({counts}; {manifest['kind']}, {manifest['dim']}-dim, fingerprint {manifest['encoder']['fingerprint']}) "
        f"with {build['workers']} Ray workers in {build['seconds']:.1f}s -> {args.output}",
        file=sys.stdout,
    )
    return 0
