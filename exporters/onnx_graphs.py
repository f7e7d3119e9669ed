"""Torch -> ONNX for one task path: the dense model of that path, with pooling and normalisation in the graph.

Pinned exporter: `torch.onnx.export(dynamo=True)` (torch.export + onnxscript) at an explicit opset, with
attention in its eager form (plain MatMul/Softmax, which the graph optimiser fuses into ORT's Attention op).
The trace uses batch 3 and sequence 7 (not 0 or 1, which torch.export would specialise) and both axes are
declared dynamic; the graph is then checked in onnxruntime against torch at other batch sizes and lengths.
"""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mote_rag.atomic import atomic_path
from mote_rag.model import mean_pool

OPSET = 18
EXPORTER = {"api": "torch.onnx.export", "dynamo": True, "attention": "eager"}
OUTPUT_NORMALIZED = "sentence_embedding"
OUTPUT_POOLED = "pooled_embedding"
TRACE_TEXTS = ["a short one", "a somewhat longer example sentence for tracing", "mid length text"]
CHECK_TEXTS = ["x", "", "a much longer sentence, with punctuation and several clauses, to exercise other lengths " * 3,
               "two words", "ünïcode and émojis 🙂 too"]


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
    batch = model.tokenizer(list(texts), padding=True, truncation=True, max_length=model.max_seq_length,
                            return_tensors="pt")
    return {k: batch[k] for k in names}


def export_path(model, task: str, target: str | os.PathLike, opset: int = OPSET) -> Path:
    """Write the ONNX graph of `task`'s path to `target` (atomically) and return the path."""
    names = input_names(model)
    module = path_module(model, task)
    features = _features(model, TRACE_TEXTS, names)
    if min(features["input_ids"].shape) < 2:
        raise RuntimeError("the export trace needs batch and sequence sizes >= 2")
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    dynamic = {k: {0: batch, 1: seq} for k in names}
    target = Path(target)
    with atomic_path(target) as tmp, torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, args=(), kwargs=features, f=None, input_names=names,
            output_names=[OUTPUT_NORMALIZED, OUTPUT_POOLED], opset_version=opset, dynamo=True,
            dynamic_shapes=dynamic, external_data=False, optimize=True, verbose=False,
        )
        program.save(str(tmp), external_data=False)
    return target


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
