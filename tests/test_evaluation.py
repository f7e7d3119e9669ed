"""Evaluation suite logic: task routing, loaders and bad input, metrics vs ranx, cache, reports, CLI.

Uses small synthetic folders in the shared formats, the suite's HashEncoder fake, and the tiny BERT fixture;
the figures that matter on real data are in test_evaluation_scores.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mote_rag.evaluation import compare, evaluate, load_suite
from mote_rag.evaluation.metrics import average_precision, reciprocal_rank, retrieval_metrics
from mote_rag.evaluation.suite import DEFAULT, QUICK, DatasetSpec, Suite, get_suite


def write_jsonl(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_beir(folder: Path, corpus: dict, queries: dict, qrels: list[tuple[str, str]], split="test") -> Path:
    write_jsonl(folder / "corpus.jsonl", [{"_id": k, "title": "", "text": v} for k, v in corpus.items()])
    write_jsonl(folder / "queries.jsonl", [{"_id": k, "text": v} for k, v in queries.items()])
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "qrels" / f"{split}.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in qrels), encoding="utf-8"
    )
    return folder


TOPICS = {
    "sport": ["football match goal team", "tennis player wins final", "team scores late goal", "coach of the team"],
    "money": [
        "bank loan interest rate",
        "stock market shares fall",
        "central bank raises rate",
        "market price of shares",
    ],
    "tech": [
        "new phone software update",
        "computer chip faster processor",
        "software bug in phone",
        "chip maker processor",
    ],
}


@pytest.fixture()
def mini_root(tmp_path) -> Path:
    """One small dataset of each format, in the shared layout, plus a suite JSON pointing at them."""
    root = tmp_path / "data"
    corpus = {
        f"d{i}": f"document about {t} {i}" for i, t in enumerate(["cats", "dogs", "fish", "birds", "cars", "ships"])
    }
    queries = {"q0": "cats", "q1": "dogs", "q2": "fish", "d4": "document about cars 4"}
    write_beir(root / "ret", corpus, queries, [("q0", "d0"), ("q1", "d1"), ("q2", "d2"), ("q2", "d3"), ("d4", "d5")])
    write_jsonl(
        root / "sts.jsonl",
        [
            {"sentence1": a, "sentence2": b, "score": s}
            for a, b, s in [
                ("a cat sits", "a cat sits", 5.0),
                ("a cat sits", "a cat is sitting", 4.0),
                ("a cat sits", "dogs bark", 1.0),
                ("stock market", "stock prices", 3.5),
                ("stock market", "tennis final", 0.0),
            ]
        ],
    )
    write_jsonl(
        root / "pairs.jsonl",
        [
            {"sentence1": a, "sentence2": b, "label": label}
            for a, b, label in [
                ("a cat sits", "a cat sits down", 1),
                ("a cat sits", "dogs bark loud", 0),
                ("bank rate", "bank rate up", 1),
                ("phone update", "football goal", 0),
            ]
        ],
    )
    rows = [{"text": f"{t} {k}", "label": lab} for lab, texts in TOPICS.items() for k in range(6) for t in texts]
    write_jsonl(root / "cls" / "train.jsonl", rows)
    write_jsonl(root / "cls" / "test.jsonl", rows[::2])
    write_jsonl(root / "cv.jsonl", rows)
    write_jsonl(root / "clu.jsonl", rows)
    suite = {
        "name": "mini",
        "datasets": [
            {"name": "ret", "type": "retrieval", "path": "ret", "options": {"ignore_identical_ids": True}},
            {
                "name": "rr",
                "type": "reranking",
                "path": "ret",
                "options": {"negatives": 2, "ignore_identical_ids": True},
            },
            {"name": "sts", "type": "sts", "path": "sts.jsonl"},
            {"name": "pairs", "type": "pair_classification", "path": "pairs.jsonl", "options": {"task": "clustering"}},
            {
                "name": "cls",
                "type": "classification",
                "path": "cls",
                "options": {"train_split": "train", "samples_per_label": 4},
            },
            {
                "name": "cv",
                "type": "classification",
                "path": "cv.jsonl",
                "split": "all",
                "options": {"samples_per_label": 4},
            },
            {"name": "clu", "type": "clustering", "path": "clu.jsonl", "options": {"subsample": 40, "n_runs": 3}},
        ],
    }
    (root / "suite.json").write_text(json.dumps(suite), encoding="utf-8")
    return root


# ---------------------------------------------------------------------------------------------- routing
def test_each_side_uses_its_task_path_and_scores_are_sane(mini_root, tmp_path, hash_encoder):
    enc = hash_encoder()
    suite = load_suite(mini_root / "suite.json")
    routed = {}
    for spec in suite.datasets:
        enc.calls.clear()
        res = evaluate(enc, Suite("one", (spec,), root=suite.root), show_progress=False, keep_runs=True)
        routed[spec.name] = enc.tasks_used()
        r = res["datasets"][spec.name]
        assert 0.0 <= r["main_score"] <= 100.0
    assert routed["ret"] == {"search_query", "search_document"}
    assert routed["rr"] == {"search_query", "search_document"}
    assert routed["sts"] == {"classification"}  # STS defaults to the classification path
    assert routed["pairs"] == {"clustering"}  # configurable per dataset
    assert routed["cls"] == routed["cv"] == {"classification"}
    assert routed["clu"] == {"clustering"}


def test_identical_ids_are_dropped_from_their_own_ranking(mini_root, hash_encoder):
    suite = load_suite(mini_root / "suite.json").select(["ret"])
    res = evaluate(hash_encoder(), suite, show_progress=False, keep_runs=True)["datasets"]["ret"]
    run = res["_run"]
    assert "d4" not in run["d4"]  # the query d4 is also doc d4 (same text): never ranked for itself
    assert len(run["q0"]) == 6
    # hashed bag of words: "cats" ranks "document about cats 0" first
    assert max(run["q0"], key=run["q0"].get) == "d0"
    kept = spec_with(suite.datasets[0], ignore_identical_ids=False)
    run2 = evaluate(hash_encoder(), Suite("s", (kept,), root=suite.root), show_progress=False, keep_runs=True)
    assert max(run2["datasets"]["ret"]["_run"]["d4"], key=run2["datasets"]["ret"]["_run"]["d4"].get) == "d4"


def spec_with(spec: DatasetSpec, **options) -> DatasetSpec:
    return DatasetSpec(spec.name, spec.type, spec.path, spec.split, {**spec.options, **options})


def test_sts_and_pairs_scores_match_direct_computation(mini_root, hash_encoder):
    from scipy.stats import spearmanr
    from sklearn.metrics import average_precision_score

    enc = hash_encoder()
    res = evaluate(enc, load_suite(mini_root / "suite.json").select(["sts", "pairs"]), show_progress=False)["datasets"]
    for name, key, field, task in (
        ("sts", "sts.jsonl", "score", "classification"),  # the paths evaluate routes them to (see the routing test)
        ("pairs", "pairs.jsonl", "label", "clustering"),
    ):
        rows = [json.loads(line) for line in (mini_root / key).read_text().splitlines()]
        a = enc.encode([r["sentence1"] for r in rows], task=task)
        b = enc.encode([r["sentence2"] for r in rows], task=task)
        cos = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        gold = [r[field] for r in rows]
        want = spearmanr(cos, gold)[0] if name == "sts" else average_precision_score(gold, cos)
        assert res[name]["main_score"] == pytest.approx(100 * want, abs=1e-4)


# ---------------------------------------------------------------------------------------------- protocols
def test_classification_protocol_samples_per_label_and_separable_accuracy(mini_root, hash_encoder):
    from mote_rag.evaluation.classification import undersample

    labels = np.array(["a"] * 30 + ["b"] * 5 + ["c"] * 12)
    draw = undersample(labels, np.arange(len(labels)), 8, np.random.RandomState(42))
    counts = {k: int(v) for k, v in zip(*np.unique(labels[draw], return_counts=True))}
    assert counts == {"a": 8, "b": 5, "c": 8}
    res = evaluate(hash_encoder(), load_suite(mini_root / "suite.json").select(["cls", "cv"]), show_progress=False)
    cls, cv = res["datasets"]["cls"], res["datasets"]["cv"]
    assert cls["size"]["train_per_experiment"] == 12 and cls["size"]["experiments"] == 10
    assert cv["size"]["folds"] == 10
    # topic words are disjoint between labels: far above chance (33%) even with 4 examples per label
    assert cls["metrics"]["accuracy"] > 80.0 and cv["metrics"]["accuracy"] > 80.0
    assert 0 < cls["metrics"]["f1_macro"] <= 100.0


def test_clustering_separable_topics_score_high(mini_root, hash_encoder):
    res = evaluate(hash_encoder(), load_suite(mini_root / "suite.json").select(["clu"]), show_progress=False)
    clu = res["datasets"]["clu"]
    assert clu["size"] == {"docs": 72, "per_run": 40, "runs": 3, "labels": 3}
    assert 0.0 <= clu["main_score"] <= 100.0


def test_reranking_candidates_are_positives_plus_lexical_negatives():
    from mote_rag.evaluation.reranking import lexical_candidates

    corpus = ["red apple pie", "green apple", "blue car", "red car fast", "apple tree red"]
    cands = lexical_candidates(corpus, ["red apple"], [{1}], negatives=2, exclude=[4])
    assert cands == [[0, 1, 3]]  # positive 1 + the two best TF-IDF non-positives, never the excluded doc 4


# ---------------------------------------------------------------------------------------------- metrics
def test_retrieval_metrics_match_ranx_on_random_runs():
    from conftest import ranx_scores

    rng = np.random.default_rng(0)
    qrels, run = {}, {}
    for q in range(40):
        docs = [f"d{i}" for i in range(150)]
        rel = rng.choice(150, size=int(rng.integers(1, 6)), replace=False)
        qrels[f"q{q}"] = {docs[i]: 1 for i in rel}
        scores = rng.random(150)
        top = np.argsort(-scores)[:100]
        run[f"q{q}"] = {docs[i]: float(scores[i]) for i in top}
    mine = retrieval_metrics(qrels, run)
    theirs = ranx_scores(qrels, run)
    for m in mine:
        assert mine[m] == pytest.approx(theirs[m], abs=1e-6), m
    assert 0 < mine["ndcg@10"] < 1


def test_rerank_ap_and_rr():
    rel = np.array([0, 1, 0, 1])
    scores = np.array([0.9, 0.8, 0.1, 0.7])  # ranking: 0(n) 1(y) 3(y) 2(n)
    assert average_precision(rel, scores) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert reciprocal_rank(rel, scores) == pytest.approx(0.5)
    assert reciprocal_rank(rel, scores, k=1) == 0.0


# ---------------------------------------------------------------------------------------------- bad input
def test_missing_file_names_the_file(mini_root, hash_encoder):
    (mini_root / "ret" / "queries.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="queries.jsonl"):
        evaluate(hash_encoder(), load_suite(mini_root / "suite.json").select(["ret"]), show_progress=False)


def test_qrels_id_without_corpus_entry_names_the_qrels_file(mini_root, hash_encoder):
    with open(mini_root / "ret" / "qrels" / "test.tsv", "a") as fh:
        fh.write("q0\tghost-doc\t1\n")
    with pytest.raises(ValueError, match=r"test\.tsv.*ghost-doc"):
        evaluate(hash_encoder(), load_suite(mini_root / "suite.json").select(["ret"]), show_progress=False)


@pytest.mark.parametrize("name,target", [("sts", "sts.jsonl"), ("cls", "cls/test.jsonl"), ("clu", "clu.jsonl")])
def test_empty_split_names_the_file(mini_root, name, target, hash_encoder):
    (mini_root / target).write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{Path(target).name} is empty"):
        evaluate(hash_encoder(), load_suite(mini_root / "suite.json").select([name]), show_progress=False)


def test_empty_qrels_split_names_the_file(mini_root, hash_encoder):
    (mini_root / "ret" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n", encoding="utf-8")
    with pytest.raises(ValueError, match="test.tsv holds no judgments"):
        evaluate(hash_encoder(), load_suite(mini_root / "suite.json").select(["ret"]), show_progress=False)


def test_bad_suite_files_and_names(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"datasets": [{"name": "x", "type": "nonsense", "path": "p"}]}))
    with pytest.raises(ValueError, match="bad.json.*unknown type 'nonsense'"):
        load_suite(bad)
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_suite(tmp_path / "nope.json")
    with pytest.raises(ValueError, match="unknown dataset"):
        get_suite(["scifact", "not-a-set"])
    with pytest.raises(ValueError, match="unknown limit"):
        QUICK.with_limits({"max_docs": 3})


def test_default_suite_covers_every_eval_split(data_dir):
    names = {d.name for d in DEFAULT.datasets}
    assert {
        "scifact",
        "medquad",
        "quora_dup",
        "stsb",
        "sickr",
        "sts12",
        "sts13",
        "sts14",
        "sts15",
        "mrpc",
        "banking77",
        "trec",
        "sst2",
        "mr",
        "cr",
        "subj",
        "mpqa",
        "ag_news_clustering",
        "banking77_clustering",
    } <= names
    for spec in DEFAULT.datasets + QUICK.datasets:
        assert spec.resolve(data_dir).exists(), spec
    assert get_suite(["stsb"]).datasets[0].path == "sts/stsb/test.jsonl"
    assert QUICK.with_limits({"max_rows": 100}).select(["sickr"]).datasets[0].options["max_rows"] == 100


# ---------------------------------------------------------------------------------------------- cache
def test_cache_makes_reruns_free_and_is_keyed_by_fingerprint(mini_root, tmp_path, hash_encoder):
    suite = load_suite(mini_root / "suite.json").select(["ret", "rr", "sts"])
    enc = hash_encoder()
    first = evaluate(enc, suite, cache_dir=tmp_path / "cache", show_progress=False)
    n_calls = len(enc.calls)
    assert first["embedding"]["encoded_texts"] > 0
    # the reranking set reuses the retrieval corpus and queries in the same run
    assert first["embedding"]["cached_texts"] >= 6 + 4
    second = evaluate(enc, suite, cache_dir=tmp_path / "cache", show_progress=False)
    assert len(enc.calls) == n_calls and second["embedding"]["encoded_texts"] == 0
    assert second["datasets"] == first["datasets"] | {
        k: {**v, "seconds": second["datasets"][k]["seconds"]} for k, v in first["datasets"].items()
    }
    # one folder per task path, named by the path's fingerprint and the backend
    paths = {f"{enc.path_fingerprint(t)}-HashEncoder" for t in ("search_query", "search_document", "classification")}
    assert {p.name for p in (tmp_path / "cache").iterdir()} == paths
    files = sorted((tmp_path / "cache").rglob("*.npy"))
    assert files and all(np.load(f, allow_pickle=False).dtype == np.float32 for f in files)
    other = hash_encoder(fingerprint="hash-v2")
    evaluate(other, suite, cache_dir=tmp_path / "cache", show_progress=False)
    assert other.calls  # a different model never reads another's embeddings

    class OtherBackend(hash_encoder):  # same fingerprint (as an ONNX fp32 export has), different backend
        pass

    backend = OtherBackend()
    evaluate(backend, suite, cache_dir=tmp_path / "cache", show_progress=False)
    assert backend.calls  # ONNX-vs-torch comparisons really embed with each backend


# ---------------------------------------------------------------------------------------------- reports
def test_compare_table_deltas_and_report_files(mini_root, tmp_path, hash_encoder):
    from mote_rag.evaluation import write_report

    suite = load_suite(mini_root / "suite.json").select(["sts", "pairs", "clu"])
    a = evaluate(hash_encoder(), suite, show_progress=False, name="a")
    b = json.loads(json.dumps(a))
    b["model"] = "b"
    b["datasets"]["sts"]["main_score"] += 1.5
    b["averages"]["sts"] += 1.5
    md = compare({"a": a, "b": b}, baseline="a")
    row = next(line for line in md.splitlines() if line.startswith("| sts |"))
    assert f"{a['datasets']['sts']['main_score']:.2f}" in row and "(+1.50)" in row
    assert "a (baseline)" in md.splitlines()[0]
    assert any("STS (Spearman) average" in line and "(+1.50)" in line for line in md.splitlines())
    with pytest.raises(ValueError, match="baseline"):
        compare({"a": a}, baseline="zzz")
    paths = write_report({"a": a, "b": b}, tmp_path / "rep", baseline="a")
    assert json.loads(paths["a"].read_text())["datasets"]["sts"]["main_score"] == a["datasets"]["sts"]["main_score"]
    assert paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_eval_and_compare(mini_root, tmp_path, tiny_bert_dir, capsys):
    from mote_rag.cli.main import main

    out = tmp_path / "res"
    rc = main(
        [
            "eval",
            "--model",
            str(tiny_bert_dir),
            "--name",
            "tiny",
            "--suite",
            str(mini_root / "suite.json"),
            "--tasks",
            "retrieval,sts",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    result = json.loads((out / "tiny.json").read_text())
    assert set(result["datasets"]) == {"ret", "sts"}
    assert list((out / "cache").rglob("*.npy"))
    assert (out / "averages.png").is_file() and "| ret |" in (out / "table.md").read_text()
    other = dict(result, model="other", averages={**result["averages"], "sts": result["averages"]["sts"] - 2})
    (tmp_path / "other.json").write_text(json.dumps(other))
    rc = main(
        [
            "eval",
            "--compare",
            str(out / "tiny.json"),
            str(tmp_path / "other.json"),
            "--baseline",
            "other",
            "--out",
            str(tmp_path / "cmp"),
        ]
    )
    table = (tmp_path / "cmp" / "table.md").read_text()
    assert rc == 0 and "other (baseline)" in table and "(+2.00)" in table
    assert main(["eval", "--model", str(tmp_path / "missing"), "--out", str(out)]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["eval", "--out", str(out)]) == 2
    assert main(["eval", "--model", str(tiny_bert_dir), "--datasets", "nope", "--out", str(out)]) == 2
