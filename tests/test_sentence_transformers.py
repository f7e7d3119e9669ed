"""A saved MoTE folder opened with sentence-transformers routes each call to the expert mote-rag uses."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TEXTS = [
    "how is diabetes treated?",
    "Insulin therapy is the main treatment for type 1 diabetes.",
    "great phone",
    "x",
    "a longer text, with punctuation, so that the batch needs padding " * 3,
]
TOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def offline(monkeypatch_module):
    monkeypatch_module.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture(scope="module")
def nudged(nudge_experts):
    from mote_rag import MoTEModel

    return nudge_experts(MoTEModel.upcycle(), seed=13)  # the embedded default


@pytest.fixture(scope="module")
def folder(nudged, tmp_path_factory):
    out = tmp_path_factory.mktemp("mote-st") / "my-mote"
    nudged.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def st_model(folder):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")


CALLS = {
    "encode_query": ("search_query", lambda st, t: st.encode_query(t)),
    "encode_document": ("search_document", lambda st, t: st.encode_document(t)),
    "task=classification": ("classification", lambda st, t: st.encode(t, task="classification")),
    "task=clustering": ("clustering", lambda st, t: st.encode(t, task="clustering")),
    "task=passage (alias)": ("search_document", lambda st, t: st.encode(t, task="passage")),
    "prompt_name=classification": ("classification", lambda st, t: st.encode(t, prompt_name="classification")),
    "no task (default)": ("search_document", lambda st, t: st.encode(t)),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_routing_parity(st_model, nudged, call):
    task, fn = CALLS[call]
    got = fn(st_model, TEXTS)
    expected = nudged.encode(TEXTS, task=task)
    assert np.abs(got - expected).max() <= TOL
    others = [t for t in nudged.tasks.names if t != task]
    # the experts are nudged apart: the wrong expert would be far off, so the check above can fail
    assert min(np.abs(nudged.encode(TEXTS, task=t) - expected).max() for t in others) > 100 * TOL


def test_unknown_task_same_error(st_model, nudged):
    with pytest.raises(ValueError) as mote_err:
        nudged.encode(TEXTS, task="nope")
    with pytest.raises(ValueError) as st_err:
        st_model.encode(TEXTS, task="nope")
    assert str(st_err.value) == str(mote_err.value)


def test_folder_layout_and_card(folder, nudged):
    modules = json.loads((folder / "modules.json").read_text())
    assert modules[0]["kwargs"] == ["task"] and modules[0]["path"] == ""
    assert [m["path"] for m in modules[1:]] == ["1_Pooling", "2_Normalize"]
    cfg = json.loads((folder / "config_sentence_transformers.json").read_text())
    assert cfg["prompts"]["query"] == "search_query: " and cfg["prompts"]["classification"] == "classification: "
    card = (folder / "README.md").read_text()
    for needed in (
        "base_model: sentence-transformers/all-MiniLM-L6-v2",
        "layers [1, 3, 5]",
        "'search_query: '",
        "search_document",
        "trust_remote_code=True",
        "## Training",
        "## Evaluation",
    ):
        assert needed in card
    assert json.loads((folder / "mote_config.json").read_text())["default_task"] == "search_document"


def test_card_carries_training_and_evaluation_figures(folder, nudged, tmp_path):
    from mote_rag.interop.model_card import render

    (tmp_path / "train_log.json").write_text(
        json.dumps(
            {
                "arm": "mote",
                "steps_done": 60,
                "finished": True,
                "config": {"batch_size": 16},
                "per_task": {"search_query": {"steps": 30, "first_loss": 2.5, "last_loss": 1.25}},
            }
        )
    )
    evaluation = {"datasets": {"scifact": {"type": "retrieval", "main_metric": "ndcg@10", "main_score": 64.512}}}
    card = render(nudged, tmp_path, evaluation)
    assert "arm: `mote`, steps: 60" in card and "search_query: 30 steps, loss 2.5000 -> 1.2500" in card
    assert "| scifact | retrieval | ndcg@10 | 64.51 |" in card


def test_refused_without_trust_remote_code(folder):
    """sentence-transformers >= 6.0 imports no module class outside its namespace without the flag."""
    from sentence_transformers import SentenceTransformer

    with pytest.raises(ValueError, match="trust_remote_code"):
        SentenceTransformer(str(folder), device="cpu")


@pytest.mark.parametrize("arm", ["ic", "plain"])
def test_ic_and_plain_prompts(base_path, tmp_path, arm):
    from sentence_transformers import SentenceTransformer

    from mote_rag import MoTEModel

    model = MoTEModel.dense(base_path, use_prefixes=arm == "ic")
    model.save_pretrained(tmp_path / arm)
    prompts = json.loads((tmp_path / arm / "config_sentence_transformers.json").read_text())["prompts"]
    assert prompts["search_query"] == ("search_query: " if arm == "ic" else "")
    assert prompts["document"] == ("search_document: " if arm == "ic" else "")
    st = SentenceTransformer(str(tmp_path / arm), trust_remote_code=True, device="cpu")
    for task, got in (
        ("search_query", st.encode_query(TEXTS)),
        ("classification", st.encode(TEXTS, task="classification")),
    ):
        assert np.abs(got - model.encode(TEXTS, task=task)).max() <= TOL
    if arm == "ic":  # the prefix matters: an explicit empty prompt (no prefix) moves the vectors
        assert np.abs(st.encode_query(TEXTS) - st.encode(TEXTS, task="query", prompt="")).max() > 100 * TOL


def test_old_folder_still_loads_and_upgrades(folder, nudged, tmp_path):
    from sentence_transformers import SentenceTransformer

    from mote_rag import MoTEModel
    from mote_rag.interop.st_folder import ST_FILES

    old = tmp_path / "old"
    shutil.copytree(folder, old)
    for name in ST_FILES:  # a folder saved before the sentence-transformers files existed
        path = old / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    cfg = json.loads((old / "mote_config.json").read_text())
    del cfg["default_task"]
    (old / "mote_config.json").write_text(json.dumps(cfg))
    model = MoTEModel.from_pretrained(old)
    assert np.abs(model.encode_query(TEXTS) - nudged.encode_query(TEXTS)).max() <= TOL
    model.save_pretrained(old)  # saving again adds the sentence-transformers files
    st = SentenceTransformer(str(old), trust_remote_code=True, device="cpu")
    assert np.abs(st.encode(TEXTS) - nudged.encode_document(TEXTS)).max() <= TOL


def test_trainer_fine_tunes_query_and_document_experts(folder, tmp_path):
    """Stretch goal: SentenceTransformerTrainer + MultipleNegativesRankingLoss + router_mapping."""
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from mote_rag import MoTEModel

    st = SentenceTransformer(str(folder), trust_remote_code=True, device="cpu")
    mote = st[0].mote
    before = {n: p.detach().clone() for n, p in mote.backbone.named_parameters()}
    data = Dataset.from_dict(
        {
            "anchor": ["what is insulin?", "what causes anemia?", "how to treat flu?"],
            "positive": ["Insulin is a hormone.", "Anemia comes from low iron.", "Rest and fluids."],
        }
    )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=3,
        max_steps=2,
        learning_rate=1e-3,
        router_mapping={"anchor": "query", "positive": "document"},
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
    )
    SentenceTransformerTrainer(model=st, args=args, train_dataset=data, loss=MultipleNegativesRankingLoss(st)).train()
    moved: dict[str, float] = {}
    for name, p in mote.backbone.named_parameters():
        group = next((e for e in mote.tasks.experts if f".experts.{e}." in name), "shared")
        moved[group] = max(moved.get(group, 0.0), float((p.detach() - before[name]).abs().max()))
    assert moved["search_query"] > 0 and moved["search_document"] > 0 and moved["shared"] > 0
    assert moved["classification"] == 0 and moved["clustering"] == 0  # no row of the batch went there
    st.save(str(tmp_path / "tuned"))
    reloaded = MoTEModel.from_pretrained(tmp_path / "tuned")
    with torch.no_grad():
        assert np.abs(reloaded.encode_query(TEXTS) - st.encode_query(TEXTS)).max() <= TOL
