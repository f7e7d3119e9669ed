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

COMMANDS = ["quickstart", "train", "adapt", "experts", "eval", "export", "index", "search", "info", "analyze", "pairs"]

EXIT_OK, EXIT_FAILURE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


class BadInput(Exception):
    """A user error (wrong path, format or option): reported in one line, exit code 2."""


def input_file(path: str | os.PathLike, option: str, expected: str = "a file") -> str:
    """`path` when it is an existing file; BadInput naming the option when it is missing or a directory."""
    from pathlib import Path

    p = Path(path)
    if p.is_dir():
        raise BadInput(f"{option} {p} is a directory; it expects {expected}")
    if not p.is_file():
        raise BadInput(f"{option} {p} not found; it expects {expected}")
    return str(path)


def output_folder(path: str | os.PathLike, option: str) -> str:
    """`path` when it is a folder that exists or can be created and written; BadInput naming the option when it is
    an existing file, under a file, or on storage that refuses writes."""
    from mote_rag.atomic import check_writable_folder

    try:
        check_writable_folder(path, option)
    except OSError as exc:
        raise BadInput(str(exc)) from None
    return str(path)


def option_list(value: str | None, option: str) -> list[str] | None:
    """A comma-separated option as a list; None when not given; BadInput when given but empty (an empty value
    would otherwise mean "everything" without a word)."""
    if value is None:
        return None
    names = [v.strip() for v in value.split(",")]
    if not any(names) or not all(names):
        raise BadInput(f"{option} {value!r} holds an empty name; give comma-separated names, or leave {option} out")
    return names


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


def empty_options(args: argparse.Namespace) -> list[str]:
    """The options (and arguments) given an empty or whitespace-only value: `--text-field ""` would otherwise fall
    back to a default without a word."""
    bad = []
    for key, value in vars(args).items():
        values = value if isinstance(value, list) else [value]
        if any(isinstance(v, str) and not v.strip() for v in values):
            bad.append(key)
    return bad


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns its exit code. Called with no argv (the `mote-rag` script, `python -m`), it also
    ends the process (see `_exit`)."""
    code = _run(argv)
    if argv is None:
        _exit(code)
    return code


def _exit(code: int) -> None:
    """End the process with `code` once the command is done, without the interpreter's slow teardown (torch,
    onnxruntime and their threads take seconds to unload). During that teardown Python has already given SIGINT
    back to the system's default, so a Ctrl-C there killed the process without a word; here atexit handlers (Ray's
    shutdown among them) run first, under a handler that reports "interrupted" and exits 130."""
    import atexit
    import logging
    import signal

    def interrupted(_signum, _frame):
        os.write(2, b"interrupted\n")
        os._exit(EXIT_INTERRUPTED)

    signal.signal(signal.SIGINT, interrupted)
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


def _run(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    empty = empty_options(args)
    if empty:
        names = ", ".join(_option_name(parser, args.command, k) for k in empty)
        print(f"mote-rag {args.command}: error: {names}: empty value; give a value or leave it out", file=sys.stderr)
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
    except IsADirectoryError as exc:  # the OS's "[Errno 21] Is a directory" does not say what was expected
        message = f"{exc.filename} is a directory where a file is expected" if exc.filename else str(exc)
        print(f"mote-rag {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (BadInput, FileNotFoundError, NotADirectoryError, ValueError, TypeError) as exc:
        print(f"mote-rag {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        print(f"mote-rag {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return int(result or 0)


def _option_name(parser: argparse.ArgumentParser, command: str, dest: str) -> str:
    """'-o/--output' for an option's dest, the argument's name for a positional one."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            for sub in action.choices[command]._actions:
                if sub.dest == dest:
                    return "/".join(sub.option_strings) or (sub.metavar or dest).upper()
    return dest


if __name__ == "__main__":
    sys.exit(main())
