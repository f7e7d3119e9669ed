"""The study's evaluation reuse (benchmarks/train_study/reuse.py): a dataset is scored again only when a task path
it reads has a fingerprint no earlier run had, and a reused score is the one that path produced."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from train_study.reuse import ScoreStore, evaluate_reusing, reads

from mote_rag.evaluation.suite import DatasetSpec, Suite

WORDS = "the cat dog sat ran on a mat rug fast slow red blue big small".split()


def _sts_file(path: Path, n: int = 24) -> None:
    rows = []
    for i in range(n):
        a = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(5))
        b = " ".join(WORDS[(i + 2 * j) % len(WORDS)] for j in range(5))
        rows.append({"sentence1": a, "sentence2": b, "score": float(i % 6)})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _suite(tmp_path: Path) -> Suite:
    _sts_file(tmp_path / "a.jsonl")
    _sts_file(tmp_path / "b.jsonl", n=30)
    return Suite(
        "tiny",
        (
            DatasetSpec("sts_cls", "sts", "a.jsonl"),  # read through `classification`
            DatasetSpec("sts_clu", "sts", "b.jsonl", options={"task": "clustering"}),
        ),
        str(tmp_path),
    )


def _encoder(hash_encoder, paths: dict[str, str]):
    class PathHashEncoder(hash_encoder):
        """HashEncoder with a fingerprint per task path, as MoTEModel.path_fingerprint gives."""

        def path_fingerprint(self, task: str) -> str:
            return paths.get(self.tasks.get(task).name, "unchanged")

    return PathHashEncoder(dim=16, fingerprint="whole-" + "-".join(sorted(paths.values())))


def test_only_datasets_reading_a_changed_path_are_evaluated(tmp_path, hash_encoder):
    suite = _suite(tmp_path)
    assert [reads(s) for s in suite.datasets] == [["classification"], ["clustering"]]
    store = ScoreStore(tmp_path / "scores")

    base = _encoder(hash_encoder, {"classification": "c0", "clustering": "k0"})
    first = evaluate_reusing(base, suite, store, "base", cache_dir=None)
    assert base.tasks_used() == {"classification", "clustering"}
    assert first["path_fingerprints"]["classification"] == "c0" and first["backend"] == "PathHashEncoder"
    assert not any("reused_from" in r for r in first["datasets"].values())

    trained = _encoder(hash_encoder, {"classification": "c0", "clustering": "k1"})
    second = evaluate_reusing(trained, suite, store, "trained/seed-13", cache_dir=None)
    assert trained.tasks_used() == {"clustering"}  # the unchanged classification path is not embedded again
    assert second["datasets"]["sts_cls"]["reused_from"] == "base"
    assert second["datasets"]["sts_cls"]["main_score"] == first["datasets"]["sts_cls"]["main_score"]
    assert "reused_from" not in second["datasets"]["sts_clu"]
    assert (
        second["averages"]["sts"]
        == (second["datasets"]["sts_cls"]["main_score"] + second["datasets"]["sts_clu"]["main_score"]) / 2
    )
    assert second["fingerprint"] == trained.fingerprint and second["model"] == "trained/seed-13"

    # a third run with both paths seen before (one from each run) embeds nothing and names where each came from
    mixed = _encoder(hash_encoder, {"classification": "c0", "clustering": "k1"})
    third = evaluate_reusing(mixed, suite, store, "mixed", cache_dir=None)
    assert mixed.tasks_used() == set()
    assert {n: r["reused_from"] for n, r in third["datasets"].items()} == {
        "sts_cls": "base",
        "sts_clu": "trained/seed-13",
    }


def test_seeding_a_finished_run_makes_its_scores_reusable(tmp_path, hash_encoder):
    suite = _suite(tmp_path)
    enc = _encoder(hash_encoder, {"classification": "c0", "clustering": "k0"})
    run = evaluate_reusing(enc, suite, ScoreStore(tmp_path / "first"), "base", cache_dir=None)
    fresh = ScoreStore(tmp_path / "second")  # e.g. a base JSON written before scores were stored by path
    fresh.seed(run, suite)
    again = _encoder(hash_encoder, {"classification": "c0", "clustering": "k0"})
    out = evaluate_reusing(again, suite, fresh, "again", cache_dir=None)
    assert again.tasks_used() == set()
    assert {r["main_score"] for r in out["datasets"].values()} == {r["main_score"] for r in run["datasets"].values()}
