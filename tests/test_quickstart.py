"""The main job end to end on a slice of the shipped sample (few steps), then a second run that reuses every stage.

The full sample took 797 s on 2 cores in a fresh clone (`make quickstart`: two trainings, an adaptation, four
evaluations, export, index); the test runs every stage on a slice of it (about a ninth of the corpus, 3 training
steps of 16 pairs) and exports
only what the index and the example queries read (`--onnx retrieval --no-int8`: the search_query and
search_document graphs, fp32 and fused) so the suite stays short. `python -m mote_rag.cli.main quickstart` on the
full sample, every graph exported, is what the README's first command runs."""

from __future__ import annotations

import json
import shutil

import pytest

import mote_rag.quickstart as quickstart
from mote_rag.cli.main import main
from mote_rag.readers import iter_jsonl, read_qrels

# 3 steps and 50 test queries: with 2 steps on 30 queries the adapted query expert moved no ranking of the slice.
# Batches of 16 (the recipe's 32 halved in the slice's copy of train.json): training is the slowest stage.
STEPS, BATCH = 3, 16
TEST_QUERIES, TRAIN_PAIRS, DISTRACTORS = 50, BATCH * STEPS, 10  # the training pairs are what STEPS batches use
CLASSIFICATION_TRAIN, CLASSIFICATION_TEST, CLUSTERING_TEST = 160, 60, 60


def _write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _write_qrels(path, qrels: dict) -> None:
    lines = ["query-id\tcorpus-id\tscore"] + [f"{q}\t{d}\t{s}" for q, docs in qrels.items() for d, s in docs.items()]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def sample_slice(tmp_path, monkeypatch):
    """A consistent slice of the shipped sample: the first test queries and train pairs, their answers plus some
    distractors, the first rows of the classification and clustering files, and the recipe with smaller batches."""
    full = quickstart.SAMPLE_DIR
    out = tmp_path / "sample"
    shutil.copytree(full, out, ignore=shutil.ignore_patterns("*.jsonl", "*.tsv"))
    test = dict(sorted(read_qrels(full / "retrieval" / "qrels" / "test.tsv").items())[:TEST_QUERIES])
    train = dict(sorted(read_qrels(full / "retrieval" / "qrels" / "train.tsv").items())[:TRAIN_PAIRS])
    _write_qrels(out / "retrieval" / "qrels" / "test.tsv", test)
    _write_qrels(out / "retrieval" / "qrels" / "train.tsv", train)
    wanted = {d for qrels in (test, train) for docs in qrels.values() for d in docs}
    corpus = list(iter_jsonl(full / "retrieval" / "corpus.jsonl"))
    others = [r for r in corpus if r["_id"] not in wanted][:DISTRACTORS]
    _write_jsonl(out / "retrieval" / "corpus.jsonl", [r for r in corpus if r["_id"] in wanted] + others)
    queries = [r for r in iter_jsonl(full / "retrieval" / "queries.jsonl") if r["_id"] in test or r["_id"] in train]
    _write_jsonl(out / "retrieval" / "queries.jsonl", queries)
    cls_train = list(iter_jsonl(full / "classification" / "train.jsonl"))[:CLASSIFICATION_TRAIN]
    labels = {r["label"] for r in cls_train}
    cls_test = [r for r in iter_jsonl(full / "classification" / "test.jsonl") if r["label"] in labels]
    _write_jsonl(out / "classification" / "train.jsonl", cls_train)
    _write_jsonl(out / "classification" / "test.jsonl", cls_test[:CLASSIFICATION_TEST])
    clustering = list(iter_jsonl(full / "clustering" / "test.jsonl"))[:CLUSTERING_TEST]
    _write_jsonl(out / "clustering" / "test.jsonl", clustering)
    recipe = json.loads((full / "train.json").read_text())
    (out / "train.json").write_text(json.dumps({**recipe, "batch_size": BATCH, "mini_batch_size": BATCH}))
    monkeypatch.setattr(quickstart, "SAMPLE_DIR", out)
    return out


ARGS = ["--steps", str(STEPS), "--onnx", "retrieval", "--no-int8", "--no-progress"]


@pytest.mark.slow
def test_quickstart_end_to_end_and_rerun_reuses(tmp_path, capsys, sample_slice):
    out = tmp_path / "qs"
    assert main(["quickstart", "--out", str(out), *ARGS]) == 0
    first = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == STEPS
    for stage in ("model", "onnx", "index", "eval"):
        assert (out / stage).is_dir(), stage
    assert (out / "onnx" / "manifest.json").is_file() and (out / "index" / "index.json").is_file()
    manifest = json.loads((out / "onnx" / "manifest.json").read_text())
    assert set(manifest["tasks"]) == {"search_query", "search_document"} and "int8" not in manifest["variants"]
    corpus_size = sum(1 for _ in iter_jsonl(sample_slice / "retrieval" / "corpus.jsonl"))
    assert json.loads((out / "index" / "index.json").read_text())["count"] == corpus_size
    scores = summary["scores"]
    assert set(scores) == {"base", "mote", "plain", "adapted"}
    assert set(scores["base"]) == {"medquad_retrieval", "medquad_qtype", "medquad_source"}
    # trained on retrieval pairs with the trunk frozen: MoTE's classification and clustering paths are the base's
    for ds in ("medquad_qtype", "medquad_source"):
        assert scores["mote"][ds] == scores["base"][ds], ds
        assert scores["adapted"][ds] == scores["base"][ds], ds
    assert scores["mote"]["medquad_retrieval"] != scores["base"]["medquad_retrieval"]
    # the query-only collection expert: routed through search_query@medquad, the base's index reused as it was
    assert scores["adapted"]["medquad_retrieval"] != scores["base"]["medquad_retrieval"]
    assert summary["adapted"]["query_task"] == "search_query@medquad" and summary["adapted"]["faiss_file_unchanged"]
    adapted_eval = json.loads((out / "eval" / "adapted.json").read_text())
    assert adapted_eval["embedding"]["cached_texts"] >= corpus_size  # the document path hit the base's cache
    # the untuned base is a real retriever on this sample: far above chance
    assert scores["base"]["medquad_retrieval"] > 30
    assert len(summary["examples"]) == 3 and all(len(e["hits"]) == 3 for e in summary["examples"])
    assert "Q: " in first and "medquad_retrieval" in first

    assert main(["quickstart", "--out", str(out), *ARGS]) == 0
    second = capsys.readouterr().out
    assert "reusing the trained mote model" in second and "reusing the trained plain model" in second
    assert "reusing the adapted model" in second
    assert "reusing the evaluation of base" in second and "reusing the evaluation of mote" in second
    assert "reusing the evaluation of plain" in second and "reusing the evaluation of adapted" in second
    assert "reusing the ONNX graphs" in second
    assert "reusing the FAISS index" in second
    again = json.loads((out / "summary.json").read_text())
    assert again["scores"] == summary["scores"] and again["fingerprint"] == summary["fingerprint"]


def test_quickstart_rejects_bad_steps(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path), "--steps", "0"]) == 2
    assert "--steps must be a positive integer" in capsys.readouterr().err
