"""The model's settings are declared once (mote_rag.model_config): the config file, the constructor, the
fingerprints and the ONNX manifest read the same declaration, and the manifest records the default task, so an
export made with `--tasks` that leaves out search_document still does a plain `encode(texts)`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mote_rag import MoTEModel
from mote_rag.model_config import CONFIG_KEYS, INIT_KEYS, MANIFEST_KEYS, MoTEConfig
from mote_rag.runtime.manifest import Manifest
from mote_rag.runtime.onnx_encoder import OnnxEncoder
from mote_rag.schema import SchemaError
from mote_rag.tasks import DEFAULT_TASK, DEFAULT_TASKS, Task, TaskSet

pytestmark = pytest.mark.slow

TEXTS = ["how do I reset my card?", "Vitamin D deficiency and fractures", "x"]


@pytest.fixture(scope="module")
def model(tiny_bert_dir):
    return MoTEModel.upcycle(tiny_bert_dir, placement=[1, 3])


def test_the_config_is_one_declaration_read_back_by_the_constructor(model):
    settings = model.get_config_dict()
    assert tuple(settings) == CONFIG_KEYS
    cfg = model.config()
    assert cfg.settings() == settings and set(INIT_KEYS) <= set(CONFIG_KEYS) and set(MANIFEST_KEYS) <= set(CONFIG_KEYS)
    again = MoTEModel(model.backbone, model.tokenizer, **cfg.model_kwargs())  # cls(**config)
    assert again.get_config_dict() == settings and again.fingerprint == model.fingerprint
    assert MoTEConfig.from_json(cfg.to_json()) == cfg
    # a setting that changes the output changes the fingerprint; the default task changes no vector
    other = MoTEModel(model.backbone, model.tokenizer, **{**cfg.model_kwargs(), "max_seq_length": 16})
    assert other.fingerprint != model.fingerprint
    clustering = MoTEModel(model.backbone, model.tokenizer, **{**cfg.model_kwargs(), "default_task": "clustering"})
    assert clustering.fingerprint == model.fingerprint and clustering.default_task == "clustering"


def test_one_default_task_rule_and_one_task_serialisation():
    assert TaskSet().default_task() == DEFAULT_TASK
    assert TaskSet(DEFAULT_TASKS[:1]).default_task() == "search_query"  # no search_document: the first task
    assert TaskSet().default_task("queries") == "search_query"  # a declared one, by alias
    assert TaskSet(DEFAULT_TASKS[:1]).default_task("search_document") == "search_query"  # declared but absent
    for task in DEFAULT_TASKS:
        assert Task.from_dict(task.to_dict()) == task
    entry = {"prefix": "p: ", "graphs": {"fp32": "a.onnx"}, "path_fingerprint": "f"}  # a manifest's task entry
    assert Task.from_dict({**entry, "name": "t"}) == Task("t", "p: ")  # one temperature default


def test_export_without_search_document_still_encodes_plain_texts(model, tmp_path, capsys):
    from mote_rag.cli.main import main

    saved = tmp_path / "model"
    model.save_pretrained(saved)
    out = tmp_path / "onnx"
    assert main(["export", str(saved), str(out), "--tasks", "query,clustering", "--no-check"]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["tasks"]) == ["clustering", "search_query"]
    assert manifest["default_task"] == "search_query"  # the model's search_document is not in the export
    assert {k: manifest[k] for k in MANIFEST_KEYS if k != "default_task"} == {
        k: v for k, v in model.get_config_dict().items() if k in MANIFEST_KEYS and k != "default_task"
    }
    enc = OnnxEncoder(out)
    plain = enc.encode(TEXTS)
    assert plain.shape == (len(TEXTS), model.dim)
    assert np.abs(plain - enc.encode(TEXTS, task="search_query")).max() == 0
    assert np.abs(plain - model.encode(TEXTS, task="search_query")).max() < 1e-4


def test_the_manifest_records_the_models_own_default_task(model, tmp_path):
    declared = MoTEModel(
        model.backbone, model.tokenizer, **{**model.config().model_kwargs(), "default_task": "clustering"}
    )
    out = declared.export_onnx(tmp_path / "onnx", check=False)
    enc = OnnxEncoder(out)
    assert Manifest.read(out).default_task == "clustering"
    assert np.abs(enc.encode(TEXTS) - enc.encode(TEXTS, task="clustering")).max() == 0
    assert np.abs(enc.encode(TEXTS) - enc.encode(TEXTS, task="search_document")).max() > 1e-3
    # a restricted encoder without the declared default falls back to the rule over its own tasks
    assert np.abs(OnnxEncoder(out, tasks=["document"]).encode(TEXTS) - enc.encode_document(TEXTS)).max() == 0

    path = out / "manifest.json"
    data = json.loads(path.read_text())
    data["default_task"] = "nope"
    path.write_text(json.dumps(data))
    with pytest.raises(SchemaError, match="default_task"):
        Manifest.read(out)
    del data["default_task"]  # an export made before default_task was recorded still opens
    path.write_text(json.dumps(data))
    assert Manifest.read(out).default_task == "search_document"
