"""One encoder base for every backend: torch MoTEModel, OnnxEncoder and the sentence-transformers adapter give the
same rows through EncoderBase, and only their batch step differs."""

from __future__ import annotations

import numpy as np
import pytest

from mote_rag import MoTEModel
from mote_rag.encoders import Encoder, EncoderBase, check_encoder
from mote_rag.interop.frameworks import TaskEmbedder
from mote_rag.runtime.onnx_encoder import OnnxEncoder

pytestmark = pytest.mark.slow

TEXTS = [
    "",
    "x",
    "how do I reset my card?",
    "Vitamin D deficiency is associated with fractures in older adults.",
    "ünïcode, émojis 🙂 and punctuation!?",
    "The quick brown fox jumps over the lazy dog " * 30,
    "two words",
]


@pytest.fixture(scope="module")
def tiny(tiny_mote):
    """The session's tiny MoTE (read-only)."""
    return tiny_mote


@pytest.fixture(scope="module")
def tiny_onnx(tiny_onnx_dir):
    """An OnnxEncoder on the session's export of `tiny_mote`."""
    return OnnxEncoder(tiny_onnx_dir)


def test_every_backend_is_an_encoder_base_with_the_protocol(tiny, tiny_onnx):
    for enc in (tiny, tiny_onnx):
        assert isinstance(enc, EncoderBase) and isinstance(enc, Encoder) and check_encoder(enc) is enc
        assert "encode" not in type(enc).__dict__  # the base's encode, not a copy
        assert enc.prepare_texts(["x"], "query") == ["search_query: x"]


@pytest.mark.parametrize("task", ["search_query", "search_document", "classification", "clustering"])
def test_torch_and_onnx_agree_through_the_base(tiny, tiny_onnx, task):
    for normalize in (True, False):
        a = tiny.encode(TEXTS, task=task, batch_size=3, normalize_embeddings=normalize)
        b = tiny_onnx.encode(TEXTS, task=task, batch_size=3, normalize_embeddings=normalize)
        assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(TEXTS), tiny.dim)
        assert np.abs(a - b).max() <= 1e-5
    assert tiny.encode(TEXTS[2], task=task).shape == tiny_onnx.encode(TEXTS[2], task=task).shape == (tiny.dim,)
    assert tiny.encode([], task=task).shape == tiny_onnx.encode([], task=task).shape == (0, tiny.dim)


def test_batching_never_changes_a_row(tiny, tiny_onnx):
    """A mixed-task call equals one call per task (ONNX: bit for bit; torch batches mix experts, so padding may
    differ), and the query/document helpers are encode with that task."""
    tasks = ["query", "document", "classification", "query", "clustering", "document", "query"]
    mixed = tiny_onnx.encode(TEXTS, task=tasks, batch_size=2)
    for name in set(tasks):
        rows = [i for i, t in enumerate(tasks) if t == name]
        np.testing.assert_array_equal(mixed[rows], tiny_onnx.encode([TEXTS[i] for i in rows], task=name, batch_size=2))
    torch_mixed = tiny.encode(TEXTS, task=tasks, batch_size=2)
    assert np.abs(torch_mixed - mixed).max() <= 1e-5
    for enc in (tiny, tiny_onnx):
        np.testing.assert_array_equal(enc.encode_query(TEXTS), enc.encode(TEXTS, task="search_query"))
        np.testing.assert_array_equal(enc.encode_document(TEXTS), enc.encode(TEXTS, task="search_document"))


def test_no_task_means_the_models_default_task(tiny_bert_dir):
    model = MoTEModel.upcycle(tiny_bert_dir)
    assert model.default_task == "search_document"
    np.testing.assert_array_equal(model.encode(TEXTS), model.encode_document(TEXTS))
    model.default_task = "search_query"
    np.testing.assert_array_equal(model.encode(TEXTS), model.encode_query(TEXTS))
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        MoTEModel(model.backbone, model.tokenizer, model.tasks, [], 32, default_task="nope")


def test_training_truncation_is_an_argument_not_a_side_channel(tiny):
    before = tiny.max_seq_length
    long = ["word " * 200]
    short = tiny.embed_batch(long, ["query"], max_length=8)
    assert tiny.max_seq_length == before
    tiny.max_seq_length = 8
    try:
        np.testing.assert_array_equal(short.detach().numpy(), tiny.embed_batch(long, ["query"]).detach().numpy())
    finally:
        tiny.max_seq_length = before


def test_sentence_transformers_adapter_is_a_full_encoder(tiny_bert_dir):
    pytest.importorskip("sentence_transformers")
    from mote_rag.evaluation import SentenceTransformerEncoder

    st = SentenceTransformerEncoder(tiny_bert_dir, prompts={"search_query": "search_query: "})
    assert check_encoder(st) is st and st.tasks.get("query").prefix == "search_query: "
    dense = MoTEModel.dense(tiny_bert_dir)
    np.testing.assert_allclose(
        st.encode(TEXTS, task="query", batch_size=3), dense.encode(TEXTS, task="query"), atol=1e-5
    )
    np.testing.assert_allclose(
        st.encode(TEXTS, task="classification"),
        MoTEModel.dense(tiny_bert_dir, use_prefixes=False).encode(TEXTS),
        atol=1e-5,
    )
    # it used to pass the integrations' check and then fail inside TaskEmbedder (tasks was None)
    vectors = TaskEmbedder(st, {"query_task": "search_query"}, "test").embed(TEXTS[:2], "search_query", 2)
    assert len(vectors) == 2 and len(vectors[0]) == st.dim
    with pytest.raises(ValueError, match="unknown task.*'retrieval'"):
        SentenceTransformerEncoder(tiny_bert_dir, prompts={"retrieval": "r: "})
