"""The two tiers hold: in a run of the fast tier (-m 'not slow'), a test that imports torch fails, naming itself,
and so does a test whose module imports torch when it is imported; a module marked slow as a whole is not even
imported. Each case runs the suite's own conftest in a child pytest, where an empty stand-in package named torch
(found first on the child's path) is what gets imported."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

CONFTEST = (Path(__file__).resolve().parents[1] / "conftest.py").read_text(encoding="utf-8")


def run_fast_tier(pytester, monkeypatch, **modules):
    pytester.makeconftest(CONFTEST)
    pytester.mkpydir("torch")  # a stand-in `torch` package shadows the real one: the guard sees the name, fast
    pytester.makepyfile(**modules)
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the child needs no installed plugin
    return pytester.runpytest_subprocess("-m", "not slow", "-p", "no:cacheprovider")


def test_a_fast_test_that_imports_torch_fails_naming_itself(pytester, monkeypatch):
    result = run_fast_tier(
        pytester,
        monkeypatch,
        test_fast="def test_plain():\n    pass\n\ndef test_loads_torch():\n    import torch  # noqa: F401\n",
    )
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_loads_torch imported torch but is not marked slow*"])


def test_a_module_that_imports_torch_fails_its_fast_tests_and_a_slow_module_is_not_imported(pytester, monkeypatch):
    result = run_fast_tier(
        pytester,
        monkeypatch,
        test_module_level="import torch  # noqa: F401\n\ndef test_plain():\n    pass\n",
        test_all_slow="import pytest\nimport nothing_here_exists\n\npytestmark = pytest.mark.slow\n\ndef test_x():\n"
        "    pass\n",
    )
    result.assert_outcomes(failed=0, errors=1)
    result.stdout.fnmatch_lines(["*test_module_level.py imports torch when it is imported, yet test_plain*"])
    result.stdout.no_fnmatch_line("*nothing_here_exists*")  # the slow module was never imported
