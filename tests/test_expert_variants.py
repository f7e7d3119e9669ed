"""The study's expert variants: low-rank experts (merged on export), router-only MoTE, frozen-trunk training that
leaves untrained task paths bit-identical, post-hoc interpolation (WiSE-FT) and WAVE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mote_rag import MoTEModel
from mote_rag.experts import mote_layers, transformer_layers
from mote_rag.low_rank import LowRankLinear
from mote_rag.merging import interpolate_experts, wave
from mote_rag.training.config import parse_config
from mote_rag.training.trainer import Trainer

pytestmark = pytest.mark.slow

TEXTS = [
    "what causes anaemia?",
    "Iron deficiency is the most common cause of anaemia.",
    "a short one",
    "The quick brown fox jumps over the lazy dog " * 10,
]
RETRIEVAL_ONLY = {
    "retrieval": [{"name": "scifact", "format": "beir", "path": "${data}/retrieval/scifact", "max_examples": 32}]
}


def nudge_low_rank(model: MoTEModel, seed: int) -> MoTEModel:
    torch.manual_seed(seed)
    with torch.no_grad():
        for m in model.backbone.modules():
            if isinstance(m, LowRankLinear):
                m.lora_b.normal_(0, 0.2)
    model.refresh_fingerprint()
    return model


def test_low_rank_experts_start_as_the_dense_model_and_save_only_small_trainables(tiny_bert_dir, tmp_path):
    dense = MoTEModel.dense(tiny_bert_dir)
    model = MoTEModel.upcycle(tiny_bert_dir, placement="all", expert_rank=4)
    for task in model.tasks.names:
        assert np.array_equal(model.encode(TEXTS, task=task), dense.encode(TEXTS, task=task))
    trainable = {n for n, p in model.backbone.named_parameters() if ".experts." in n}
    assert trainable and all("lora_" in n or "LayerNorm" in n for n in trainable)  # W0 is a buffer
    nudge_low_rank(model, 1)
    model.save_pretrained(tmp_path / "m")
    loaded = MoTEModel.from_pretrained(tmp_path / "m")
    assert loaded.expert_rank == 4 and loaded.fingerprint == model.fingerprint
    for task in ("search_query", "clustering"):
        assert np.abs(loaded.encode(TEXTS, task=task) - model.encode(TEXTS, task=task)).max() <= 1e-6


def test_merged_low_rank_export_matches_torch(tiny_bert_dir, tmp_path):
    from mote_rag import OnnxEncoder

    model = nudge_low_rank(MoTEModel.upcycle(tiny_bert_dir, placement="every_other", expert_rank=4), 2)
    out = model.export_onnx(tmp_path / "onnx")
    enc = OnnxEncoder(out)
    graphs = [d for d in model.dense_path("search_query").modules() if isinstance(d, LowRankLinear)]
    assert graphs == []  # the traced path holds plain Linear layers: W0 + B @ A merged
    for task in model.tasks.names:
        a, b = enc.encode(TEXTS, task=task), model.encode(TEXTS, task=task)
        assert (a * b).sum(1).min() >= 0.99999, task
    q, d = model.encode(TEXTS[0], task="search_query"), model.encode(TEXTS[0], task="search_document")
    assert float(q @ d) < 0.9999  # the nudged paths differ, so a merge that dropped a delta would show


def test_router_only_mote_uses_no_instruction_text(tiny_bert_dir):
    model = MoTEModel.upcycle(tiny_bert_dir, use_prefixes=False)
    assert model.prepare_texts(["x"], "search_query") == ["x"]
    assert MoTEModel.upcycle(tiny_bert_dir).prepare_texts(["x"], "search_query") == ["search_query: x"]


@pytest.mark.parametrize("rank", [None, 4])
def test_frozen_trunk_retrieval_training_leaves_other_task_paths_bit_identical(tmp_path, tiny_bert_dir, data_dir, rank):
    config = parse_config(
        {
            "tasks": RETRIEVAL_ONLY,
            "base": str(tiny_bert_dir),
            "placement": "all",
            "steps": 4,
            "batch_size": 8,
            "mini_batch_size": 8,
            "learning_rate": 5e-3,
            "max_seq_length": 32,
            "experts_only": True,
            "use_prefixes": False,
            "expert_rank": rank,
            "expert_lr_multiplier": 2.0,
            "output_dir": str(tmp_path / "run"),
            "seed": 3,
        },
        data_dir=data_dir,
    )
    trainer = Trainer(config, show_progress=False)
    before = {t: trainer.model.encode(TEXTS, task=t) for t in trainer.model.tasks.names}
    trainer.train()
    after = {t: trainer.model.encode(TEXTS, task=t) for t in trainer.model.tasks.names}
    for task in ("classification", "clustering"):
        assert np.array_equal(before[task], after[task]), task
    for task in ("search_query", "search_document"):
        assert np.abs(before[task] - after[task]).max() > 1e-4, task
    assert {g["lr"] for g in trainer.optimizer.param_groups} <= {0.0}  # linear decay ends at zero
    assert {g["initial_lr"] for g in trainer.optimizer.param_groups} == {1e-2}  # 5e-3 x expert multiplier 2


def test_interpolation_alpha_zero_is_the_start_and_one_the_trained_model(tiny_bert_dir, nudge_experts):
    initial = MoTEModel.upcycle(tiny_bert_dir)
    trained = nudge_experts(MoTEModel.upcycle(tiny_bert_dir), seed=4)
    zero, one = interpolate_experts(trained, initial, 0.0), interpolate_experts(trained, initial, 1.0)
    half = interpolate_experts(trained, initial, {"query": 0.5, "clustering": 0.0})
    for task in trained.tasks.names:
        assert np.array_equal(zero.encode(TEXTS, task=task), initial.encode(TEXTS, task=task)), task
        assert np.array_equal(one.encode(TEXTS, task=task), trained.encode(TEXTS, task=task)), task
    assert np.array_equal(half.encode(TEXTS, task="clustering"), initial.encode(TEXTS, task="clustering"))
    assert np.array_equal(half.encode(TEXTS, task="classification"), trained.encode(TEXTS, task="classification"))
    mid = half.encode(TEXTS, task="search_query")
    assert not np.array_equal(mid, trained.encode(TEXTS, task="search_query"))
    assert zero.fingerprint == initial.fingerprint and one.fingerprint == trained.fingerprint
    with pytest.raises(ValueError, match="alpha"):
        interpolate_experts(trained, initial, 1.5)


def test_interpolating_low_rank_experts_scales_the_delta(tiny_bert_dir):
    initial = MoTEModel.upcycle(tiny_bert_dir, expert_rank=4)
    trained = nudge_low_rank(MoTEModel.upcycle(tiny_bert_dir, expert_rank=4), 5)
    half = interpolate_experts(trained, initial, 0.5)
    for a, b in zip(half.backbone.modules(), trained.backbone.modules()):
        if isinstance(a, LowRankLinear):
            assert torch.allclose(a.delta(), 0.5 * b.delta(), atol=1e-7)
    assert np.array_equal(
        interpolate_experts(trained, initial, 0.0).encode(TEXTS), MoTEModel.dense(tiny_bert_dir).encode(TEXTS)
    )


def test_wave_averages_the_experts_into_one_dense_block(tiny_bert_dir, nudge_experts):
    model = nudge_experts(MoTEModel.upcycle(tiny_bert_dir), seed=6)
    merged = wave(model)
    dense = MoTEModel.dense(tiny_bert_dir)
    assert merged.mote_layer_ids == [] and not mote_layers(merged.backbone)
    assert merged.backbone.state_dict().keys() == dense.backbone.state_dict().keys()
    for name, tensor in dense.backbone.state_dict().items():
        assert merged.backbone.state_dict()[name].shape == tensor.shape, name
    layer = transformer_layers(merged.backbone)[1]
    experts = mote_layers(model.backbone)[1].experts
    expected = torch.stack([e.intermediate.dense.weight for e in experts.values()]).mean(0)
    assert torch.equal(layer.intermediate.dense.weight, expected)
    one = merged.encode(TEXTS, task="search_query")
    assert np.array_equal(one, merged.encode(TEXTS, task="clustering")) is False  # prefixes still differ
    assert merged.parameter_report()["total"] == dense.parameter_report()["total"]
    with pytest.raises(ValueError, match="no expert layers"):
        wave(dense)
