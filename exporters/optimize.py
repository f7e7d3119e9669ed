"""Offline graph optimisation of an exported graph, so a server does not redo it at every start.

Two steps: onnxscript's ORT fusions (MultiHeadAttention, SkipLayerNormalization, BiasGelu: onnxruntime's own
transformers optimiser does not recognise the attention pattern of dynamo-exported graphs), then
onnxruntime's offline optimiser (level EXTENDED, saved with `optimized_model_filepath`; not ALL, whose
layout changes are specific to the machine that ran it). The result stays an fp32 graph.

The query, key and value projections stay three MatMuls in front of MultiHeadAttention instead of being
packed into one `Attention` node: fp32 speed is the same (132 texts/s either way on 600 real texts, MiniLM-L6,
2 threads), and int8 quantisation can then reach them (onnxruntime's QAttention has no attention-bias input,
so a packed Attention node would stay fp32 or lose the padding mask). See exporters.quantize.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mote_rag.atomic import atomic_path


@contextlib.contextmanager
def _without_qkv_packing():
    """Run onnxscript's ORT fusions without the last step that packs Q/K/V MatMuls into `Attention`.

    onnxscript (pinned in constraints.txt) exposes no switch for it; tests/test_onnx_quantize.py checks the
    optimised graph's operators, so a change in onnxscript fails there instead of silently.
    """
    from onnxscript.rewriter.ort_fusions import _core

    packing = _core.fuse_attention
    _core.fuse_attention = lambda model, debug=False: 0  # noqa: ARG005 - stands in for fuse_attention's signature
    try:
        yield
    finally:
        _core.fuse_attention = packing


def optimize_graph(source: str | os.PathLike, target: str | os.PathLike) -> dict:
    """Write an optimised copy of `source` to `target` (atomically); return the fusion counts."""
    import onnx_ir as ir
    import onnxruntime as ort
    from onnxscript.rewriter import ort_fusions

    model = ir.load(str(source))
    with _without_qkv_packing():
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
