"""ONNX export + OnnxEncoder logic on the tiny BERT: graph layout, parity at many shapes, laziness, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest

from mote_rag import MoTEModel
from mote_rag.runtime.manifest import FORMAT_VERSION, sha256_file
from mote_rag.runtime.onnx_encoder import OnnxEncoder

pytestmark = pytest.mark.slow

TEXTS = [
    "",
    "x",
    "how do I reset my card?",
    "two words",
    "Vitamin D deficiency is associated with an increased risk of fractures in older adults.",
    "ünïcode, émojis 🙂 and punctuation!?",
    "The quick brown fox jumps over the lazy dog " * 40,
]


@pytest.fixture
def tiny_export(tiny_onnx_dir):
    """The session's export of `tiny_mote` (five tasks on four experts, fp32, optimised and int8); read-only."""
    return tiny_onnx_dir


@pytest.fixture
def export_copy(tiny_export, tmp_path):
    return shutil.copytree(tiny_export, tmp_path / "copy")


def cos_rows(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_manifest_lists_one_graph_per_expert_and_the_sha256_of_every_file(tiny_mote, tiny_export):
    manifest = json.loads((tiny_export / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["fingerprint"] == tiny_mote.fingerprint
    assert manifest["dim"] == 32 and manifest["max_seq_length"] == tiny_mote.max_seq_length
    assert manifest["opset"] == 18 and manifest["exporter"]["dynamo"] is True
    assert manifest["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    graphs = {t: e["graphs"]["fp32"] for t, e in manifest["tasks"].items()}
    assert graphs["similarity"] == graphs["classification"] == "classification.onnx"  # shared expert, shared file
    assert len(set(graphs.values())) == 4
    assert manifest["tasks"]["search_query"]["prefix"] == "search_query: "
    on_disk = {p.name for p in tiny_export.iterdir()}
    assert on_disk == set(manifest["files"]) | {"manifest.json"}
    for name, digest in manifest["files"].items():
        assert sha256_file(tiny_export / name) == digest


def test_each_graph_holds_only_its_expert_and_is_dense_sized(tiny_mote, tiny_export):
    dense_params = sum(p.numel() for p in tiny_mote.dense_path("search_query").parameters())
    total_params = sum(p.numel() for p in tiny_mote.backbone.parameters())
    for name in ("search_query.onnx", "clustering.onnx"):
        graph = onnx.load(str(tiny_export / name))
        stored = sum(int(np.prod(init.dims)) for init in graph.graph.initializer)
        # the dense count up to a few folded shape constants; the three other experts are not in the file
        assert abs(stored - dense_params) <= 200, (name, stored, dense_params)
        assert total_params - dense_params == 3 * sum(p.numel() for p in tiny_mote.expert_parameters("clustering"))
        assert [i.name for i in graph.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
        for graph_input in graph.graph.input:  # batch and sequence axes are symbolic, not traced sizes
            dims = graph_input.type.tensor_type.shape.dim
            assert [d.dim_param != "" for d in dims] == [True, True]
        assert [o.name for o in graph.graph.output] == ["sentence_embedding", "pooled_embedding"]


@pytest.mark.parametrize("variant", ["fp32", "optimized"])
def test_every_task_path_matches_torch_at_many_batch_sizes_and_lengths(tiny_mote, tiny_export, variant):
    enc = OnnxEncoder(tiny_export, variant=variant)
    texts = TEXTS * 3  # 21 texts: batches of 1, 2, 5 and 16 with ragged lengths, one truncated
    for task in enc.tasks.names:
        expected = tiny_mote.encode(texts, task=task, batch_size=16)
        for batch_size in (1, 2, 5, 16):
            got = enc.encode(texts, task=task, batch_size=batch_size)
            assert got.dtype == np.float32 and got.shape == (len(texts), 32)
            assert cos_rows(got, expected).min() >= 0.99999, (task, batch_size)
            assert np.abs(got - expected).max() <= 1e-5, (task, batch_size)
    # paths really differ, so a routing mix-up would show
    q, d = enc.encode(TEXTS[2], task="query"), enc.encode(TEXTS[2], task="document")
    assert float(q @ d) < 0.9999


def test_mixed_tasks_unnormalised_output_and_single_string(tiny_mote, tiny_export):
    enc = OnnxEncoder(tiny_export)
    tasks = ["search_query", "document", "clustering", "sts", "classification", "query", "clustering"]
    got = enc.encode(TEXTS, task=tasks, batch_size=3)
    assert np.abs(got - tiny_mote.encode(TEXTS, task=tasks)).max() <= 1e-5
    raw = enc.encode(TEXTS, task="clustering", normalize_embeddings=False)
    assert np.abs(raw - tiny_mote.encode(TEXTS, task="clustering", normalize_embeddings=False)).max() <= 1e-4
    assert np.abs(np.linalg.norm(raw, axis=1) - 1).max() > 1e-3  # really not normalised
    single = enc.encode_query("how do I reset my card?")
    assert single.shape == (32,)
    assert np.abs(single - tiny_mote.encode_query("how do I reset my card?")).max() <= 1e-5
    assert np.abs(enc.encode_document([TEXTS[4]]) - tiny_mote.encode_document([TEXTS[4]])).max() <= 1e-5


def test_fingerprints_and_variants(tiny_mote, tiny_export):
    assert OnnxEncoder(tiny_export).fingerprint == tiny_mote.fingerprint
    assert OnnxEncoder(tiny_export, variant="optimized").fingerprint == tiny_mote.fingerprint
    int8 = OnnxEncoder(tiny_export, variant="int8", threads=1)
    assert int8.fingerprint == tiny_mote.fingerprint + "-int8"
    out = int8.encode(TEXTS, task="query")
    assert out.shape == (len(TEXTS), 32) and np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert int8.loaded_graphs == ["all_paths.int8.onnx"]  # every path served: the one shared-trunk graph
    assert OnnxEncoder(tiny_export).variant == "optimized"  # the export has it: the default
    with pytest.raises(ValueError, match="variant 'fp16'"):
        OnnxEncoder(tiny_export, variant="fp16")
    with pytest.raises(ValueError, match="threads"):
        OnnxEncoder(tiny_export, threads=0)


def test_graphs_load_lazily_and_only_for_the_tasks_asked(tiny_export):
    enc = OnnxEncoder(tiny_export, variant="fp32", shared_trunk=False)
    assert enc.loaded_graphs == []
    enc.encode_query(["a"])
    assert enc.loaded_graphs == ["search_query.onnx"]
    enc.encode(["a"], task="sts")
    assert enc.loaded_graphs == ["classification.onnx", "search_query.onnx"]
    only = OnnxEncoder(tiny_export, tasks=["query"])
    assert only.tasks.names == ["search_query"] and only.dim == 32
    with pytest.raises(ValueError, match="unknown task 'search_document'"):
        only.encode_document(["a"])
    with pytest.raises(ValueError, match="unknown task 'nope'"):
        OnnxEncoder(tiny_export, tasks=["nope"])


@pytest.mark.parametrize("variant", ["fp32", "optimized", "int8"])
def test_every_path_served_by_one_shared_trunk_graph(tiny_mote, tiny_export, variant):
    shared = OnnxEncoder(tiny_export, variant=variant)
    apart = OnnxEncoder(tiny_export, variant=variant, shared_trunk=False)
    assert shared.shared_trunk and not apart.shared_trunk
    tasks = ["search_query", "document", "clustering", "sts", "classification", "query", "clustering"]
    got, per_path = shared.encode(TEXTS, task=tasks, batch_size=3), apart.encode(TEXTS, task=tasks, batch_size=3)
    assert shared.loaded_graphs == [f"all_paths{'' if variant == 'fp32' else '.' + variant}.onnx"]
    assert len(apart.loaded_graphs) == 4  # one session per expert path
    cos = (got * per_path).sum(1)
    if variant == "int8":  # nested branches run the fp32-kept MatMul unpacked: int8 rounding may then differ
        assert cos.min() >= 0.995, cos
    else:
        assert np.abs(got - per_path).max() <= 1e-6
        assert np.abs(got - tiny_mote.encode(TEXTS, task=tasks)).max() <= 1e-5
    one = OnnxEncoder(tiny_export, variant=variant, tasks=["query"])
    assert not one.shared_trunk  # one path: its own graph, the smallest footprint
    with pytest.raises(ValueError, match="shared_trunk must be"):
        OnnxEncoder(tiny_export, shared_trunk="yes")


def test_the_shared_trunk_graph_stores_each_weight_once(tiny_export):
    """The all-paths graph holds one path's weights plus the other paths' experts, nothing more (a trunk copied
    per path would fail this); each trunk initializer appears once."""
    manifest = json.loads((tiny_export / "manifest.json").read_text())
    entry = manifest["variants"]["fp32"]["all_paths"]
    paths = [onnx.load(str(tiny_export / g)) for g in entry["graphs"]]
    merged = onnx.load(str(tiny_export / entry["file"]))

    def sizes(model):
        return {i.name: onnx.numpy_helper.to_array(i).nbytes for i in model.graph.initializer}

    one = sizes(paths[0])
    expert = {n for n in one if len({onnx.numpy_helper.to_array(i).tobytes() for p in paths
                                     for i in p.graph.initializer if i.name == n}) > 1}  # fmt: skip
    assert expert  # the nudged experts differ
    stored = sizes(merged)
    assert sum(stored.values()) == sum(one.values()) + (len(paths) - 1) * sum(one[n] for n in expert)
    assert all(n in stored for n in one if n not in expert)  # the trunk under its own name, once


def test_an_export_of_one_path_has_no_shared_trunk_graph(tiny_mote, tmp_path):
    out = tiny_mote.export_onnx(tmp_path / "one", tasks=["query"], check=False)
    assert "all_paths" not in json.loads((out / "manifest.json").read_text())["variants"]["fp32"]
    assert not OnnxEncoder(out).shared_trunk
    with pytest.raises(ValueError, match="shared_trunk=True, but .* has no all-paths graph"):
        OnnxEncoder(out, shared_trunk=True)


def test_bad_texts_and_tasks_give_the_torch_encoders_errors(tiny_mote, tiny_export):
    enc = OnnxEncoder(tiny_export)
    for bad, err in ((None, TypeError), ([None], TypeError), (["ok", 3], TypeError), (b"bytes", TypeError)):
        with pytest.raises(err):
            enc.encode(bad)
        with pytest.raises(err):
            tiny_mote.encode(bad)
    with pytest.raises(ValueError, match="unknown task 'summarize'"):
        enc.encode(["a"], task="summarize")
    with pytest.raises(ValueError, match="2 tasks"):
        enc.encode(["a"], task=["query", "query"])
    with pytest.raises(ValueError, match="batch_size"):
        enc.encode(["a"], batch_size=0)
    empty = enc.encode([])
    assert empty.shape == (0, 32) and empty.dtype == np.float32
    assert tiny_mote.encode([]).shape == empty.shape
    blank = enc.encode("", task="query")
    assert blank.shape == (32,) and np.abs(blank - tiny_mote.encode("", task="query")).max() <= 1e-5


def test_missing_tampered_and_unknown_version_exports_are_refused(export_copy):
    (export_copy / "clustering.onnx").unlink()
    enc = OnnxEncoder(export_copy, variant="fp32", shared_trunk=False)  # lazy: other tasks still serve
    assert enc.encode_query(["a"]).shape == (1, 32)
    with pytest.raises(FileNotFoundError, match="clustering.onnx is missing"):
        enc.encode(["a"], task="clustering")

    graph = export_copy / "search_document.onnx"
    graph.write_bytes(graph.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="search_document.onnx failed its integrity check"):
        OnnxEncoder(export_copy, variant="fp32", shared_trunk=False).encode_document(["a"])
    shared = export_copy / "all_paths.optimized.onnx"
    shared.write_bytes(shared.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ValueError, match="all_paths.optimized.onnx failed its integrity check"):
        OnnxEncoder(export_copy).encode_document(["a"])
    with pytest.raises(ValueError, match="integrity"):
        OnnxEncoder(export_copy, tasks=["document"], variant="fp32", preload=True)

    tok = export_copy / "tokenizer.json"
    tok.write_text(tok.read_text().replace("[UNK]", "[UNX]"))
    with pytest.raises(ValueError, match="tokenizer.json failed its integrity check"):
        OnnxEncoder(export_copy)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(format_version=99), "unknown format_version 99"),
        (lambda m: m.update(format="something-else"), "not a mote-rag ONNX manifest"),
        (lambda m: m.pop("files"), "lacks required keys"),
        (lambda m: m["tasks"]["clustering"]["graphs"].update(fp32="../evil.onnx"), "not a plain file name"),
        (lambda m: m["tasks"]["clustering"]["graphs"].update(fp32="other.onnx"), "has no sha256"),
    ],
)
def test_malformed_manifests_are_refused(export_copy, edit, message):
    path = export_copy / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=message):
        OnnxEncoder(export_copy)


def test_not_an_export_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        OnnxEncoder(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="manifest.json not found"):
        OnnxEncoder(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        OnnxEncoder(tmp_path)


TORCH_FREE = """
import json, sys
sys.modules["torch"] = None  # any `import torch` now raises ImportError
from mote_rag import OnnxEncoder
enc = OnnxEncoder(sys.argv[1], threads=1)
vectors = enc.encode(json.loads(sys.argv[2]), task="query")
heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers") if sys.modules.get(m) is not None)
print(json.dumps({"vectors": vectors.tolist(), "heavy": heavy, "fingerprint": enc.fingerprint}))
"""


def test_runtime_encoder_works_where_importing_torch_raises(tiny_mote, tiny_export):
    texts = TEXTS[:5]
    result = subprocess.run(
        [sys.executable, "-c", TORCH_FREE, str(tiny_export), json.dumps(texts)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["heavy"] == []
    assert payload["fingerprint"] == tiny_mote.fingerprint
    assert np.abs(np.array(payload["vectors"]) - tiny_mote.encode(texts, task="query")).max() <= 1e-5


def test_cli_export_of_a_dense_checkpoint_writes_one_shared_graph(tiny_bert_dir, tiny_export, tmp_path, capsys):
    from mote_rag.cli.main import main

    out = tmp_path / "onnx"
    assert main(["export", str(tiny_bert_dir), str(out), "--tasks", "query,clustering", "--quantize"]) == 0
    printed = capsys.readouterr().out
    assert "exported 2 task(s)" in printed and "dense.int8.onnx" in printed
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["architecture"] == "dense"
    assert {e["graphs"]["fp32"] for e in manifest["tasks"].values()} == {"dense.onnx"}  # one file for all tasks
    assert sorted(p.name for p in out.glob("*.onnx")) == ["dense.int8.onnx", "dense.onnx"]
    dense = MoTEModel.dense(tiny_bert_dir)
    enc = OnnxEncoder(out)
    assert enc.tasks.names == ["search_query", "clustering"] and enc.fingerprint == dense.fingerprint
    assert np.abs(enc.encode(TEXTS, task="clustering") - dense.encode(TEXTS, task="clustering")).max() <= 1e-5

    assert main(["export", str(tiny_export), str(tmp_path / "again")]) == 2
    assert "already an ONNX export" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing"), str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(tiny_bert_dir), str(tmp_path / "y"), "--tasks", "nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert not (tmp_path / "y" / "manifest.json").exists()
