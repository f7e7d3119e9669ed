"""MoTEEmbedding (LlamaIndex) behaviour: routing to the right expert, batching, errors, async, FAISS store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np
import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.embeddings.mote import MODEL_ENV, MoTEEmbedding

pytestmark = pytest.mark.slow

TEXTS = [
    "Aspirin lowers the risk of heart attack.",
    "How do vaccines train the immune system?",
    "a",
    "Short.",
    "Insulin is a hormone made by the pancreas that lets cells take up glucose.",
]


def one_by_one(model, texts, task):
    """The encoder's vectors for single-text calls (what LlamaIndex's per-text methods compare with)."""
    return np.stack([model.encode([t], task=task)[0] for t in texts])


def test_is_a_llama_index_embedding(tiny_mote_dir):
    emb = MoTEEmbedding(str(tiny_mote_dir))
    assert isinstance(emb, BaseEmbedding) and emb.class_name() == "MoTEEmbedding"
    assert emb.model_name == emb.model == str(tiny_mote_dir)


def test_texts_use_search_document_and_queries_search_query(routed_source, check_routing):
    given, reference = routed_source
    emb = MoTEEmbedding(given, embed_batch_size=len(TEXTS))
    assert isinstance(emb.encoder, type(reference))
    check_routing(reference, TEXTS, emb.get_text_embedding_batch(TEXTS), [emb.get_query_embedding(t) for t in TEXTS])
    # LlamaIndex's per-text method goes through the document path too
    texts = np.asarray([emb.get_text_embedding(t) for t in TEXTS], np.float32)
    np.testing.assert_array_equal(texts, one_by_one(reference, TEXTS, "search_document"))


def test_onnx_folder_needs_no_torch(tiny_onnx_dir):
    code = (
        "import sys; from llama_index.embeddings.mote import MoTEEmbedding; "
        f"e = MoTEEmbedding({str(tiny_onnx_dir)!r}); e.get_text_embedding_batch(['a b']); "
        "e.get_query_embedding('c'); assert 'torch' not in sys.modules, 'torch was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_tasks_can_be_overridden(tiny_mote):
    emb = MoTEEmbedding(tiny_mote, text_task="clustering", query_task="classification")
    np.testing.assert_array_equal(
        np.asarray(emb.get_text_embedding(TEXTS[0]), np.float32), tiny_mote.encode([TEXTS[0]], task="clustering")[0]
    )
    np.testing.assert_array_equal(
        np.asarray(emb.get_query_embedding(TEXTS[0]), np.float32),
        tiny_mote.encode([TEXTS[0]], task="classification")[0],
    )
    # `document_task` (the LangChain name) is accepted too
    assert MoTEEmbedding(tiny_mote, document_task="clustering").text_task == "clustering"


def test_batches_reach_the_encoder_in_embed_batch_size_chunks(tiny_mote, caching_encoder):
    spy = caching_encoder(tiny_mote)
    emb = MoTEEmbedding(spy, batch_size=2, show_progress=True)
    assert emb.embed_batch_size == 2
    vectors = emb.get_text_embedding_batch(TEXTS)
    assert len(vectors) == len(TEXTS) and all(type(x) is float for x in vectors[0])
    assert [c["n"] for c in spy.calls] == [2, 2, 1]
    assert {(c["task"], c["batch_size"], c["show_progress_bar"]) for c in spy.calls} == {("search_document", 2, True)}


def test_bad_input_errors(tiny_mote, tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(ValueError, match=MODEL_ENV):
        MoTEEmbedding()
    with pytest.raises(ValueError, match="text_task: unknown task 'documnet'"):
        MoTEEmbedding(tiny_mote, text_task="documnet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MoTEEmbedding(str(tmp_path / "missing"))
    with pytest.raises(TypeError, match="model folder path or a mote-rag encoder"):
        MoTEEmbedding(object())


def test_model_from_environment(tiny_mote_dir, monkeypatch):
    monkeypatch.setenv(MODEL_ENV, str(tiny_mote_dir))
    assert MoTEEmbedding().model == str(tiny_mote_dir)


def test_async_methods_do_not_block_the_event_loop(tiny_mote, caching_encoder):
    class SlowEncoder(caching_encoder):
        def encode(self, *args, **kwargs):
            time.sleep(0.4)
            return super().encode(*args, **kwargs)

    emb = MoTEEmbedding(SlowEncoder(tiny_mote), embed_batch_size=len(TEXTS))

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        texts, query = await asyncio.gather(emb.aget_text_embedding_batch(TEXTS), emb.aget_query_embedding(TEXTS[0]))
        stop.set()
        await task
        return ticks, texts, query

    ticks, texts, query = asyncio.run(main())
    assert ticks >= 20, ticks  # two 0.4 s encodes in a worker thread; a blocked loop ticks about once
    assert texts == emb.get_text_embedding_batch(TEXTS) and query == emb.get_query_embedding(TEXTS[0])


def test_concurrent_async_calls_share_one_encoder_safely(tiny_mote_dir):
    emb = MoTEEmbedding(str(tiny_mote_dir), embed_batch_size=1)
    expected = [emb.get_text_embedding(t) for t in TEXTS]

    async def main():
        return await emb.aget_text_embedding_batch(TEXTS * 4)  # 20 one-text chunks, gathered concurrently

    assert asyncio.run(main()) == expected * 4


def test_example_script_runs(tiny_onnx_dir, capsys):
    """examples/llamaindex_retriever.py end to end (tiny model: checks the plumbing, not the quality)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[3] / "examples" / "llamaindex_retriever.py"
    spec = importlib.util.spec_from_file_location("llamaindex_retriever_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    rate = example.main(["--model", str(tiny_onnx_dir), "--k", "2"])
    out = capsys.readouterr().out
    assert "indexed 260 MedQuAD answers" in out and f"hit@2 over 250 held-out questions: {rate:.3f}" in out
