"""int8 dynamic quantisation of a graph (onnxruntime.quantization.quantize_dynamic), with activation smoothing.

Dynamic quantisation gives each MatMul input one scale per tensor, computed at run time. BERT activations have
a few channels far larger than the rest, so that one scale leaves the ordinary channels a handful of levels.
Before quantising, each MatMul input is divided per channel by s = a^alpha / w^(1 - alpha) (a: the channel's
largest activation over calibration texts, w: the largest weight in that input row) and the weight rows are
multiplied by s: the same product in fp32, but flatter activations (SmoothQuant, Xiao et al. 2023). The
division is one Mul per distinct input, shared by the query/key/value projections.

The source is the offline-optimised graph (exporters.optimize: MultiHeadAttention, SkipLayerNormalization,
BiasGelu, with the query/key/value MatMuls left unpacked so they are quantised too). Recipes measured on
MiniLM-L6, 2 threads, AVX-512 VNNI (scripts kept out of the package; figures in the issue 5 closing note).
Speed on 600 real texts (SciFact abstracts and claims, Banking77, AG News). Worst row cosine to fp32: A over
200 of those texts without prefix, B over the parity test's 200 texts with each of three task prefixes.

    recipe (s8/u8 = signed/unsigned int8 weights, per channel)           texts/s   worst A   worst B
    fp32 exported graph / optimised graph                               115 / 132    1.0       1.0
    u8, unfused graph, every FFN output fp32 (the first recipe)           141        0.987
    s8, packed QKV (Attention node, stays fp32), FFN out of layers 0-1    195        0.994     0.992
    s8, QKV packed into QAttention (loses the padding mask)               241        0.39
    8-bit MatMulNBits, block 32 (weight-only, blockwise activations)      125        0.9994
    s8, every MatMul                                                      236        0.988
    s8, every MatMul but layer 0's FFN output                             227        0.992     0.989
    smoothed alpha 0.5, every MatMul but layer 0's FFN output             218                  0.977
    smoothed alpha 0.7, every MatMul but layer 0's FFN output             217                  0.993  <- chosen
    smoothed alpha 0.8 / 0.9, same                                      215 / 220              0.993 / 0.992
    smoothed alpha 0.7, every MatMul                                      224                  0.984

Signed weights use the u8s8 VNNI kernels; unsigned ones fall back to slower u8u8 kernels. Weights are quantised
to 7 bits (`reduce_range`) when the exporting CPU has no VNNI (mote_rag.runtime.cpu): without VNNI (AVX2 only,
e.g. AMD Zen 3) the u8s8 kernels add pairs of u8 x s8 products in int16 and saturate, which took the worst row of
the parity test to 0.93; with 7-bit weights a pair cannot overflow, so that graph is accurate on every x86 CPU.
On a VNNI CPU the weights are 8-bit: there 7 bits cost 1.1 nDCG@10 on the parity test's SciFact slice (an AVX-512
VNNI Xeon); such a graph is meant for VNNI CPUs, and OnnxEncoder warns when it runs on one without VNNI. With
7-bit weights the first two layers' FFN
output projections stay fp32 (worst row 0.989 with one, on AVX2). The first layer's
feed-forward output projection (its GELU outputs carry the largest outliers) stays fp32 at a 3% cost. What
is left after int8 is mostly fp32: on the chosen graph onnxruntime's profiler puts 26% of the time in
MultiHeadAttention, 20% in SkipLayerNormalization and 32% in the int8 MatMuls.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mote_rag.atomic import atomic_path

logger = logging.getLogger(__name__)
PRE_PROCESS_KEY, PRE_PROCESS_VALUE = "onnx.quant.pre_process", "onnxruntime.quant"  # quant_utils' marker

ALPHA = 0.7
FP32_FEED_FORWARD_LAYERS = 2  # the first layers whose FFN output projection stays fp32 (see the table above)
SETTINGS = {
    "method": "onnxruntime.quantization.quantize_dynamic",
    "source": "optimized graph",
    "weight_type": "QInt8",
    "per_channel": True,
    "op_types": ["MatMul"],
    "smoothing": {"method": "SmoothQuant-style per-channel input scaling", "alpha": ALPHA},
    "fp32_nodes": "feed-forward output projection (intermediate -> hidden) of the first two layers",
}


def feed_forward_output_nodes(model, intermediate_size: int, hidden_size: int) -> list[str]:
    """MatMul nodes whose constant weight maps intermediate -> hidden (FFN output projections), in graph order."""
    if intermediate_size == hidden_size:  # the shape would not single out the FFN output
        return []
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and any(shapes.get(i) == (intermediate_size, hidden_size) for i in n.input)
    ]


def _weight_matmuls(model) -> list:
    """MatMul nodes whose second input is a constant 2-D weight: the ones dynamic quantisation rewrites."""
    shapes = {init.name: tuple(init.dims) for init in model.graph.initializer}
    return [n for n in model.graph.node if n.op_type == "MatMul" and len(shapes.get(n.input[1], ())) == 2]


def input_channel_maxima(model, feeds: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Largest |activation| per channel of every weight MatMul's input (`model` an onnx ModelProto, left
    unchanged), over the real (unpadded) tokens of `feeds`."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    inputs = sorted({n.input[0] for n in _weight_matmuls(probe)})
    known = {o.name for o in probe.graph.output}
    for name in inputs:
        if name not in known:
            probe.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor visible
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    maxima: dict[str, np.ndarray] = {}
    for feed in feeds:
        real = feed["attention_mask"].astype(bool)
        for name, value in zip(inputs, session.run(inputs, feed)):
            peak = np.abs(value[real]).max(axis=0)
            maxima[name] = peak if name not in maxima else np.maximum(maxima[name], peak)
    if not maxima:
        raise ValueError("no calibration batches: int8 smoothing needs at least one batch of texts")
    return maxima


def pooled_maxima(per_path: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Channel maxima taken over every path's calibration (each with its own prefix): one smoothing for all.

    The paths of an export share their trunk; smoothing each path's trunk by its own maxima would give every path
    different int8 trunk weights, which then cannot be stored once (exporters.all_paths). Pooled, the trunk's
    int8 weights are the same in every path graph, and each path is calibrated on texts of every task.
    """
    pooled: dict[str, np.ndarray] = {}
    for maxima in per_path:
        for name, peak in maxima.items():
            pooled[name] = peak if name not in pooled else np.maximum(pooled[name], peak)
    return pooled


def smooth_matmul_inputs(model, maxima: dict[str, np.ndarray], alpha: float = ALPHA) -> int:
    """Rescale every weight MatMul's input channels in `model` (an onnx ModelProto, edited in place).

    x @ W == (x / s) @ (s[:, None] * W) exactly in real arithmetic; returns the number of Mul nodes added.
    """
    from onnx import helper, numpy_helper

    inits = {init.name: init for init in model.graph.initializer}
    users: dict[str, list] = {}
    for node in _weight_matmuls(model):
        users.setdefault(node.input[0], []).append(node)
    muls = {}
    for name, nodes in users.items():
        weights = [numpy_helper.to_array(inits[n.input[1]]) for n in nodes]
        if len({id(inits[n.input[1]]) for n in nodes}) != len(nodes):
            continue  # a weight shared between inputs cannot take two scalings
        w_peak = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
        scale = np.maximum(maxima[name], 1e-5) ** alpha / np.maximum(w_peak, 1e-5) ** (1 - alpha)
        scale = scale.astype(np.float32)
        for node, w in zip(nodes, weights):
            inits[node.input[1]].CopyFrom(
                numpy_helper.from_array((w * scale[:, None]).astype(np.float32), node.input[1])
            )
        model.graph.initializer.append(numpy_helper.from_array(1.0 / scale, f"{name}/smooth_inverse_scale"))
        muls[name] = helper.make_node(
            "Mul", [name, f"{name}/smooth_inverse_scale"], [f"{name}/smoothed"], name=f"{name}/smooth"
        )
    nodes = list(model.graph.node)
    del model.graph.node[:]
    placed = set()
    for node in nodes:
        if node.op_type == "MatMul" and node.input[0] in muls:
            source = node.input[0]
            if source not in placed:  # the Mul goes right before the first consumer: still topological
                model.graph.node.append(muls[source])
                placed.add(source)
            node.input[0] = f"{source}/smoothed"
        model.graph.node.append(node)
    return len(muls)


def quantize_graph(
    source: str | os.PathLike,
    target: str | os.PathLike,
    intermediate_size: int,
    hidden_size: int,
    calibration: Iterable[dict[str, np.ndarray]] | None = None,
    maxima: dict[str, np.ndarray] | None = None,
) -> dict:
    """Write the int8 version of the optimised graph `source` to `target` (atomically); return the settings.

    `calibration`: input feeds (token ids of real texts, with the task's prefix) for the smoothing scales, or
    `maxima`: their channel maxima already taken (pooled over every path of an export: `pooled_maxima`).
    Weights are 8-bit on a CPU with VNNI, 7-bit (`reduce_range`) on one without (see the module docstring).
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from mote_rag.runtime.cpu import has_vnni

    vnni = has_vnni()
    reduce_range = not vnni

    model = onnx.load(str(source))
    if (calibration is None) == (maxima is None):
        raise ValueError("quantize_graph takes calibration feeds or precomputed maxima, exactly one of them")
    if maxima is None:
        maxima = input_channel_maxima(model, calibration)
    smoothed = smooth_matmul_inputs(model, maxima)
    keep = feed_forward_output_nodes(model, intermediate_size, hidden_size)[:FP32_FEED_FORWARD_LAYERS]
    target = Path(target)
    # The source is onnxruntime's offline-optimised graph, which is what quantisation pre-processing produces; say
    # so in the metadata quantize_dynamic reads, instead of it logging a hint to run it through the root logger.
    onnx.helper.set_model_props(
        model, {**{p.key: p.value for p in model.metadata_props}, PRE_PROCESS_KEY: PRE_PROCESS_VALUE}
    )
    with atomic_path(target) as tmp:
        quantize_dynamic(
            model,
            str(tmp),
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=keep,
            reduce_range=reduce_range,
        )
    logger.debug(
        "quantised %s -> %s (%d fp32 feed-forward outputs, smoothed inputs: %s)", source, target, len(keep), smoothed
    )
    return {
        **SETTINGS,
        "reduce_range": reduce_range,
        "exported_on_vnni": vnni,
        "fp32_node_count": len(keep),
        "smoothed_inputs": smoothed,
    }
