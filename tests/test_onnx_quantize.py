"""int8 path of the exporter on the tiny BERT: what the optimised and quantised graphs hold, smoothing is exact
in fp32, calibration input is validated. (Real-model int8 accuracy: tests/test_onnx_parity.py.)"""

from __future__ import annotations

import collections
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mote_rag.exporters.calibration import calibration_feeds, default_calibration_texts
from mote_rag.exporters.quantize import FP32_FEED_FORWARD_LAYERS, input_channel_maxima, smooth_matmul_inputs

from mote_rag import MoTEModel
from mote_rag.cli.main import main

pytestmark = pytest.mark.slow

LAYERS = 4  # tiny_bert_dir


@pytest.fixture(scope="module")
def tiny(tiny_bert_dir, nudge_experts):
    return nudge_experts(MoTEModel.upcycle(tiny_bert_dir), seed=7)


@pytest.fixture(scope="module")
def export(tiny, tmp_path_factory):
    return tiny.export_onnx(tmp_path_factory.mktemp("q"), tasks=["search_query"], optimize=True, quantize=True)


def ops(path) -> collections.Counter:
    return collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def run(path, feed) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["sentence_embedding"], feed)[0]


def test_optimised_graph_keeps_query_key_value_matmuls_unpacked(export):
    counts = ops(export / "search_query.optimized.onnx")
    # fused attention, layer norms and GELU, but q/k/v stay separate MatMuls so int8 can reach them
    assert counts["MultiHeadAttention"] == LAYERS and counts["Attention"] == 0
    assert counts["SkipLayerNormalization"] >= LAYERS and counts["BiasGelu"] == LAYERS
    assert counts["MatMul"] == 6 * LAYERS  # q, k, v, attention output, FFN in, FFN out


def test_int8_graph_quantises_every_matmul_but_the_first_ffn_outputs(export):
    manifest = json.loads((export / "manifest.json").read_text())
    settings = manifest["variants"]["int8"]["quantization"]
    from mote_rag.runtime.cpu import has_vnni

    assert settings["weight_type"] == "QInt8" and settings["per_channel"] is True
    assert settings["reduce_range"] is (not has_vnni()) and settings["exported_on_vnni"] is has_vnni()
    assert settings["smoothing"]["alpha"] == 0.7 and settings["calibration"] == "default sample"
    # one smoothing Mul per distinct MatMul input: q/k/v share theirs -> 4 per layer
    assert settings["smoothed_inputs"] == 4 * LAYERS
    counts = ops(export / "search_query.int8.onnx")
    kept = settings["fp32_node_count"]
    assert kept == FP32_FEED_FORWARD_LAYERS == 2
    assert counts["MatMulInteger"] == 6 * LAYERS - kept and counts["MatMul"] == kept
    assert counts["MultiHeadAttention"] == LAYERS


def test_smoothing_changes_no_fp32_output(tiny, export, tmp_path):
    source = export / "search_query.optimized.onnx"
    feeds = list(calibration_feeds(tiny, "search_query", input_names=["input_ids", "attention_mask", "token_type_ids"]))
    model = onnx.load(str(source))
    assert smooth_matmul_inputs(model, input_channel_maxima(model, feeds)) == 4 * LAYERS
    smoothed = tmp_path / "smoothed.onnx"
    onnx.save(model, str(smoothed))
    for feed in feeds[:3]:
        np.testing.assert_allclose(run(smoothed, feed), run(source, feed), atol=2e-6)


def test_calibration_feeds_apply_the_task_prefix_and_reject_bad_texts(tiny):
    texts = default_calibration_texts(4)
    assert len(texts) == 8 and len(texts[-1]) > 4 * len(texts[0])  # questions and long answers
    feed = next(calibration_feeds(tiny, "clustering", ["a b"]))
    assert tiny.tokenizer.decode(feed["input_ids"][0], skip_special_tokens=True) == "clustering : a b"
    assert feed["input_ids"].dtype == np.int64 and set(feed) == {"input_ids", "attention_mask"}
    for bad in ([], [None], ["ok", 3], "one string"):
        with pytest.raises(ValueError, match="calibration_texts"):
            list(calibration_feeds(tiny, "clustering", bad))


def test_bad_calibration_texts_fail_before_anything_is_written(tiny, tmp_path):
    with pytest.raises(ValueError, match="calibration_texts"):
        tiny.export_onnx(tmp_path / "out", quantize=True, calibration_texts=[])
    # export builds in a new hidden folder and swaps it in at the end: nothing at all is left behind
    assert not (tmp_path / "out").exists()
    assert not [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")]


def test_export_cli_calibration_texts(tiny, tmp_path, capsys):
    saved = tmp_path / "model"
    tiny.save_pretrained(saved)
    texts = tmp_path / "calib.txt"
    texts.write_text("first text about cells\n\nsecond text, about proteins\n")
    out = tmp_path / "onnx"
    assert (
        main(
            [
                "export",
                str(saved),
                str(out),
                "--tasks",
                "query",
                "--quantize",
                "--no-check",
                "--calibration-texts",
                str(texts),
            ]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["variants"]["int8"]["quantization"]["calibration"] == "2 texts given"
    assert not list(out.glob("*.tmp*"))  # the temporary optimised graph is gone
    capsys.readouterr()
    assert main(["export", str(saved), str(out), "--calibration-texts", str(texts)]) == 2
    assert "only applies with --quantize" in capsys.readouterr().err
    assert main(["export", str(saved), str(out), "--quantize", "--calibration-texts", str(tmp_path / "no")]) == 2
    assert "not found" in capsys.readouterr().err
    (tmp_path / "blank.txt").write_text("\n \n")
    assert main(["export", str(saved), str(out), "--quantize", "--calibration-texts", str(tmp_path / "blank.txt")]) == 2
    assert "holds no text" in capsys.readouterr().err
