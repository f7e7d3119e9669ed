"""MoTE core: upcycling invariance, real routing, save/load, parameter counts, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mote_rag import MoTEModel, Task, TaskSet
from mote_rag.experts import TaskRoutedFeedForward, mote_layers

pytestmark = pytest.mark.slow

TEXTS = [
    "how do I reset my card?",
    "Vitamin D deficiency is associated with an increased risk of fractures in older adults.",
    "",
    "The quick brown fox jumps over the lazy dog " * 20,
]


def test_upcycled_embedded_base_matches_dense_on_every_task_path(mote_model, dense_model):
    for task in mote_model.tasks.names:
        mote = mote_model.encode(TEXTS, task=task)
        dense = dense_model.encode(TEXTS, task=task)
        assert mote.shape == (len(TEXTS), 384)
        assert np.abs(mote - dense).max() <= 1e-5, task


def test_dense_reference_without_prefixes_matches_sentence_transformers(base_path):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(base_path), device="cpu")
    ours = MoTEModel.dense(base_path, use_prefixes=False)
    assert ours.max_seq_length == st.max_seq_length == 256
    assert np.abs(ours.encode(TEXTS) - st.encode(TEXTS, normalize_embeddings=True)).max() <= 1e-5


def test_mixed_task_batch_gives_each_row_its_single_task_vector(minilm_mote):
    tasks = ["search_query", "search_document", "clustering", "classification"]
    perturbed = minilm_mote  # experts nudged apart, so that a routing mix-up would show
    mixed = perturbed.encode(TEXTS, task=tasks, batch_size=4)
    for i, (text, task) in enumerate(zip(TEXTS, tasks)):
        alone = perturbed.encode([text], task=task)
        assert np.abs(mixed[i] - alone[0]).max() <= 1e-5


def test_perturbing_one_expert_changes_only_that_tasks_outputs(tiny_bert_dir):
    model = MoTEModel.upcycle(tiny_bert_dir, use_prefixes=False)
    before = {t: model.encode(TEXTS, task=t) for t in model.tasks.names}
    with torch.no_grad():
        for p in model.expert_parameters("clustering"):
            p.add_(torch.randn_like(p) * 0.5)
    for t in model.tasks.names:
        diff = np.abs(model.encode(TEXTS, task=t) - before[t]).max()
        if t == "clustering":
            assert diff > 1e-3
        else:
            assert diff == 0.0, t


def test_save_load_round_trip(tmp_path, tiny_bert_dir):
    model = MoTEModel.upcycle(tiny_bert_dir)
    with torch.no_grad():
        for p in model.expert_parameters("search_query"):
            p.add_(torch.randn_like(p) * 0.1)
    model.refresh_fingerprint()
    model.save_pretrained(tmp_path / "saved")
    loaded = MoTEModel.from_pretrained(tmp_path / "saved")
    for t in model.tasks.names:
        assert np.abs(model.encode(TEXTS, task=t) - loaded.encode(TEXTS, task=t)).max() <= 1e-6
    assert loaded.fingerprint == model.fingerprint
    assert loaded.mote_layer_ids == model.mote_layer_ids
    assert loaded.tasks.names == model.tasks.names
    assert loaded.max_seq_length == model.max_seq_length


def test_parameter_counts_on_embedded_base(mote_model, dense_model):
    report = mote_model.parameter_report()
    dense_total = dense_model.parameter_report()["total"]
    assert dense_total == 22_565_376  # all-MiniLM-L6-v2 without its unused pooler
    assert mote_model.mote_layer_ids == [1, 3, 5]
    ffn = report["feed_forward_params_per_expert"]
    assert ffn == 384 * 1536 + 1536 + 1536 * 384 + 384 + 2 * 384
    assert set(report["active_per_task"].values()) == {dense_total}
    assert report["total"] == dense_total + (4 - 1) * ffn * 3


def test_placement_options(tiny_bert_dir):
    assert MoTEModel.upcycle(tiny_bert_dir).mote_layer_ids == [1, 3]
    assert MoTEModel.upcycle(tiny_bert_dir, placement="all").mote_layer_ids == [0, 1, 2, 3]
    model = MoTEModel.upcycle(tiny_bert_dir, placement=[0, 2])
    assert sorted(mote_layers(model.backbone)) == [0, 2]
    with pytest.raises(ValueError, match="out of range"):
        MoTEModel.upcycle(tiny_bert_dir, placement=[7])
    with pytest.raises(ValueError, match="unknown placement"):
        MoTEModel.upcycle(tiny_bert_dir, placement="sometimes")


def test_custom_task_set_with_shared_expert(tiny_bert_dir, tmp_path):
    tasks = [
        Task("query", "query: ", 0.05, expert="retrieval"),
        Task("passage", "passage: ", 0.05, expert="retrieval"),
        Task("topic", "topic: ", 0.06),
    ]
    model = MoTEModel.upcycle(tiny_bert_dir, tasks=tasks)
    assert model.tasks.experts == ("retrieval", "topic")
    routed = next(iter(mote_layers(model.backbone).values()))
    assert isinstance(routed, TaskRoutedFeedForward) and list(routed.experts) == ["retrieval", "topic"]
    model.save_pretrained(tmp_path / "m")
    assert MoTEModel.from_pretrained(tmp_path / "m").tasks.get("passage").expert == "retrieval"


def test_prefixes_are_applied_and_can_be_switched_off(tiny_bert_dir):
    on = MoTEModel.upcycle(tiny_bert_dir)
    off = MoTEModel.upcycle(tiny_bert_dir, use_prefixes=False)
    assert on.prepare_texts(["x"], "query") == ["search_query: x"]
    assert off.prepare_texts(["x"], "passage") == ["x"]
    assert np.abs(on.encode(["x"], task="query") - off.encode(["search_query: x"], task="query")).max() <= 1e-6


def test_aliases_and_encode_query_document(tiny_bert_dir):
    model = MoTEModel.upcycle(tiny_bert_dir)
    q = model.encode_query(TEXTS)
    assert np.array_equal(q, model.encode(TEXTS, task="query"))
    d = model.encode_document(TEXTS)
    assert np.array_equal(d, model.encode(TEXTS, task="passage"))
    assert np.allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-5)
    raw = model.encode(TEXTS, normalize_embeddings=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0, atol=1e-3)
    assert model.encode("one text").shape == (model.dim,)


def test_batch_size_and_order_do_not_change_results(tiny_bert_dir):
    model = MoTEModel.upcycle(tiny_bert_dir)
    a = model.encode(TEXTS, batch_size=1)
    b = model.encode(TEXTS, batch_size=3)
    assert np.abs(a - b).max() <= 1e-5


def test_bad_input(tiny_bert_dir, tmp_path):
    model = MoTEModel.upcycle(tiny_bert_dir)
    with pytest.raises(ValueError, match="unknown task 'retrieval'.*search_query"):
        model.encode(["x"], task="retrieval")
    with pytest.raises(TypeError, match="None"):
        model.encode(None)
    with pytest.raises(TypeError, match=r"texts\[1\] must be a string, got int"):
        model.encode(["ok", 3])
    with pytest.raises(ValueError, match="batch_size"):
        model.encode(["x"], batch_size=0)
    empty = model.encode([])
    assert empty.shape == (0, model.dim) and empty.dtype == np.float32
    long = model.encode(["word " * 20_000 + "x" * 100_000])
    assert long.shape == (1, model.dim) and np.isfinite(long).all()
    with pytest.raises(FileNotFoundError, match="not a saved MoTE model.*upcycle"):
        MoTEModel.from_pretrained(tiny_bert_dir)
    with pytest.raises(ValueError, match="defined twice"):
        TaskSet([Task("a", "", 0.1), Task("b", "", 0.1, aliases=("a",))])
