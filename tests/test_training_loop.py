"""TA-CL trainer on a tiny BERT over real data subsets: loss goes down per task, gradients reach only the
batch's experts, GradCache equals one full-batch pass, resume equals an uninterrupted run, CLI end to end."""

from __future__ import annotations

import json

import pytest
import torch

from mote_rag import MoTEModel
from mote_rag.training.config import parse_config
from mote_rag.training.data import load_training_data
from mote_rag.training.loss import cached_contrastive_step, info_nce
from mote_rag.training.trainer import Trainer, latest_checkpoint

pytestmark = pytest.mark.slow

TINY_MIX = {
    "retrieval": [{"name": "scifact", "format": "beir", "path": "${data}/retrieval/scifact", "max_examples": 40}],
    "classification": [
        {"name": "sick", "format": "pairs", "path": "nli/sick_train_pairs.jsonl", "max_examples": 24},
        {"name": "snli", "format": "triplets", "path": "nli/snli_triplets.jsonl", "max_examples": 24},
    ],
    "clustering": [
        {"name": "trec", "format": "labelled", "path": "classification/trec/train.jsonl", "max_examples": 40}
    ],
}


def tiny_config(tmp_path, tiny_bert_dir, data_dir, **kw):
    raw = {
        "tasks": TINY_MIX,
        "base": str(tiny_bert_dir),
        "placement": "all",
        "steps": 30,
        "batch_size": 8,
        "mini_batch_size": 5,
        "learning_rate": 2e-3,
        "warmup_ratio": 0.1,
        "schedule": "round_robin",
        "max_seq_length": 32,
        "output_dir": str(tmp_path / "run"),
        "log_every": 5,
        "seed": 5,
        **kw,
    }
    return parse_config(raw, data_dir=data_dir)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, tiny_bert_dir, data_dir):
    config = tiny_config(tmp_path_factory.mktemp("d"), tiny_bert_dir, data_dir)
    return load_training_data(config)


def _first_batches(trainer):
    out = {}
    while len(out) < 3:
        b = trainer.sampler.next_batch()
        out.setdefault(b.task, b)
    trainer.sampler.reset()
    return out


def test_short_run_lowers_each_tasks_loss_and_saves(tmp_path, tiny_bert_dir, data_dir, tiny_data):
    config = tiny_config(tmp_path, tiny_bert_dir, data_dir)
    trainer = Trainer(config, data=tiny_data, show_progress=False)
    probe = _first_batches(trainer)
    trainer.model.backbone.eval()
    before = {t: trainer.loss_for_batch(b, backward=False) for t, b in probe.items()}
    log = trainer.train()
    trainer.model.backbone.eval()
    after = {t: trainer.loss_for_batch(b, backward=False) for t, b in probe.items()}
    for task in probe:
        assert after[task] < 0.8 * before[task], (task, before[task], after[task])
    assert log["steps_done"] == 30 and log["finished"]
    assert {e["task"] for e in log["entries"]} == {"retrieval", "classification", "clustering"}
    saved = MoTEModel.from_pretrained(config.output_dir)
    assert saved.fingerprint == trainer.model.fingerprint == log["fingerprint"]
    assert saved.max_seq_length == MoTEModel.upcycle(tiny_bert_dir).max_seq_length  # training length not saved
    on_disk = json.loads((tmp_path / "run" / "train_log.json").read_text())
    assert on_disk["temperatures"] == {"retrieval": 0.03, "classification": 0.03, "clustering": 0.06}


@pytest.mark.parametrize("experts_only", [False, True])
def test_gradients_reach_only_the_experts_of_the_batchs_task(
    tmp_path, tiny_bert_dir, data_dir, tiny_data, experts_only
):
    config = tiny_config(tmp_path, tiny_bert_dir, data_dir, experts_only=experts_only)
    trainer = Trainer(config, data=tiny_data, show_progress=False)
    model = trainer.model
    expected = {
        "retrieval": {"search_query", "search_document"},
        "classification": {"classification"},
        "clustering": {"clustering"},
    }
    shared = [p for n, p in model.backbone.named_parameters() if ".experts." not in n]
    for task, batch in _first_batches(trainer).items():
        before = {e: [p.detach().clone() for p in model.expert_parameters(e)] for e in model.tasks.experts}
        result = trainer.train_step(batch)
        assert result.task == task
        for expert in model.tasks.experts:
            grads = [p.grad for p in model.expert_parameters(expert)]
            moved = any(not torch.equal(a, p) for a, p in zip(before[expert], model.expert_parameters(expert)))
            if expert in expected[task]:
                assert all(g is not None and g.abs().sum() > 0 for g in grads), (task, expert)
                assert moved, (task, expert)
            else:
                assert all(g is None for g in grads), (task, expert)
                assert not moved, (task, expert)
        if experts_only:
            assert all(not p.requires_grad and p.grad is None for p in shared)
        else:
            assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in shared)


def test_grad_cache_equals_full_batch_and_replays_dropout(tiny_bert_dir):
    model = MoTEModel.upcycle(tiny_bert_dir, placement="all")
    anchors = [f"question number {i} about topic {i * 3}" for i in range(7)]
    docs = [f"a passage that answers question {i} on topic {i * 3} at some length" for i in range(7)]
    groups = [(anchors, ["search_query"] * 7), (docs, ["search_document"] * 7)]

    def loss_fn(a, c):
        return info_nce(a, c, 0.05, symmetric=True)

    def grads(mini):
        model.backbone.zero_grad(set_to_none=True)
        loss = cached_contrastive_step(model.embed_batch, groups, loss_fn, mini)
        return loss, [p.grad.clone() if p.grad is not None else None for p in model.backbone.parameters()]

    model.backbone.eval()  # no dropout: cached and full-batch gradients must agree
    full_loss, full = grads(64)
    cached_loss, cached = grads(3)
    assert abs(full_loss - cached_loss) < 1e-5
    for a, b in zip(full, cached):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    # with dropout on, the no-grad pass and the re-run pass must see the same masks
    model.backbone.train()
    seen = []

    def recording_embed(texts, tasks):
        out = model.embed_batch(texts, tasks)
        seen.append(out.detach().clone())
        return out

    cached_contrastive_step(recording_embed, groups, loss_fn, 3)
    half = len(seen) // 2
    assert half == 6  # 3 + 3 chunks, each run twice
    for first, second in zip(seen[:half], seen[half:]):
        assert torch.equal(first, second)
    assert not torch.equal(seen[0], model.embed_batch(anchors[:3], ["search_query"] * 3).detach())  # dropout is live


def test_label_mask_removes_false_negatives():
    a = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    c = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    labels = ["x", "x", "y"]
    masked = info_nce(a, c, 0.1, labels, labels + ["x"])
    # by hand: anchor 0 keeps candidates 0 (its positive) and 2; anchor 1 keeps 1 and 2; anchor 2 keeps all
    s = a @ c.T / 0.1
    keep = torch.tensor([[1, 0, 1, 0], [0, 1, 1, 0], [1, 1, 1, 1]], dtype=torch.bool)
    expected = torch.stack([-(s[i, i] - torch.logsumexp(s[i][keep[i]], 0)) for i in range(3)]).mean()
    assert torch.allclose(masked, expected, atol=1e-6)
    assert not torch.allclose(info_nce(a, c, 0.1), expected)


def test_resume_gives_the_same_next_step_loss(tmp_path, tiny_bert_dir, data_dir, tiny_data):
    straight = Trainer(
        tiny_config(tmp_path / "a", tiny_bert_dir, data_dir, steps=6, checkpoint_every=3),
        data=tiny_data,
        show_progress=False,
    )
    straight.train()
    losses = [e["loss"] for e in straight.history]
    ckpt = latest_checkpoint(straight.output_dir)
    assert ckpt is not None and ckpt.name == "step-0000003"
    assert not list(ckpt.glob("*.pt")) and not list(ckpt.glob("*.bin")) and not list(ckpt.glob("*.pkl"))
    resumed = Trainer(
        tiny_config(tmp_path / "b", tiny_bert_dir, data_dir, steps=6, checkpoint_every=3),
        data=tiny_data,
        show_progress=False,
    )
    resumed.train(resume=ckpt)
    assert [e["loss"] for e in resumed.history[:3]] == losses[:3]  # carried over from the checkpoint
    assert resumed.history[3]["loss"] == pytest.approx(losses[3], abs=1e-6)
    assert [e["loss"] for e in resumed.history[3:]] == pytest.approx(losses[3:], abs=1e-5)
    for (n, p), q in zip(straight.model.backbone.named_parameters(), resumed.model.backbone.parameters()):
        assert torch.allclose(p, q, atol=1e-6), n
    other = Trainer(
        tiny_config(tmp_path / "c", tiny_bert_dir, data_dir, steps=6, learning_rate=1e-3),
        data=tiny_data,
        show_progress=False,
    )
    with pytest.raises(ValueError, match="another recipe"):
        other.load_checkpoint(ckpt)


def test_arms_share_the_recipe_and_differ_only_in_the_model(tmp_path, tiny_bert_dir, data_dir, tiny_data):
    config = tiny_config(tmp_path, tiny_bert_dir, data_dir, placement="every_other")
    arms = {arm: Trainer(config.with_arm(arm), data=tiny_data, show_progress=False) for arm in ("mote", "ic", "plain")}
    assert arms["mote"].model.mote_layer_ids == [1, 3] and arms["mote"].model.use_prefixes
    assert arms["ic"].model.mote_layer_ids == [] and arms["ic"].model.use_prefixes
    assert arms["plain"].model.mote_layer_ids == [] and not arms["plain"].model.use_prefixes
    batches = {arm: [t.sampler.next_batch() for _ in range(5)] for arm, t in arms.items()}
    assert batches["mote"] == batches["ic"] == batches["plain"]
    recipes = {
        arm: {k: v for k, v in t.config.to_dict().items() if k not in ("arm", "experts_only")}
        for arm, t in arms.items()
    }
    assert recipes["mote"] == recipes["ic"] == recipes["plain"]


def test_cli_train_runs_and_resumes(tmp_path, tiny_bert_dir, data_dir, capsys):
    from mote_rag.cli.main import main

    recipe = tmp_path / "recipe.json"
    recipe.write_text(
        json.dumps(
            {
                "tasks": TINY_MIX,
                "data_dir": str(data_dir),
                "steps": 4,
                "batch_size": 4,
                "checkpoint_every": 2,
                "max_seq_length": 32,
                "schedule": "round_robin",
            }
        )
    )
    out = tmp_path / "model"
    code = main(
        [
            "train",
            "--config",
            str(recipe),
            "--base",
            str(tiny_bert_dir),
            "--output-dir",
            str(out),
            "--no-progress",
            "--arm",
            "ic",
        ]
    )
    assert code == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "arm ic: 4 steps" in text and "saved ic model" in text
    model = MoTEModel.from_pretrained(out)
    assert model.mote_layer_ids == [] and model.use_prefixes
    log = json.loads((out / "train_log.json").read_text())
    assert log["arm"] == "ic" and log["steps_done"] == 4
    code = main(
        [
            "train",
            "--config",
            str(recipe),
            "--base",
            str(tiny_bert_dir),
            "--output-dir",
            str(out),
            "--no-progress",
            "--arm",
            "ic",
            "--steps",
            "5",
            "--resume",
        ]
    )
    # a different step count is a different recipe: refused with a clear message, exit 2
    assert code == 2 and "another recipe" in capsys.readouterr().err
