"""`mote-rag analyze`: expert drift is zero for an untouched expert and grows with the change; the inter-task
similarity matrix is 1 on the diagonal and below 1 where paths differ; the CLI writes JSON and a PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mote_rag import MoTEModel
from mote_rag.analysis import expert_drift, task_similarity
from mote_rag.experts import mote_layers

pytestmark = pytest.mark.slow

TEXTS = ["what causes anaemia?", "Iron deficiency is the most common cause.", "a third text", "and a fourth"]


def test_drift_is_zero_for_untouched_experts_and_the_relative_distance_of_a_change(tiny_bert_dir):
    base = MoTEModel.dense(tiny_bert_dir)
    model = MoTEModel.upcycle(tiny_bert_dir, use_prefixes=False)
    drift = expert_drift(model, base)
    assert set(drift["layers"]) == {1, 3} and drift["trunk"] == 0.0
    assert all(v == 0.0 for row in drift["layers"].values() for v in row.values())
    expert = mote_layers(model.backbone)[3].experts["clustering"]
    with torch.no_grad():
        before = torch.cat([p.flatten() for p in expert.state_dict().values()])
        for p in expert.parameters():
            p.mul_(1.1)  # every weight 10% larger: relative distance exactly 0.1
    drift = expert_drift(model, base)
    assert drift["layers"][3]["clustering"] == pytest.approx(0.1, rel=1e-5)
    assert drift["layers"][3]["search_query"] == 0.0 and drift["layers"][1]["clustering"] == 0.0
    assert before.numel() > 0
    with torch.no_grad():
        torch.manual_seed(0)
        for p in expert.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    sim = task_similarity(model, TEXTS)
    m = np.asarray(sim["matrix"])
    names = sim["tasks"]
    assert np.allclose(np.diag(m), 1.0, atol=1e-6)
    c = names.index("clustering")
    q, d = names.index("search_query"), names.index("search_document")
    assert m[q, d] == pytest.approx(1.0, abs=1e-6)  # untouched paths compute the same function (no prefixes)
    assert m[q, c] < 0.999
    with pytest.raises(ValueError, match="no expert layers"):
        expert_drift(base, base)


def test_cli_analyze_writes_json_and_png(tiny_bert_dir, tmp_path, nudge_experts, capsys):
    from mote_rag.cli.main import main

    nudge_experts(MoTEModel.upcycle(tiny_bert_dir), seed=2).save_pretrained(tmp_path / "m")
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS))
    rc = main(
        [
            "analyze",
            str(tmp_path / "m"),
            "--base",
            str(tiny_bert_dir),
            "--texts",
            str(texts),
            "--out",
            str(tmp_path / "a"),
        ]
    )
    assert rc == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "a" / "analysis.json").read_text())
    assert all(v > 0 for row in result["expert_drift"]["layers"].values() for v in row.values())
    assert result["task_similarity"]["texts"] == 4
    assert (tmp_path / "a" / "analysis.png").read_bytes()[:4] == b"\x89PNG"
    assert "inter-task similarity" in capsys.readouterr().out
    assert main(["analyze", str(tmp_path / "nope")]) == 2
    assert main(["analyze", str(tmp_path / "m"), "--texts", str(tmp_path / "missing.txt")]) == 2
