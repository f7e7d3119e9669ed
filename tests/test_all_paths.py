"""exporters.all_paths on small hand-built graphs (torch-free): the trunk stored once, each path's output exact."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from mote_rag.exporters.all_paths import PATH_INPUT, NotMergeable, merge_path_graphs, path_regions
from onnx import TensorProto, helper, numpy_helper

D, H = 8, 32  # hidden and feed-forward sizes: weights above the 1024-element floor count as trunk when shared


def path_graph(experts: dict[int, np.ndarray], trunk: list[np.ndarray]) -> onnx.ModelProto:
    """x -> [trunk MatMul -> (expert MatMul+Relu+MatMul, residual)] x len(trunk) -> Tanh; `experts[i]` holds
    layer i's expert weights (a layer without one has a shared, trunk feed-forward block)."""
    nodes, inits, h = [], [], "x"
    for i, w in enumerate(trunk):
        inits.append(numpy_helper.from_array(w, f"trunk{i}"))
        nodes.append(helper.make_node("MatMul", [h, f"trunk{i}"], [f"a{i}"], name=f"attn{i}"))
        up, down = experts[i]
        inits += [numpy_helper.from_array(up, f"up{i}"), numpy_helper.from_array(down, f"down{i}")]
        nodes += [
            helper.make_node("MatMul", [f"a{i}", f"up{i}"], [f"u{i}"], name=f"up{i}"),
            helper.make_node("Relu", [f"u{i}"], [f"r{i}"], name=f"relu{i}"),
            helper.make_node("MatMul", [f"r{i}", f"down{i}"], [f"d{i}"], name=f"down{i}"),
            helper.make_node("Add", [f"a{i}", f"d{i}"], [f"h{i}"], name=f"res{i}"),
        ]
        h = f"h{i}"
    nodes.append(helper.make_node("Tanh", [h], ["y"], name="out"))
    graph = helper.make_graph(
        nodes,
        "path",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", D])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", D])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)


def three_paths(layers: int = 4, expert_layers=(1, 3)):
    rng = np.random.default_rng(0)
    trunk = [rng.standard_normal((D, D)).astype(np.float32) * 0.5 for _ in range(layers)]
    shared = {i: (rng.standard_normal((D, H)).astype(np.float32), rng.standard_normal((H, D)).astype(np.float32))
              for i in range(layers)}  # fmt: skip
    models = {}
    for p in range(3):
        experts = dict(shared)
        for i in expert_layers:  # this path's own expert in the MoTE layers
            experts[i] = tuple(w + rng.standard_normal(w.shape).astype(np.float32) * 0.1 for w in shared[i])
        models[f"path{p}.onnx"] = path_graph(experts, trunk)
    return models


def run(model, feeds):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["y"], feeds)[0]


def test_each_path_of_the_merged_graph_is_its_own_graph():
    models = three_paths()
    merged = merge_path_graphs(models)
    x = np.random.default_rng(1).standard_normal((5, D)).astype(np.float32)
    outs = [run(m, {"x": x}) for m in models.values()]
    assert min(np.abs(a - b).max() for a in outs for b in outs if a is not b) > 1e-3  # the paths really differ
    for k, expected in enumerate(outs):
        got = run(merged, {"x": x, PATH_INPUT: np.array(k, dtype=np.int64)})
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_the_trunk_is_stored_once_and_each_expert_once_per_path():
    models = three_paths(layers=4, expert_layers=(1, 3))
    merged = merge_path_graphs(models)
    one = sum(numpy_helper.to_array(i).nbytes for i in models["path0.onnx"].graph.initializer)
    expert = 2 * 2 * D * H * 4  # two MoTE layers, two weights each, float32
    stored = sum(numpy_helper.to_array(i).nbytes for i in merged.graph.initializer)
    assert stored == one + 2 * expert  # one path's graph + the two other paths' experts: nothing else doubled
    names = [i.name for i in merged.graph.initializer]
    assert sum(n.startswith("trunk") for n in names) == 4 and len(set(names)) == len(names)
    routes = [n for n in merged.graph.node if n.op_type == "If"]
    assert len(routes) == 2  # one route per MoTE layer, trunk layers 0 and 2 left outside
    assert {n.name for n in merged.graph.node} >= {"attn0", "attn1", "attn2", "attn3", "up0", "up2"}


def test_regions_stop_at_the_shared_trunk():
    models = three_paths(layers=3, expert_layers=(0, 2))
    graph = next(iter(models.values())).graph
    regions = path_regions(graph, {"up0", "down0", "up2", "down2"})
    names = [[graph.node[i].name for i in r] for r in regions]
    assert names == [["up0", "relu0", "down0"], ["up2", "relu2", "down2"]]  # the residual Add reads no expert


def test_graphs_that_differ_in_more_than_weights_are_refused():
    models = three_paths()
    odd = onnx.ModelProto()
    odd.CopyFrom(models["path2.onnx"])
    odd.graph.node[-1].op_type = "Sigmoid"
    with pytest.raises(NotMergeable, match="differ in their nodes"):
        merge_path_graphs({**models, "path2.onnx": odd})
    with pytest.raises(NotMergeable, match="at least two"):
        merge_path_graphs({"path0.onnx": models["path0.onnx"]})
