"""Docs that match the code: every `name(..., kw=...)` a docstring shows must be a real keyword of a function or class
of that name in the package (classes: their __init__ or dataclass fields). Static (ast), so it imports nothing."""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROOTS = [REPO / "mote_rag", REPO / "exporters", REPO / "integrations"]
CALL = re.compile(r"\b([A-Za-z_]\w*)\(([^()]*)\)")
KEYWORD = re.compile(r"(?:^|,)\s*\**([A-Za-z_]\w*)\s*=(?!=)")


def _params(node: ast.AST) -> set[str] | None:
    """Parameter names of a def, or of a class (its __init__, else its annotated fields); None = takes **kwargs."""
    if isinstance(node, ast.ClassDef):
        init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        if init is None:
            return {n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
        node = init
    args = node.args
    if args.kwarg is not None:
        return None
    return {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)}


def _sources() -> list[Path]:
    return [p for root in ROOTS for p in root.rglob("*.py") if ".venv" not in p.parts and "tests" not in p.parts]


def definitions() -> dict[str, list[set[str] | None]]:
    """name -> the parameter sets of every def/class of that name in the package."""
    out: dict[str, list] = {}
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.setdefault(node.name, []).append(_params(node))
    return out


def mismatches(doc: str, defs: dict[str, list]) -> list[str]:
    """`name(kw=...)` mentions in `doc` whose keyword no definition of `name` accepts."""
    bad = []
    for name, args in CALL.findall(doc):
        if name not in defs:
            continue  # not ours (tqdm, ray.init, ...)
        for kw in KEYWORD.findall(args):
            if not any(p is None or kw in p for p in defs[name]):
                bad.append(f"{name}(... {kw}=...)")
    return bad


def test_the_check_catches_a_documented_argument_that_does_not_exist():
    defs = definitions()
    assert mismatches("OnnxEncoder(path, tasks=None, verify=True)", defs) == ["OnnxEncoder(... verify=...)"]
    assert mismatches("OnnxEncoder(path, tasks=None, variant='fp32')", defs) == []


def test_module_and_public_docstrings_match_signatures():
    defs = definitions()
    problems = []
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node) or ""
                problems += [f"{path.relative_to(REPO)}: {m}" for m in mismatches(doc, defs)]
    assert not problems, "docstrings document arguments that do not exist:\n" + "\n".join(problems)
