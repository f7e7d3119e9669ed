"""The library logs through its own loggers and never configures the root logger (static check, imports nothing)."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOT_CALLS = re.compile(r"logging\.(basicConfig|getLogger\(\)|(debug|info|warning|error|exception|critical|log)\()")


def _library_files():
    for root in (REPO / "mote_rag", REPO / "exporters"):
        yield from root.rglob("*.py")


def test_no_root_logger_and_one_named_logger_per_logging_module():
    problems = []
    for path in _library_files():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO)
        problems += [f"{rel}: {m.group(0)}" for m in ROOT_CALLS.finditer(text)]
        if re.search(r"\blogger\.\w+\(", text) and "logger = logging.getLogger(__name__)" not in text:
            problems.append(f"{rel}: logs without logger = logging.getLogger(__name__)")
    assert not problems, "\n".join(problems)
