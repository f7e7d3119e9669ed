"""Distributed indexing on a local Ray cluster (2 CPUs): 2,000 real SciFact abstracts into 2 shards.

The acceptance check: the sharded searcher over the Ray-built shards returns the same ids, and scores within
1e-6, as the single-machine index built from the same texts with the same exported ONNX graph. The model is the
tiny BERT fixture upcycled and exported (the check is about the pipeline, not about embedding quality).
One Ray session for the module.
"""

from __future__ import annotations

import json
import re
import shutil
import sys

import numpy as np
import pytest

from mote_rag.cli.main import main
from mote_rag.index.faiss_index import INDEX_JSON, FaissIndex, int_id
from mote_rag.index.sharded import SHARDS_JSON, ShardedIndex, ShardSetError, shard_of
from mote_rag.readers import read_corpus

pytestmark = pytest.mark.slow

N_DOCS = 2000


@pytest.fixture(scope="module")
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_onnx(tiny_onnx_dir):
    """The session's export of `tiny_mote` (read-only)."""
    return tiny_onnx_dir


@pytest.fixture(scope="module")
def scifact(data_dir, tmp_path_factory):
    """The first 2,000 SciFact abstracts, as a user's corpus file, and the 300 test claims as queries."""
    root = data_dir / "retrieval" / "scifact"
    lines = (root / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:N_DOCS]
    path = tmp_path_factory.mktemp("scifact") / "corpus.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    test_ids = {line.split("\t")[0] for line in (root / "qrels" / "test.tsv").read_text().splitlines()[1:]}
    queries = [json.loads(line) for line in (root / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    return path, [q["text"] for q in queries if q["_id"] in test_ids]


@pytest.fixture(scope="module")
def built(ray_session, tiny_onnx, scifact, tmp_path_factory):
    from mote_rag.index.ray_build import build_ray_index

    out = tmp_path_factory.mktemp("ray-set") / "set"
    manifest = build_ray_index(
        scifact[0], out, tiny_onnx, shards=2, workers=2, threads=1, id_field="_id", text_fields="title,text"
    )
    return out, manifest


def test_ray_shards_search_like_the_single_machine_index(built, tiny_onnx, scifact, tmp_path):
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    out, manifest = built
    path, queries = scifact
    assert len(queries) == 300
    encoder = OnnxEncoder(tiny_onnx)
    corpus = read_corpus(path, id_field="_id", text_fields="title,text")
    single = FaissIndex.build(
        encoder,
        corpus.texts,
        ids=corpus.ids,
        metadatas=corpus.metadatas,
        show_progress_bar=False,
        encoder_spec=str(tiny_onnx),
    )
    sharded = ShardedIndex.load(out, encoder=encoder)
    assert manifest["count"] == len(sharded) == N_DOCS and manifest["num_shards"] == 2

    # the workers' vectors are the single process's vectors (same graph; batching does not change them)
    worst = 0.0
    for shard in sharded.shards:
        for doc_id in shard.ids[::7]:
            key = int_id(doc_id)
            worst = max(
                worst, float(np.abs(shard.faiss_index.reconstruct(key) - single.faiss_index.reconstruct(key)).max())
            )
    assert worst < 1e-6, worst

    expected = single.search(queries, k=10)
    got = sharded.search(queries, k=10)
    assert [[h.id for h in hits] for hits in got] == [[h.id for h in hits] for hits in expected]
    diff = max(abs(g.score - e.score) for gs, es in zip(got, expected) for g, e in zip(gs, es))
    assert diff <= 1e-6, diff
    assert got[0][0].text == single.get(got[0][0].id).text  # texts and metadata travel with the vectors


def test_ray_shards_are_single_machine_indexes(built, tiny_onnx, scifact, tmp_path):
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    out, manifest = built
    FaissIndex.build(
        OnnxEncoder(tiny_onnx), ["a text"], ids=["x"], show_progress_bar=False, encoder_spec=str(tiny_onnx)
    ).save(tmp_path / "ref")
    ref = json.loads((tmp_path / "ref" / INDEX_JSON).read_text())
    all_ids = []
    for k, entry in enumerate(manifest["shards"]):
        shard_dir = out / entry["path"]
        header = json.loads((shard_dir / INDEX_JSON).read_text())
        assert set(header) == set(ref)
        for key in (
            "format_version",
            "kind",
            "metric",
            "dim",
            "params",
            "encoder",
            "document_task",
            "query_task",
            "store_text",
            "id_hash",
        ):
            assert header[key] == ref[key], key
        assert header["count"] == entry["count"] > 800 and header["faiss_sha256"] == entry["faiss_sha256"]
        assert all(shard_of(d, 2) == k for d in header["ids"])
        assert FaissIndex.load(shard_dir, encoder=OnnxEncoder(tiny_onnx)).kind == "flat"  # opens on its own
        all_ids += header["ids"]
    assert sorted(all_ids) == sorted(read_corpus(scifact[0], id_field="_id").ids)  # each document exactly once
    assert manifest["build"]["workers"] == 2 and manifest["encoder"]["fingerprint"] == ref["encoder"]["fingerprint"]


def test_cli_ray_index_then_overwrite_and_errors(ray_session, tiny_onnx, scifact, tmp_path, capsys):
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(scifact[0].read_text(encoding="utf-8").splitlines()[:120]) + "\n", encoding="utf-8")
    out = tmp_path / "set"
    argv = [
        "index",
        str(small),
        "-o",
        str(out),
        "--ray",
        "--shards",
        "3",
        "--workers",
        "1",
        "--model",
        str(tiny_onnx),
        "--text-field",
        "title,text",
        "-q",
    ]
    assert main(argv) == 0
    assert "into 3 shards" in capsys.readouterr().out
    first_build = {p.name for p in out.glob("build-*")}
    assert len(ShardedIndex.load(out)) == 120
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0
    builds = {p.name for p in out.glob("build-*")}
    assert len(builds) == 1 and builds != first_build  # the old build went once the new manifest was in place
    # `mote-rag search` opens a shard set as it opens one index, with the same hits as the Python API
    query = json.loads(small.read_text(encoding="utf-8").splitlines()[0])["title"]
    capsys.readouterr()
    assert main(["search", str(out), query, "--json", "-k", "3", "--model", str(tiny_onnx)]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    expected = ShardedIndex.load(out, encoder=OnnxEncoder(tiny_onnx)).search(query, k=3)
    assert [h["id"] for h in hits] == [h.id for h in expected]
    shutil.rmtree(next(out.glob("build-*/shard-00002-of-00003")))
    with pytest.raises(ShardSetError, match="shard 2 of 3 .* missing"):
        ShardedIndex.load(out)

    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"_id": "1", "text": "a"}\n{"_id": "2", "text": "b"}\n{"_id": "1", "text": "c"}\n')
    assert (
        main(
            [
                "index",
                str(dup),
                "-o",
                str(tmp_path / "dup-set"),
                "--ray",
                "--shards",
                "2",
                "--workers",
                "1",
                "--model",
                str(tiny_onnx),
                "-q",
            ]
        )
        == 2
    )
    assert "duplicate id" in capsys.readouterr().err
    assert not (tmp_path / "dup-set" / SHARDS_JSON).exists()
    # an input error raised inside a Ray Data task reaches the user as itself: exit 2, naming the file and field
    assert (
        main(
            [
                "index",
                str(dup),
                "-o",
                str(tmp_path / "f-set"),
                "--ray",
                "--shards",
                "2",
                "--workers",
                "1",
                "--model",
                str(tiny_onnx),
                "--text-field",
                "body",
                "-q",
            ]
        )
        == 2
    )
    # Ray may parse the lines in more than one block, so the row named is whichever failing row came first (ids
    # '1' and '2' both fail); the message is ours alone, without Ray Data's retry advice appended to it
    err = capsys.readouterr().err
    assert re.search(re.escape(str(dup)) + r" \(id '[12]'\): no text field 'body'", err), err
    assert "mote-rag index: error: " in err and "transient" not in err.split("mote-rag index: error: ")[-1]

    assert main(["index", str(small), "-o", str(tmp_path / "x"), "--shards", "2"]) == 2
    assert "add --ray" in capsys.readouterr().err


def test_cli_without_ray_says_how_to_install_it(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as if not installed
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "1", "text": "a"}\n')
    code = main(["index", str(corpus), "-o", str(tmp_path / "set"), "--ray", "--shards", "2"])
    assert code == 2
    assert "pip install 'mote-rag[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "set").exists()


def test_ray_reads_csv_txt_folders_and_gzip_like_the_single_machine_reader(ray_session, tiny_onnx, scifact, tmp_path):
    import gzip

    from mote_rag.index.ray_build import build_ray_index

    csv_path = tmp_path / "docs.csv"
    csv_path.write_text(
        'id,title,text,year\nd1,First,"a text that spans\ntwo lines",2001\nd2,Second,plain,\n'
        'd3,,"with, a comma",1999\n',
        encoding="utf-8",
    )
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("first note", encoding="utf-8")
    (folder / "sub" / "b.txt").write_text("second note\nwith two lines", encoding="utf-8")
    gz_path = tmp_path / "corpus.jsonl.gz"
    with gzip.open(gz_path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(scifact[0].read_text(encoding="utf-8").splitlines()[:6]) + "\n")
    cases = [(csv_path, {"text_fields": "title,text"}), (folder, {}), (gz_path, {"text_fields": "title,text"})]
    for i, (path, fields) in enumerate(cases):
        build_ray_index(path, tmp_path / f"set{i}", tiny_onnx, shards=2, workers=1, **fields)
        expected = read_corpus(path, **fields)
        sharded = ShardedIndex.load(tmp_path / f"set{i}")
        assert sorted(d for s in sharded.shards for d in s.ids) == sorted(expected.ids), path
        for doc_id, text, meta in zip(expected.ids, expected.texts, expected.metadatas):
            hit = sharded.get(doc_id)
            assert (hit.text, hit.metadata) == (text, meta), (path, doc_id)


def test_shard_writer_ignores_a_retried_batch_but_not_a_duplicate_id(tiny_onnx, tmp_path):
    """An encoder actor that dies is retried by Ray Data and may resend rows: the shard keeps them once."""
    from mote_rag.index.ray_build import ShardWriter

    writer = ShardWriter(
        str(tmp_path / "shard"), str(tiny_onnx), "flat", "search_document", "search_query", True, str(tiny_onnx), {}
    )
    x = np.eye(3, 32, dtype=np.float32)
    assert writer.add(["b", "a"], ["text b", "text a"], ["{}", '{"k": 1}'], x[:2]) == 2
    assert writer.add(["a", "c"], ["text a", "text c"], ['{"k": 1}', "{}"], x[1:]) == 3  # "a" again: a retry
    assert writer.save()["count"] == 3
    shard = FaissIndex.load(tmp_path / "shard")
    assert shard.ids == ["a", "b", "c"] and shard.get("a").metadata == {"k": 1}
    assert np.allclose(shard.faiss_index.reconstruct(int_id("c")), x[2])
    writer.add(["c"], ["another text"], ["{}"], x[:1])  # a real duplicate: refused when the shard is saved
    with pytest.raises(ValueError, match="duplicate id 'c'"):
        writer.save()


def test_qdrant_example_moves_the_shard_vectors_and_answers_alike(built, tiny_onnx):
    """examples/qdrant_local.py on the Ray-built set: Qdrant (local mode) via LlamaIndex and LangChain."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "qdrant_local.py"
    spec = importlib.util.spec_from_file_location("qdrant_local_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    result = example.main(["--index", str(built[0]), "--model", str(tiny_onnx), "--k", "5"])
    assert result["queries"] == 3
    assert result["same_top_k"] == {"llamaindex": 3, "langchain": 3}
    assert result["max_score_difference"] < 1e-5
