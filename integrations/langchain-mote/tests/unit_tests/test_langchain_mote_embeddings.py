"""MoTEEmbeddings behaviour: routing to the right expert, types, errors, batching, async."""
from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from langchain_mote import MODEL_ENV, MoTEEmbeddings

TEXTS = ["Aspirin lowers the risk of heart attack.", "How do vaccines train the immune system?",
         "a", "Short.", "Insulin is a hormone made by the pancreas that lets cells take up glucose."]


def test_documents_use_search_document_and_queries_search_query(tiny_mote):
    emb = MoTEEmbeddings(tiny_mote)
    docs = np.asarray(emb.embed_documents(TEXTS), dtype=np.float32)
    queries = np.asarray([emb.embed_query(t) for t in TEXTS], dtype=np.float32)
    np.testing.assert_array_equal(docs, tiny_mote.encode(TEXTS, task="search_document"))
    # one query per call: compare with the encoder on the same one-text batches (padding changes the last bits)
    np.testing.assert_array_equal(queries, np.stack([tiny_mote.encode([t], task="search_query")[0] for t in TEXTS]))
    # the query expert was perturbed: the two paths must give different vectors for the same text
    assert np.abs(docs - queries).max() > 1e-3


def test_tasks_can_be_overridden(tiny_mote):
    emb = MoTEEmbeddings(tiny_mote, document_task="clustering", query_task="clustering")
    np.testing.assert_array_equal(np.asarray(emb.embed_documents(TEXTS), np.float32),
                                  tiny_mote.encode(TEXTS, task="clustering"))
    np.testing.assert_array_equal(np.asarray(emb.embed_query(TEXTS[0]), np.float32),
                                  tiny_mote.encode(TEXTS[0], task="clustering"))


def test_loads_saved_model_folder(tiny_mote, tiny_mote_dir):
    emb = MoTEEmbeddings(str(tiny_mote_dir))
    assert emb.model == str(tiny_mote_dir)
    assert emb.fingerprint == tiny_mote.fingerprint and emb.dim == tiny_mote.dim
    np.testing.assert_allclose(emb.embed_documents(TEXTS), tiny_mote.encode(TEXTS, task="search_document"),
                               atol=1e-6)


def test_returns_python_floats_and_handles_empty(tiny_mote):
    emb = MoTEEmbeddings(tiny_mote)
    vectors = emb.embed_documents(TEXTS[:2])
    assert type(vectors) is list and all(type(v) is list for v in vectors)
    assert all(type(x) is float for v in vectors for x in v) and len(vectors[0]) == tiny_mote.dim
    assert type(emb.embed_query("q")[0]) is float
    assert emb.embed_documents([]) == []


def test_batch_size_and_progress_reach_the_encoder(tiny_mote, caching_encoder, capsys):
    spy = caching_encoder(tiny_mote)
    emb = MoTEEmbeddings(spy, batch_size=2, show_progress=True)
    emb.embed_documents(TEXTS)
    emb.embed_query("what is insulin?")
    assert spy.calls[0] == {"task": "search_document", "n": len(TEXTS), "batch_size": 2, "show_progress_bar": True}
    assert spy.calls[1] == {"task": "search_query", "n": 1, "batch_size": 2, "show_progress_bar": False}
    assert "encode" in capsys.readouterr().err  # the encoder's tqdm bar


def test_bad_input_errors(tiny_mote, tmp_path, monkeypatch):
    monkeypatch.delenv(MODEL_ENV, raising=False)
    with pytest.raises(ValueError, match=MODEL_ENV):
        MoTEEmbeddings()
    with pytest.raises(ValueError, match="query_task: unknown task 'serch_query'"):
        MoTEEmbeddings(tiny_mote, query_task="serch_query")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MoTEEmbeddings(str(tmp_path / "missing"))
    with pytest.raises(TypeError, match="model folder path or a mote-rag encoder"):
        MoTEEmbeddings(42)
    with pytest.raises(TypeError, match="list of strings"):
        MoTEEmbeddings(tiny_mote).embed_documents("one string")
    with pytest.raises(TypeError, match="one string"):
        MoTEEmbeddings(tiny_mote).embed_query(["a", "b"])
    with pytest.raises(ValueError, match="batch_size"):
        MoTEEmbeddings(tiny_mote, batch_size=0)


def test_async_methods_do_not_block_the_event_loop(tiny_mote, caching_encoder):
    class SlowEncoder(caching_encoder):
        """Blocks its thread for 0.4 s per call, as a big model would."""

        def encode(self, *args, **kwargs):
            time.sleep(0.4)
            return super().encode(*args, **kwargs)

    emb = MoTEEmbeddings(SlowEncoder(tiny_mote))

    async def main():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        docs, query = await asyncio.gather(emb.aembed_documents(TEXTS), emb.aembed_query(TEXTS[0]))
        stop.set()
        await task
        return ticks, docs, query

    ticks, docs, query = asyncio.run(main())
    # two 0.4 s encodes (serialised by the encoder lock): a blocked loop would tick about once
    assert ticks >= 20, ticks
    assert docs == emb.embed_documents(TEXTS) and query == emb.embed_query(TEXTS[0])


def test_concurrent_async_calls_share_one_encoder_safely(tiny_mote_dir):
    emb = MoTEEmbeddings(str(tiny_mote_dir))
    expected = [emb.embed_query(t) for t in TEXTS]

    async def main():
        return await asyncio.gather(*(emb.aembed_query(t) for t in TEXTS * 4))

    assert asyncio.run(main()) == expected * 4
