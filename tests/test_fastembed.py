"""Every exported task graph runs in fastembed (no download) and gives OnnxEncoder's vectors; the helper is
torch-free."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from mote_rag.runtime.fastembed_models import FastEmbedPair, FastEmbedTask, fastembed_task_model
from mote_rag.runtime.onnx_encoder import OnnxEncoder

pytestmark = pytest.mark.slow

# varied lengths so that OnnxEncoder (length-sorted batches) and fastembed (batches in order) pad differently
TEXTS = [("word " * n).strip() for n in (0, 1, 3, 40, 2, 7, 300, 5, 11, 1, 60, 4)] + [
    "how do I reset my card?",
    "ünïcode, émojis 🙂 and punctuation!?",
]
MIN_COSINE = 0.99999


@pytest.fixture(scope="module", autouse=True)
def offline():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture
def export(tiny_onnx_dir):
    """The session's export of `tiny_mote` (five tasks on four experts, `similarity` sharing the classification
    graph; fp32 and int8); read-only."""
    return tiny_onnx_dir


def worst_cosine(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(((a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))).min())


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_every_task_graph_matches_onnx_encoder(export, variant):
    enc = OnnxEncoder(export, variant=variant)
    # int8 graphs quantise activations per batch (dynamic ranges), so a row's vector depends on its batch-mates:
    # one batch for both sides there; fp32 is compared across different batchings
    batch = 4 if variant == "fp32" else len(TEXTS)
    graphs = set()
    for task in [*enc.tasks.names, "sts", "passage"]:
        fe = fastembed_task_model(export, task, variant=variant, threads=1)
        graphs.add(fe.graph)
        got = fe.embed(TEXTS, batch_size=batch)
        expected = enc.encode(TEXTS, task=task, batch_size=batch)
        assert worst_cosine(got, expected) >= MIN_COSINE, task
        others = [t for t in enc.tasks.names if enc.manifest.graph_name(t, variant) != fe.graph]
        assert (
            max(worst_cosine(got, enc.encode(TEXTS, task=o, batch_size=batch)) for o in others) < 0.999
        )  # the check can fail
    assert len(graphs) == 4  # every expert's graph was opened


def test_pair_helper(export):
    pair = FastEmbedPair(export, threads=1)
    enc = OnnxEncoder(export)
    assert worst_cosine(pair.query_embed(TEXTS), enc.encode_query(TEXTS)) >= MIN_COSINE
    assert worst_cosine(pair.passage_embed(TEXTS), enc.encode_document(TEXTS)) >= MIN_COSINE
    assert pair.query.prefix == "search_query: " and pair.document.graph == "search_document.onnx"
    single = pair.query_embed("how do I reset my card?")
    assert len(single) == 1 and single[0].shape == (enc.dim,) and single[0].dtype == np.float32


def test_manifest_lists_the_fastembed_files(export):
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["fastembed"]["files"] == ["tokenizer_config.json", "config.json"]
    for name in manifest["fastembed"]["files"]:
        assert name in manifest["files"]
    cfg = json.loads((export / "tokenizer_config.json").read_text())
    assert cfg["model_max_length"] == manifest["max_seq_length"]


def test_tampered_tokenizer_config_is_refused(export, tmp_path):
    copy = shutil.copytree(export, tmp_path / "copy")
    cfg = json.loads((copy / "tokenizer_config.json").read_text())
    cfg["model_max_length"] = 8
    (copy / "tokenizer_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="integrity check"):
        FastEmbedTask(copy, "query")
    with pytest.raises(ValueError, match="unknown task"):
        FastEmbedTask(export, "nope")


TORCH_FREE = """
import json, sys
from mote_rag.runtime.fastembed_models import FastEmbedPair
pair = FastEmbedPair(sys.argv[1], threads=1)
vectors = [v.tolist() for v in pair.query_embed(json.loads(sys.argv[2]))]
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if m in sys.modules)
print(json.dumps({"vectors": vectors, "heavy": heavy}))
"""


def test_fastembed_helper_imports_no_torch(export):
    result = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(export), json.dumps(TEXTS[:4])],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["heavy"] == []
    assert worst_cosine(payload["vectors"], OnnxEncoder(export).encode_query(TEXTS[:4])) >= MIN_COSINE
