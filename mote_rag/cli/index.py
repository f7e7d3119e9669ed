"""`mote-rag index`: embed a corpus file or folder with the document path and save a FAISS index directory."""

from __future__ import annotations

import argparse
import sys
import time

DESCRIPTION = """\
Build a cosine-similarity FAISS index from a corpus. Each document is embedded with the model's
search_document path (queries later use search_query), and the index directory records the model's
fingerprint, so `mote-rag search` refuses a different model.

Input formats:
  .jsonl / .jsonl.gz  one JSON object per line, e.g. {"id": "a1", "text": "...", "source": "wiki"}
  .csv / .tsv         a header row, one document per row
  a folder            every .txt file below it is one document; its id is the relative path
Every field other than the id and text fields is kept as metadata (unless --metadata-fields is given).
A document whose text is empty or whitespace-only is refused, naming the rows; --skip-empty leaves such
documents out and says how many.

Kinds: flat (exact, default), hnsw (fast approximate graph), ivfpq (compressed, trained on the corpus).

Exit codes: 0 built, 2 bad input (missing path, unknown format, missing field), 1 failure while building.
"""

EPILOG = """\
examples:
  mote-rag index docs.jsonl -o my-index
  mote-rag index corpus.jsonl -o scifact-index --text-field title,text --id-field _id --kind hnsw
  mote-rag index notes/ -o notes-index --model ./mote-rag-quickstart/onnx
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "index",
        help="build a FAISS index from jsonl, CSV or a folder of .txt files",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("corpus", help="a .jsonl/.jsonl.gz or .csv/.tsv file, or a folder of .txt files")
    p.add_argument("-o", "--output", required=True, help="index directory to write (created if missing)")
    p.add_argument(
        "--model",
        default="base",
        help="encoder: an exported ONNX folder, a saved MoTE folder, a transformers checkpoint, or "
        "'base' for the embedded all-MiniLM-L6-v2 (default: base)",
    )
    p.add_argument(
        "--kind",
        choices=["flat", "hnsw", "ivfpq"],
        default="flat",
        help="flat: exact search; hnsw: approximate, much faster on large corpora; ivfpq: compressed "
        "(about 1/20 of flat's memory) and approximate, for large corpora (default: flat)",
    )
    p.add_argument(
        "--id-field",
        default=None,
        help="field holding the document id (default: the first of id, _id, doc_id; else the row number)",
    )
    p.add_argument(
        "--text-field",
        default="text",
        help="field(s) holding the text; several, comma-separated, are joined with a space, e.g. "
        "title,text (default: text)",
    )
    p.add_argument(
        "--metadata-fields",
        default=None,
        help="comma-separated fields kept as metadata (default: every field that is not the id or text)",
    )
    p.add_argument(
        "--skip-empty",
        action="store_true",
        help="leave out documents whose text is empty or whitespace-only, with a warning that counts them "
        "(default: refuse them, naming the rows)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="texts embedded per batch (default: 64)")
    p.add_argument(
        "--backend",
        choices=["auto", "torch", "onnx"],
        default="auto",
        help="for a torch model (base, a saved MoTE folder, a checkpoint): embed with torch, or with its fp32 ONNX "
        "export (same vectors and fingerprint; exported once into $MOTE_RAG_CACHE, default ~/.cache/mote-rag); "
        "auto times both on this corpus the first time this CPU family is seen and keeps the faster "
        "(mote_rag.backend; default: auto). An exported ONNX folder always runs on onnxruntime",
    )
    p.add_argument(
        "--collection",
        default=None,
        help="the collection this index serves: its documents use that collection's document expert if the "
        "model has one (search_document@NAME) and its queries that collection's query expert "
        "(search_query@NAME, from `mote-rag adapt --collection NAME`); recorded in the index, so searches "
        "route there with no option (default: the model's base experts)",
    )
    p.add_argument(
        "--no-store-text",
        action="store_true",
        help="do not keep the document texts in the index (smaller; search shows ids and metadata)",
    )
    p.add_argument("--hnsw-m", type=int, default=32, help="hnsw: graph neighbours per node (default: 32)")
    p.add_argument(
        "--ef-search", type=int, default=256, help="hnsw: search breadth; higher = better recall, slower (default: 256)"
    )
    p.add_argument("--nprobe", type=int, default=16, help="ivfpq: inverted lists visited per query (default: 16)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing index in --output")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    # distributed indexing (--ray, --address, --shards, ...; optional extra mote-rag[ray]): mote_rag/cli/ray_index.py
    from mote_rag.cli.ray_index import add_ray_arguments

    add_ray_arguments(p)
    p.set_defaults(func=run)


def model_spec(spec: str) -> str:
    """The encoder spec as recorded in the index: named ones as given, folders as absolute paths."""
    from pathlib import Path

    from mote_rag.loading import EMBEDDED

    return spec if spec in EMBEDDED else str(Path(spec).resolve())


def open_encoder(spec: str):
    from mote_rag.cli.main import BadInput
    from mote_rag.loading import load_encoder

    try:
        return load_encoder(spec)
    except (FileNotFoundError, NotADirectoryError, ValueError) as exc:
        raise BadInput(f"--model {spec}: {exc}") from None


def choose_backend(encoder, args, texts, document_task: str):
    """The encoder that embeds the corpus: an ONNX folder as it is; a torch model on --backend (mote_rag.backend)."""
    from mote_rag.cli.main import BadInput
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    if isinstance(encoder, OnnxEncoder):
        if args.backend == "torch":
            raise BadInput(f"--backend torch: --model {args.model} is an ONNX export, which has no torch weights")
        return encoder
    from mote_rag.backend import serving_encoder

    chosen, record = serving_encoder(
        encoder, texts, document_task, args.backend, batch_size=args.batch_size, show_progress=not args.quiet
    )
    if record["reason"] == "asked":
        return chosen
    if "onnx_vs_torch" not in record:
        print(f"mote-rag index: warning: backend torch: {record['reason']}", file=sys.stderr)
        return chosen
    print(
        f"mote-rag index: backend {record['backend']}: onnxruntime runs at {record['onnx_vs_torch']:.2f}x torch's "
        f"speed on this CPU ({record['reason']}, {record['file']}; --backend torch|onnx to choose)",
        file=sys.stderr,
    )
    return chosen


def collection_tasks(encoder, collection: str | None) -> tuple[str, str]:
    """(document task, query task) for --collection (mote_rag.tasks.TaskSet.collection_paths)."""
    from mote_rag.cli.main import BadInput

    if collection is None:
        return "search_document", "search_query"
    try:
        return encoder.tasks.collection_paths(collection)
    except ValueError as exc:
        raise BadInput(f"--collection {collection}: {exc}") from None


def check_field_options(args) -> None:
    """An empty --id-field, --text-field or --metadata-fields (or an empty name in a list) is refused: it would
    fall back to the default field without a word."""
    from mote_rag.cli.main import BadInput
    from mote_rag.readers import check_id_field, split_fields

    try:
        check_id_field(args.id_field, "--id-field")
        split_fields(args.text_field, "--text-field")
        split_fields(args.metadata_fields, "--metadata-fields")
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if getattr(args, "ray", False) and args.skip_empty:
        raise BadInput("--skip-empty is not available with --ray (the Ray build refuses empty texts); drop it")


def check_options(args) -> dict:
    """The kind's options from the command line, validated (ranges in mote_rag.index.params); BadInput otherwise."""
    from mote_rag.cli.main import BadInput
    from mote_rag.index.params import check_int, check_kind_params

    flags = {"M": "--hnsw-m", "ef_search": "--ef-search", "nprobe": "--nprobe"}
    kind_params = {
        "flat": {},
        "hnsw": {"M": args.hnsw_m, "ef_search": args.ef_search},
        "ivfpq": {"nprobe": args.nprobe},
    }[args.kind]
    try:
        check_int("--batch-size", args.batch_size, 1)
        check_kind_params(args.kind, kind_params)
    except (TypeError, ValueError) as exc:
        message = str(exc)
        for name, flag in flags.items():
            if message.startswith(f"{name} "):
                message = flag + message[len(name) :]
        raise BadInput(message) from None
    return kind_params


def check_model_files(spec: str) -> None:
    """The files of an ONNX export that serving reads (the tokenizer, the graphs of the default variant) are
    checked against its manifest now, so a damaged query graph is reported before the corpus is embedded rather
    than at the first search. Only those: hashing every variant's graphs cost more than indexing 300 passages."""
    from pathlib import Path

    from mote_rag.cli.main import BadInput
    from mote_rag.runtime.manifest import MANIFEST_NAME, Manifest

    if not (Path(spec) / MANIFEST_NAME).is_file():
        return
    try:
        manifest = Manifest.read(spec)
        manifest.check_files(manifest.serving_files(manifest.default_variant(), list(manifest.spec.tasks)))
    except (OSError, ValueError) as exc:
        raise BadInput(f"--model {spec}: {exc}") from None


def run(args) -> int:
    from pathlib import Path

    from mote_rag.cli.main import BadInput
    from mote_rag.cli.ray_index import check_ray_arguments, run_ray

    check_field_options(args)
    if args.ray:  # distributed indexing on Ray: mote_rag/cli/ray_index.py
        return run_ray(args)
    check_ray_arguments(args)
    from mote_rag.atomic import LOCK_NAME, check_writable_folder
    from mote_rag.index.faiss_index import INDEX_JSON, FaissIndex
    from mote_rag.readers import read_corpus

    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise BadInput(f"--output {out} is a file; give a directory for the index")
    if (out / INDEX_JSON).exists() and not args.overwrite:
        raise BadInput(f"--output {out} already holds an index; pass --overwrite to replace it")
    if out.is_dir() and not (out / INDEX_JSON).exists() and any(p.name != LOCK_NAME for p in out.iterdir()):
        raise BadInput(f"--output {out} is a non-empty directory that is not an index; choose another")
    kind_params = check_options(args)
    try:  # everything that can be checked is checked before the corpus is embedded
        check_writable_folder(out, "--output")
    except OSError as exc:
        raise BadInput(str(exc)) from None
    corpus = read_corpus(
        args.corpus,
        id_field=args.id_field,
        text_fields=args.text_field,
        metadata_fields=args.metadata_fields,
        skip_empty=args.skip_empty,
    )
    if corpus.skipped:
        print(
            f"mote-rag index: warning: skipped {len(corpus.skipped)} document(s) whose text is empty or "
            f"whitespace-only (first: {corpus.skipped[0]})",
            file=sys.stderr,
        )
    check_model_files(args.model)
    encoder = open_encoder(args.model)
    document_task, query_task = collection_tasks(encoder, args.collection)
    encoder = choose_backend(encoder, args, corpus.texts, document_task)
    start = time.perf_counter()
    index = FaissIndex.build(
        encoder,
        corpus.texts,
        ids=corpus.ids,
        metadatas=corpus.metadatas,
        kind=args.kind,
        batch_size=args.batch_size,
        show_progress_bar=not args.quiet,
        store_text=not args.no_store_text,
        encoder_spec=model_spec(args.model),
        document_task=document_task,
        query_task=query_task,
        **kind_params,
    )
    index.save(out)
    took = time.perf_counter() - start
    print(
        f"indexed {len(index)} documents from {corpus.source} ({args.kind}, {index.dim}-dim, model "
        f"{args.model}, fingerprint {index.fingerprint}) in {took:.1f}s -> {out}",
        file=sys.stdout,
    )
    return 0
