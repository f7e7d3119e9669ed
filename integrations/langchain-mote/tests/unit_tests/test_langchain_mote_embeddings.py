"""MoTEEmbeddings behaviour: routing to the right expert, types, errors, batching, async."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import numpy as np
import pytest
from langchain_mote import MODEL_ENV, MoTEEmbeddings

pytestmark = pytest.mark.slow

TEXTS = [
    "Aspirin lowers the risk of heart attack.",
    "How do vaccines train the immune system?",
    "a",
    "Short.",
    "Insulin is a hormone made by the pancreas that lets cells take up glucose.",
]


def test_documents_use_search_document_and_queries_search_query(routed_source, check_routing):
    given, reference = routed_source
    emb = MoTEEmbeddings(given)
    assert isinstance(emb.encoder, type(reference))
    check_routing(reference, TEXTS, emb.embed_documents(TEXTS), [emb.embed_query(t) for t in TEXTS])


def test_onnx_folder_needs_no_torch(tiny_onnx_dir):
    code = (
        "import sys; from langchain_mote import MoTEEmbeddings; "
        f"e = MoTEEmbeddings({str(tiny_onnx_dir)!r}); e.embed_documents(['a b']); e.embed_query('c'); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_faiss_store_with_inner_product_scores_cosines(tiny_mote):
    import warnings

    with warnings.catch_warnings():  # langchain-community announces its sunset on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy

    emb = MoTEEmbeddings(tiny_mote)
    store = FAISS.from_texts(
        TEXTS, emb, distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT, relevance_score_fn=lambda s: (1.0 + s) / 2.0
    )  # what the README recommends
    cosines = np.asarray(emb.embed_documents(TEXTS)) @ np.asarray(emb.embed_query(TEXTS[1]))
    expected = np.sort(cosines)[::-1][:3]
    hits = store.similarity_search_with_score(TEXTS[1], k=3)
    np.testing.assert_allclose([score for _, score in hits], expected, atol=1e-5)
    assert [doc.page_content for doc, _ in hits] == [TEXTS[i] for i in np.argsort(-cosines)[:3]]
    relevance = store.similarity_search_with_relevance_scores(TEXTS[1], k=3)
    np.testing.assert_allclose([r for _, r in relevance], (1.0 + expected) / 2.0, atol=1e-5)


def test_tasks_can_be_overridden(tiny_mote):
    emb = MoTEEmbeddings(tiny_mote, document_task="clustering", query_task="clustering")
    np.testing.assert_array_equal(
        np.asarray(emb.embed_documents(TEXTS), np.float32), tiny_mote.encode(TEXTS, task="clustering")
    )
    np.testing.assert_array_equal(
        np.asarray(emb.embed_query(TEXTS[0]), np.float32), tiny_mote.encode(TEXTS[0], task="clustering")
    )


def test_loads_saved_model_folder(tiny_mote, tiny_mote_dir):
    emb = MoTEEmbeddings(str(tiny_mote_dir))
    assert emb.model == str(tiny_mote_dir)
    assert emb.fingerprint == tiny_mote.fingerprint and emb.dim == tiny_mote.dim
    np.testing.assert_allclose(emb.embed_documents(TEXTS), tiny_mote.encode(TEXTS, task="search_document"), atol=1e-6)


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


def test_example_script_runs(tiny_onnx_dir, capsys):
    """examples/langchain_retrieval.py end to end (tiny model: checks the plumbing, not the quality)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[4] / "examples" / "langchain_retrieval.py"
    spec = importlib.util.spec_from_file_location("langchain_retrieval_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    rate = example.main(["--model", str(tiny_onnx_dir), "--k", "2"])
    out = capsys.readouterr().out
    assert "indexed 260 MedQuAD answers" in out and f"hit@2 over 250 held-out questions: {rate:.3f}" in out
