"""The run-time backend choice (mote_rag.backend): measured once per CPU family, remembered, and the same vectors
and fingerprint whichever backend embeds; `mote-rag index --backend`."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TEXTS = [f"document {i} about {'proteins' if i % 2 else 'the heart'} and {'x ' * (i % 7)}trials" for i in range(40)]


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture()
def cache(module_cache, monkeypatch):
    """The module's cache folder (the tiny model's ONNX twin is exported once), with no recorded choice."""
    monkeypatch.setenv("MOTE_RAG_CACHE", str(module_cache))
    (module_cache / "backend_choice.json").unlink(missing_ok=True)
    return module_cache


def test_auto_measures_once_keeps_the_faster_and_reuses_the_record(tiny_mote, cache, monkeypatch):
    from mote_rag import backend

    encoder, record = backend.serving_encoder(tiny_mote, TEXTS, "search_document", "auto", batch_size=8)
    assert record["reason"] == "measured now"
    faster = "onnx" if record["onnx_texts_per_s"] >= backend.ONNX_MARGIN * record["torch_texts_per_s"] else "torch"
    assert record["backend"] == faster
    assert record["onnx_vs_torch"] == pytest.approx(record["onnx_texts_per_s"] / record["torch_texts_per_s"], rel=1e-2)
    assert type(encoder).__name__ == ("OnnxEncoder" if faster == "onnx" else "MoTEModel")
    saved = json.loads((cache / "backend_choice.json").read_text())
    assert list(saved) == [record["key"]] and saved[record["key"]]["backend"] == faster
    assert (cache / "onnx" / tiny_mote.fingerprint / "manifest.json").is_file()  # the twin, exported once

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured again although the choice is recorded")

    monkeypatch.setattr(backend, "measure_backends", no_measuring)
    again, second = backend.serving_encoder(tiny_mote, TEXTS, "search_document", "auto", batch_size=8)
    assert second["reason"] == "recorded" and second["backend"] == faster and type(again) is type(encoder)

    # another CPU family is measured on its own, and both records stay
    monkeypatch.setattr(backend, "cpu_family", lambda: "Other CPU [AVX2 only]")
    monkeypatch.setattr(backend, "measure_backends", lambda *a, **k: {"backend": "torch", "onnx_vs_torch": 0.5})
    _, third = backend.serving_encoder(tiny_mote, TEXTS, "search_document", "auto")
    assert third["reason"] == "measured now" and third["key"].startswith("Other CPU [AVX2 only] | onnxruntime")
    assert len(json.loads((cache / "backend_choice.json").read_text())) == 2


def test_the_onnx_twin_gives_the_torch_vectors_under_the_same_fingerprint(tiny_mote, cache):
    from mote_rag.backend import serving_encoder

    twin, record = serving_encoder(tiny_mote, TEXTS, "search_document", "onnx")
    assert record == {"backend": "onnx", "reason": "asked"} and twin.variant == "optimized"
    assert twin.fingerprint == tiny_mote.fingerprint
    for task in tiny_mote.tasks.names:
        want = tiny_mote.encode(TEXTS[:10], task=task)
        got = twin.encode(TEXTS[:10], task=task)
        assert np.abs(want - got).max() < 1e-5, task
    same, record = serving_encoder(tiny_mote, TEXTS, "search_document", "torch")
    assert same is tiny_mote and record["reason"] == "asked"
    with pytest.raises(ValueError, match="backend must be one of auto, torch, onnx, got 'gpu'"):
        serving_encoder(tiny_mote, TEXTS, "search_document", "gpu")


def test_a_damaged_record_or_a_foreign_export_in_the_cache_is_refused(tiny_mote, other_tiny_mote, tiny_onnx_dir, cache):
    import shutil

    from mote_rag.backend import choice_key, serving_encoder

    (cache / "backend_choice.json").write_text(json.dumps({choice_key(tiny_mote): {"backend": "gpu"}}))
    with pytest.raises(ValueError, match="names no backend; remove the file to measure again"):
        serving_encoder(tiny_mote, TEXTS, "search_document", "auto")
    shutil.copytree(tiny_onnx_dir, cache / "onnx" / other_tiny_mote.fingerprint)  # tiny_mote's export
    with pytest.raises(ValueError, match="holds an export of another model"):
        serving_encoder(other_tiny_mote, TEXTS, "search_document", "onnx")


def test_cli_index_backends_give_one_index(tiny_mote_dir, tiny_onnx_dir, tmp_path, cache, capsys):
    from mote_rag.cli.main import main
    from mote_rag.index.faiss_index import FaissIndex

    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(TEXTS)))
    built = {}
    for backend in ("torch", "onnx", "auto"):
        out = tmp_path / backend
        assert (
            main(["index", str(corpus), "-o", str(out), "--model", str(tiny_mote_dir), "--backend", backend, "-q"]) == 0
        )
        err = capsys.readouterr().err
        assert ("onnxruntime runs at" in err) == (backend == "auto"), err
        built[backend] = FaissIndex.load(out)
    torch_index = built["torch"]
    for backend in ("onnx", "auto"):
        assert built[backend].fingerprint == torch_index.fingerprint
        assert built[backend].ids == torch_index.ids
        ids = torch_index.ids
        assert np.abs(built[backend].vectors(ids) - torch_index.vectors(ids)).max() < 1e-5
    assert (
        main(["index", str(corpus), "-o", str(tmp_path / "x"), "--model", str(tiny_onnx_dir), "--backend", "torch"])
        == 2
    )
    assert "is an ONNX export, which has no torch weights" in capsys.readouterr().err


def test_a_cache_that_cannot_be_written_keeps_torch_and_says_why(tiny_mote, tmp_path, monkeypatch):
    from mote_rag.backend import serving_encoder

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MOTE_RAG_CACHE", str(blocker / "cache"))  # a folder under a file cannot be made
    encoder, record = serving_encoder(tiny_mote, TEXTS, "search_document", "auto")
    assert encoder is tiny_mote and record["backend"] == "torch"
    assert record["reason"].startswith("no ONNX export to time against (") and "a-file" in record["reason"]
