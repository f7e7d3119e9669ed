"""The soak benchmark (benchmarks/soak_index.py), short: 2 processes x 8 threads mixing add, upsert, delete, search
and save on one index folder for about 10 s, with the checker after every save. The full run is 5 minutes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import soak_index

from mote_rag.index.faiss_index import FaissIndex


@pytest.mark.slow
def test_soak_ten_seconds_has_no_violation(tmp_path):
    result = soak_index.run(seconds=10, threads=8, processes=2, initial=200, folder=tmp_path / "ix", out=None)
    assert result["violations"] == 0, result["violation_examples"]
    ops = result["operations"]
    assert all(ops[op] > 0 for op in soak_index.OPS), ops  # every kind of operation ran
    assert result["saves_checked"] >= ops["save"]  # the checker ran after every save
    assert result["final_documents"] == 2 * 200 + ops["add"] - ops["delete"]
    names = sorted(p.name for p in (tmp_path / "ix").iterdir())  # no lock file, no temporary file left
    assert len(names) == 2 and names[1] == "index.json" and names[0].endswith(".faiss"), names


def test_the_checker_finds_each_kind_of_violation(tmp_path):
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((4, 8)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = FaissIndex(dim=8, fingerprint="fp")
    index.add_embeddings(vecs[:3], ["a", "b", "gone"])
    index.save(tmp_path / "ix")
    acked = {"a": vecs[0], "b": vecs[3], "c": vecs[2], "gone": None}  # b: another vector, c: lost, gone: deleted
    found = soak_index.check_folder(tmp_path / "ix", acked, rng, "test")
    assert any("1 acknowledged id(s) missing after reload, e.g. ['c']" in f for f in found), found
    assert any("1 id(s) hold another vector" in f for f in found), found
    assert any("1 deleted id(s) present after reload" in f for f in found), found
    assert soak_index.check_folder(tmp_path / "ix", {"a": vecs[0], "b": vecs[1]}, rng, "test") == []
