"""`mote-rag search`: query a saved index with the model's query path; one-shot, interactive or from stdin."""

from __future__ import annotations

import argparse
import json
import sys

DESCRIPTION = """\
Search an index built by `mote-rag index`. The query is embedded with the search_query path of the model
the index was built with (recorded in the index; --model overrides it, and a model with a different
fingerprint is refused because its vectors would not be comparable).

  with a QUERY argument   answer that one query
  without, on a terminal  ask for queries interactively (an empty line or Ctrl-D ends)
  without, from a pipe    read one query per line from stdin

Each hit is printed as rank, cosine score, id, metadata and the start of its text; --json prints one JSON
object per query instead: {"query": ..., "hits": [{"rank", "id", "score", "metadata", "text"}]}.

Exit codes: 0 answered, 2 bad input (missing or damaged index, mismatched model), 1 failure while searching.
"""

EPILOG = """\
examples:
  mote-rag search my-index "how do vaccines work" -k 5
  mote-rag search my-index --json < queries.txt > results.jsonl
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "search",
        help="query an index (one query, interactive, or queries from stdin)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("index", help="index directory written by `mote-rag index`")
    p.add_argument(
        "query", nargs="?", default=None, help="the query (quote it); omit to read queries interactively or from stdin"
    )
    p.add_argument("-k", "--top-k", type=int, default=10, help="results per query (default: 10)")
    p.add_argument(
        "--model",
        default=None,
        help="encoder to embed queries (default: the one recorded in the index); an ONNX folder, a "
        "MoTE folder, a transformers checkpoint or 'base'",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per query (JSON Lines)")
    p.add_argument("--ef-search", type=int, default=None, help="hnsw: search breadth for this search")
    p.add_argument("--nprobe", type=int, default=None, help="ivfpq: inverted lists visited for this search")
    p.add_argument(
        "--text-chars",
        type=int,
        default=200,
        help="characters of each hit's text shown in plain output (0 hides text; default: 200)",
    )
    p.set_defaults(func=run)


def format_hits(query: str, hits, text_chars: int) -> str:
    lines = [f"query: {query}"]
    if not hits:
        lines.append("  (no results)")
    for rank, hit in enumerate(hits, 1):
        meta = f"  {json.dumps(hit.metadata, ensure_ascii=False)}" if hit.metadata else ""
        lines.append(f"{rank:>3}. {hit.score:.4f}  {hit.id}{meta}")
        if text_chars and hit.text:
            text = " ".join(hit.text.split())
            lines.append(f"       {text[:text_chars]}{'...' if len(text) > text_chars else ''}")
    return "\n".join(lines)


def json_hits(query: str, hits) -> str:
    return json.dumps(
        {"query": query, "hits": [{"rank": r, **h.to_dict()} for r, h in enumerate(hits, 1)]}, ensure_ascii=False
    )


def run(args) -> int:
    from mote_rag.cli.index import open_encoder
    from mote_rag.cli.main import BadInput
    from mote_rag.index.sharded import open_index, read_any_header

    _check_flags(args)
    header = read_any_header(args.index)  # missing/not-an-index errors before loading a model
    spec = args.model or header.encoder_spec or "base"
    encoder = open_encoder(spec)
    index = open_index(args.index, encoder=encoder)  # one index or a shard set built with --ray

    def answer(query: str) -> None:
        hits = index.search(query, k=args.top_k, ef_search=args.ef_search, nprobe=args.nprobe)
        print(json_hits(query, hits) if args.json else format_hits(query, hits, args.text_chars), flush=True)

    if args.query is not None:
        if not args.query.strip():
            raise BadInput("the query is empty")
        answer(args.query)
        return 0
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"{len(index)} documents ({index.kind}). Type a query; an empty line or Ctrl-D quits.", file=sys.stderr)
    answered = _answer_stdin(answer, interactive)
    if not interactive and not answered:
        raise BadInput("no query given: pass one as an argument or pipe queries, one per line, to stdin")
    return 0


def _check_flags(args) -> None:
    from mote_rag.cli.main import BadInput
    from mote_rag.index.params import RANGES

    if args.top_k < 1:
        raise BadInput(f"-k/--top-k must be >= 1, got {args.top_k}")
    for flag, value, name in (("--ef-search", args.ef_search, "ef_search"), ("--nprobe", args.nprobe, "nprobe")):
        lo, hi = RANGES[name]
        if value is not None and not lo <= value <= hi:
            raise BadInput(f"{flag} must be between {lo} and {hi}, got {value}")
    if args.text_chars < 0:
        raise BadInput(f"--text-chars must be >= 0, got {args.text_chars}")


def _answer_stdin(answer, interactive: bool) -> int:
    """Answer queries from the prompt (until an empty line or EOF) or one per stdin line; returns how many."""
    answered = 0
    while True:
        try:
            line = input("query> ") if interactive else sys.stdin.readline()
        except EOFError:
            break
        if not interactive and line == "":
            break
        query = line.strip()
        if not query:
            if interactive:
                break
            continue
        answer(query)
        answered += 1
    return answered
