"""`mote-rag` command line: one module per subcommand, each with `register(subparsers)`.

Exit codes scripts can rely on: 0 success, 1 failure while running, 2 bad input (usage, missing path,
wrong format), 130 interrupted. A reader that closes the pipe early (`mote-rag search ... | head`) is not an
error: the command stops quietly with 0.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS = ["quickstart", "train", "eval", "export", "index", "search", "info", "analyze", "pairs"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class BadInput(Exception):
    """A user error (wrong path, format or option): reported in one line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mote-rag",
        description="Task-specialised (Mixture of Task Experts) embeddings for RAG: "
        "upcycle -> train -> eval -> export ONNX -> index -> search.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"mote_rag.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"mote_rag.cli.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader has what it wanted; point stdout at devnull so the flush at exit does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (BadInput, FileNotFoundError, NotADirectoryError, ValueError, TypeError) as exc:
        print(f"mote-rag {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        print(f"mote-rag {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
