"""`mote-rag pairs`: (query, passage) training pairs from a corpus, with no model (mote_rag/pair_generation.py)."""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Make training pairs from a corpus when you have documents but no queries. Each row written is
{"anchor": ..., "positive": ..., "passage_id": ...}: the `pairs` format `mote-rag train` reads.

Generators (no model needed):
  title     the passage's title -> its body (the corpus needs a title field)
  sentence  one sentence of the passage -> the passage, the sentence removed 9 times in 10 (Inverse Cloze Task)

An LLM that writes questions (LangChain or LlamaIndex) is available from Python:
  mote_rag.pair_generation.LLMQuestionGenerator.

Input: a corpus .jsonl/.jsonl.gz, .csv/.tsv or folder of .txt files (as `mote-rag index` reads), or a BEIR
folder (its corpus.jsonl, with _id, title and text).

Exit codes: 0 written, 2 bad input (missing path, bad row, no pair could be made), 1 failure while running.
"""

EPILOG = """\
examples:
  mote-rag pairs --corpus ../shared/data/retrieval/scifact --generator title --out scifact-title-pairs.jsonl
  mote-rag pairs --corpus docs.jsonl --generator sentence --per-passage 2 --limit 5000 --out pairs.jsonl
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pairs",
        help="make (query, passage) training pairs from a corpus: title -> body or sentence -> passage",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--corpus", required=True, help="a corpus file (.jsonl, .csv, .tsv), a .txt folder or a BEIR folder")
    p.add_argument("--generator", required=True, choices=["title", "sentence"], help="how a pair is made")
    p.add_argument("--out", required=True, help="the pairs file to write (JSON Lines)")
    p.add_argument(
        "--per-passage", type=int, default=1, help="pairs per passage at most (title: always 1) (default: 1)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the sentence draws and of --limit (default: 0)")
    p.add_argument("--limit", type=int, default=None, help="use a seeded sample of this many passages")
    p.add_argument("--text-field", default="text", help="field holding the body text (default: text)")
    p.add_argument("--title-field", default="title", help="field holding the title (default: title)")
    p.add_argument("--id-field", default=None, help="field holding the passage id (default: guessed; BEIR: _id)")
    p.add_argument(
        "--keep-sentence",
        type=float,
        default=0.1,
        help="sentence: probability that the anchor sentence stays in its passage (default: 0.1)",
    )
    p.add_argument(
        "--min-words", type=int, default=5, help="sentence: shortest sentence used as an anchor (default: 5)"
    )
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from mote_rag.cli.main import BadInput
    from mote_rag.pair_generation import generate_pairs, make_generator, read_passages, write_pairs

    out = Path(args.out)
    if out.is_dir():
        raise BadInput(f"--out {out} is a directory; give a file name such as pairs.jsonl")
    if out.exists() and not args.overwrite:
        raise BadInput(f"--out {out} exists; pass --overwrite to replace it")
    if args.per_passage < 1:
        raise BadInput(f"--per-passage must be >= 1, got {args.per_passage}")
    if args.limit is not None and args.limit < 1:
        raise BadInput(f"--limit must be >= 1, got {args.limit}")
    options = {}
    if args.generator == "sentence":
        if not 0.0 <= args.keep_sentence <= 1.0:
            raise BadInput(f"--keep-sentence must be between 0 and 1, got {args.keep_sentence}")
        if args.min_words < 1:
            raise BadInput(f"--min-words must be >= 1, got {args.min_words}")
        options = {"keep_sentence": args.keep_sentence, "min_words": args.min_words}
    generator = make_generator(args.generator, **options)
    passages = read_passages(
        args.corpus, text_field=args.text_field, title_field=args.title_field or None, id_field=args.id_field
    )
    if args.generator == "title" and not any(p.title.strip() for p in passages):
        raise BadInput(
            f"--corpus {args.corpus}: no passage has a title in field {args.title_field!r}; use --title-field or "
            "--generator sentence"
        )
    report = generate_pairs(
        passages,
        generator,
        per_passage=args.per_passage,
        seed=args.seed,
        limit=args.limit,
        show_progress_bar=not args.quiet,
    )
    if not report.pairs:
        raise BadInput(f"--corpus {args.corpus}: no pair could be made ({report.summary()})")
    write_pairs(report.pairs, out)
    print(f"wrote {report.summary()} -> {out}", file=sys.stdout)
    return 0
