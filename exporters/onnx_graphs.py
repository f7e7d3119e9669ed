"""Torch -> ONNX for one task path: the dense model of that path, with pooling and normalisation in the graph.

Pinned exporter: `torch.onnx.export(dynamo=True)` (torch.export + onnxscript) at an explicit opset, with
attention in its eager form (plain MatMul/Softmax, which the graph optimiser fuses into ORT's Attention op).
The trace uses batch 3 and sequence >= 7 (not 0 or 1, which torch.export would specialise) and both axes are
declared dynamic; each graph is then checked in onnxruntime against torch at other batch sizes and lengths.
"""

from __future__ import annotations

import copy
import logging
import os
import tempfile
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mote_rag.atomic import atomic_path
from mote_rag.model import mean_pool

OPSET = 18
EXPORTER = {
    "api": "torch.onnx.export",
    "dynamo": True,
    "attention": "eager",
    "trace_shape": "batch 3, sequence >= 7",
    "weights": "one trace per model; each path's weights applied by parameter name",
    "folding": "onnxruntime ORT_ENABLE_BASIC (hardware-independent)",
}
OUTPUT_NORMALIZED = "sentence_embedding"
OUTPUT_POOLED = "pooled_embedding"
TRACE_TEXTS = ["a short one", "a somewhat longer example sentence for tracing", "mid length text"]
CHECK_TEXTS = [
    "x",
    "",
    "a much longer sentence, with punctuation and several clauses, to exercise other lengths " * 3,
    "two words",
    "ünïcode and émojis 🙂 too",
]


class PooledPath(nn.Module):
    """One task path as a sentence encoder: backbone -> masked mean -> (L2-normalised, raw pooled)."""

    def __init__(self, dense: nn.Module):
        super().__init__()
        self.dense = dense

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        kwargs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids
        hidden = self.dense(**kwargs).last_hidden_state
        pooled = mean_pool(hidden, attention_mask)
        return nn.functional.normalize(pooled, p=2, dim=-1), pooled


def input_names(model) -> list[str]:
    """input_ids, attention_mask, and token_type_ids where the base's tokenizer produces them."""
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in getattr(model.tokenizer, "model_input_names", []):
        names.append("token_type_ids")
    return names


def path_module(model, task: str) -> PooledPath:
    """The dense model of `task`'s path in eager attention (exports to fusable MatMul/Softmax), eval mode."""
    dense = model.dense_path(task)
    dense.config = copy.deepcopy(dense.config)
    dense.config._attn_implementation = "eager"
    return PooledPath(dense).eval()


def _features(model, texts, names) -> dict[str, torch.Tensor]:
    batch = model.tokenizer(
        list(texts), padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="pt"
    )
    return {k: batch[k] for k in names}


def trace_program(model, task: str, opset: int = OPSET):
    """torch.export + ONNX translation of one path, unoptimised so initializers keep their parameter names."""
    names = input_names(model)
    features = _features(model, TRACE_TEXTS, names)
    if min(features["input_ids"].shape) < 2:
        raise RuntimeError("the export trace needs batch and sequence sizes >= 2")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        return torch.onnx.export(
            path_module(model, task),
            args=(),
            kwargs=features,
            f=None,
            input_names=names,
            output_names=[OUTPUT_NORMALIZED, OUTPUT_POOLED],
            opset_version=opset,
            dynamo=True,
            dynamic_shapes={k: {0: batch, 1: seq} for k in names},
            optimize=False,
            verbose=False,
        )


def export_paths(model, tasks: dict[str, str], out_dir: str | os.PathLike, opset: int = OPSET) -> dict[str, Path]:
    """Write one graph per entry of `tasks` (file stem -> task whose path it holds); returns stem -> path.

    All paths share one architecture, so it is traced once; each graph then receives its own path's weights by
    parameter name (every parameter must match an initializer, or this fails) and is constant-folded by
    onnxruntime's BASIC level, which is hardware-independent (so the file is portable). `check_graph` then
    compares each written graph with its torch path.
    """
    import onnxruntime as ort

    first = next(iter(tasks.values()))
    program = trace_program(model, first, opset)
    written = {}
    for stem, task in tasks.items():
        state = path_module(model, task).state_dict()
        missing = [k for k in state if k not in program.model.graph.initializers]
        if missing:
            raise RuntimeError(f"exported graph has no initializer for parameters {missing[:5]}")
        program.apply_weights(state)
        target = Path(out_dir) / f"{stem}.onnx"
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".export-") as scratch, atomic_path(target) as tmp:
            raw = Path(scratch) / "unfolded.onnx"
            program.save(str(raw), external_data=False)
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
            options.optimized_model_filepath = str(tmp)
            ort.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
        written[stem] = target
    return written


@contextmanager
def _quiet_exporter():
    """The dynamo exporter logs progress lines and torchvision notices through `logging`; keep them out."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def check_graph(model, task: str, graph: str | os.PathLike, atol: float = 1e-4) -> float:
    """Run the graph in onnxruntime on batches of other sizes and lengths than the trace; max abs error vs torch."""
    import onnxruntime as ort

    names = input_names(model)
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    module = path_module(model, task)
    worst = 0.0
    for texts in (CHECK_TEXTS, CHECK_TEXTS[:1], CHECK_TEXTS[2:4]):
        prepared = model.prepare_texts(texts, task)
        features = _features(model, prepared, names)
        with torch.no_grad():
            expected = [t.numpy() for t in module(**features)]
        got = session.run([OUTPUT_NORMALIZED, OUTPUT_POOLED], {k: v.numpy() for k, v in features.items()})
        for e, g in zip(expected, got):
            if g.shape != e.shape:
                raise RuntimeError(f"{graph}: output shape {g.shape} != torch {e.shape}")
            worst = max(worst, float(np.abs(e - g).max()))
    if worst > atol:
        raise RuntimeError(f"{graph} does not reproduce the torch path of {task!r}: max abs error {worst:.2e} > {atol}")
    return worst
