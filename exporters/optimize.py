"""Offline graph optimisation of an exported graph, so a server does not redo it at every start.

Two steps: onnxscript's ORT fusions (Attention, SkipLayerNormalization, BiasGelu: onnxruntime's own
transformers optimiser does not recognise the attention pattern of dynamo-exported graphs), then
onnxruntime's offline optimiser (level EXTENDED, saved with `optimized_model_filepath`; not ALL, whose
layout changes are specific to the machine that ran it). The result stays an fp32 graph.
"""
from __future__ import annotations

import os
from pathlib import Path

from mote_rag.atomic import atomic_path


def optimize_graph(source: str | os.PathLike, target: str | os.PathLike) -> dict:
    """Write an optimised copy of `source` to `target` (atomically); return the fusion counts."""
    import onnx_ir as ir
    import onnxruntime as ort
    from onnxscript.rewriter import ort_fusions

    model = ir.load(str(source))
    model, stats = ort_fusions.optimize_for_ort(model)
    fused = {k: int(v) for k, v in stats.items() if v}
    target = Path(target)
    with atomic_path(target.with_name(target.name + ".fused")) as fused_tmp:
        ir.save(model, str(fused_tmp))
        with atomic_path(target) as tmp:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
            options.optimized_model_filepath = str(tmp)
            ort.InferenceSession(str(fused_tmp), options, providers=["CPUExecutionProvider"])
    os.unlink(target.with_name(target.name + ".fused"))
    return fused
