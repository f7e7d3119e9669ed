"""One graph for every task path: the shared trunk stored once, each path's expert blocks behind a `path_id` input.

The per-task graphs of an export are the same graph: the same nodes, the same initializer names, and different
weights only where a path's experts differ (the exporter traces each path with one module). A process serving
several paths through the per-task graphs therefore holds the trunk once per path (onnxruntime copies every
initializer into each session, and gives each session its own arena). This graph holds it once:

- the nodes that read a weight which differs between paths are the seeds; with every node lying on a path
  between two seeds (descendants of seeds that are also ancestors of seeds) they form closed regions, one per
  MoTE layer (its feed-forward block);
- each region becomes a chain of `If` nodes on `path_id == i`, whose branches hold path i's copy of the region
  (its weights live in the main graph under suffixed names); everything else, and every weight equal across
  paths, is stored once;
- a path's output comes from the same nodes on the same weights as its own graph, and a forward pass runs one
  branch per region: the cost of one path. fp32 outputs match the path graph to ~1e-7 (onnxruntime runs a
  MatMul inside nested branches without its prepacked kernel, a different summation order); int8 ones to int8
  rounding (worst row cosine 0.999 on MiniLM), where that difference flips a quantisation step.

jina-embeddings-v3 and fastembed's multitask models serve their tasks the same way (one graph, a task input).
The per-task graphs stay the public format (`graphs` in the manifest); this file is an extra, listed under each
variant's `all_paths` entry with the order of the graphs its `path_id` selects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

PATH_INPUT = "path_id"


class NotMergeable(ValueError):
    """The per-path graphs are not the same graph up to their weights (then no all-paths graph is written)."""


def _signature(node) -> tuple:
    return (node.domain, node.op_type, tuple(node.input), tuple(node.output), node.SerializeToString())


def _digest(init) -> str:
    from onnx import numpy_helper

    array = numpy_helper.to_array(init)
    return hashlib.sha256(array.tobytes() + str((array.dtype, array.shape)).encode()).hexdigest()


def differing_initializers(models: list) -> list[str]:
    """Names of the initializers whose values differ between `models` (checked to be one graph up to weights)."""
    first = models[0].graph
    nodes = [_signature(n) for n in first.node]
    names = [i.name for i in first.initializer]
    for other in models[1:]:
        g = other.graph
        if [_signature(n) for n in g.node] != nodes or [i.name for i in g.initializer] != names:
            raise NotMergeable("the path graphs differ in their nodes or initializer names")
        if [(i.name, i.type) for i in g.input] != [(i.name, i.type) for i in first.input]:
            raise NotMergeable("the path graphs differ in their inputs")
    digests = [{i.name: _digest(i) for i in m.graph.initializer} for m in models]
    return [name for name in names if len({d[name] for d in digests}) > 1]


class _Dataflow:
    """Who makes and who reads each value of a graph, and the nodes reachable along those edges."""

    def __init__(self, graph):
        self.nodes = list(graph.node)
        self.producer = {out: i for i, n in enumerate(self.nodes) for out in n.output if out}
        self.consumers: dict[str, list[int]] = {}
        for i, n in enumerate(self.nodes):
            for name in n.input:
                self.consumers.setdefault(name, []).append(i)

    def _reach(self, start: set[int], step) -> set[int]:
        seen, todo = set(start), list(start)
        while todo:
            for j in step(todo.pop()):
                if j not in seen:
                    seen.add(j)
                    todo.append(j)
        return seen

    def _children(self, i: int) -> list[int]:
        return [j for out in self.nodes[i].output for j in self.consumers.get(out, ())]

    def _parents(self, i: int) -> list[int]:
        return [self.producer[x] for x in self.nodes[i].input if x in self.producer]

    def closed(self, group: set[int]) -> set[int]:
        """`group` with every node on a path between two of its nodes (then it can be replaced by one node)."""
        return group | (self._reach(group, self._children) & self._reach(group, self._parents))


def path_regions(graph, differ: set[str]) -> list[list[int]]:
    """Indices (graph order) of the nodes of each region: the nodes reading a `differ` weight, grouped in graph
    order, each group closed (every node on a path between two of its nodes belongs to it).

    A group ends where taking the next seed would pull in a node that reads a shared weight matrix (an initializer
    of two or more dimensions, equal in every path): such a node is trunk between two MoTE layers. Grouping only
    sets how many routes there are: every group is closed, and shared weights are read from the main graph.
    """
    flow = _Dataflow(graph)
    matrices = {init.name for init in graph.initializer if len(init.dims) >= 2 and init.name not in differ}
    trunk = {i for i, n in enumerate(graph.node) if any(x in matrices for x in n.input)}
    regions: list[set[int]] = []
    group: set[int] = set()
    for i, node in enumerate(graph.node):
        if not any(x in differ for x in node.input):
            continue
        if group and flow.closed(group | {i}) & trunk:
            regions.append(flow.closed(group))
            group = set()
        group.add(i)
    if group:
        regions.append(flow.closed(group))
    if any(a & b for a, b in zip(regions, regions[1:])):
        raise NotMergeable("two expert regions overlap")
    return [sorted(r) for r in regions]


def _value_types(model, names: list[str]) -> dict:
    """onnx TypeProtos of intermediate values, asked of onnxruntime (contrib ops defeat onnx shape inference)."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    known = {o.name for o in probe.graph.output}
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names if n not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    dtypes = {
        "tensor(float)": onnx.TensorProto.FLOAT,
        "tensor(float16)": onnx.TensorProto.FLOAT16,
        "tensor(int64)": onnx.TensorProto.INT64,
        "tensor(int32)": onnx.TensorProto.INT32,
        "tensor(uint8)": onnx.TensorProto.UINT8,
        "tensor(int8)": onnx.TensorProto.INT8,
        "tensor(bool)": onnx.TensorProto.BOOL,
    }
    out = {}
    for o in session.get_outputs():
        if o.name in names:
            if o.type not in dtypes:
                raise NotMergeable(f"value {o.name} has type {o.type}, which the all-paths graph does not handle")
            out[o.name] = dtypes[o.type]
    return out


def merge_path_graphs(models: Mapping[str, object]) -> object:
    """The all-paths graph of `models` (graph file name -> onnx ModelProto, in the order `path_id` selects).

    Raises NotMergeable when the graphs are not one graph up to their weights.
    """
    import onnx
    from onnx import helper

    protos = list(models.values())
    if len(protos) < 2:
        raise NotMergeable("an all-paths graph needs at least two path graphs")
    differ = set(differing_initializers(protos))
    graph = protos[0].graph
    regions = path_regions(graph, differ) if differ else []
    handed_on = [_region_outputs(graph, region) for region in regions]
    routes = _Routes(protos, differ, _value_types(protos[0], [o for outs in handed_on for o in outs]))

    inside = {i for region in regions for i in region}
    heads = {region[0]: r for r, region in enumerate(regions)}
    placed = [(node, list(node.input)) for node in routes.selectors()]  # (node, the outer values it reads)
    for i, node in enumerate(graph.node):
        if i in heads:
            r = heads[i]
            placed.append((routes.chain(regions[r], handed_on[r], r, 0, handed_on[r]), routes.reads(regions[r])))
        elif i not in inside:
            placed.append((node, list(node.input)))
    kept = [init for init in graph.initializer if init.name not in differ] + routes.weights
    ready = {i.name for i in graph.input} | {PATH_INPUT} | {i.name for i in kept} | {""}
    nodes = _stable_topological(placed, ready)
    made = {o for n in nodes for o in n.output}
    merged = onnx.ModelProto()
    merged.CopyFrom(protos[0])
    merged.graph.CopyFrom(
        helper.make_graph(
            nodes,
            graph.name or "all_paths",
            [*graph.input, helper.make_tensor_value_info(PATH_INPUT, onnx.TensorProto.INT64, [])],
            list(graph.output),
            kept,
            doc_string=graph.doc_string,
            value_info=[v for v in graph.value_info if v.name in made],
        )
    )
    return merged


def _region_outputs(graph, region: list[int]) -> list[str]:
    """The values a region hands on: read by a node outside it, or graph outputs."""
    inside = set(region)
    read_outside = {x for j, n in enumerate(graph.node) if j not in inside for x in n.input}
    read_outside |= {o.name for o in graph.output}
    return [o for i in region for o in graph.node[i].output if o and o in read_outside]


class _Routes:
    """Builds the `If` chains: path k's copy of a region, with every name it makes suffixed so that names stay
    unique across branches, and its weights kept in the main graph (`weights`), where onnxruntime frees the
    serialised copy after loading; a subgraph's own initializers stay resident twice."""

    def __init__(self, protos: list, differ: set[str], types: dict):
        self.protos, self.differ, self.types = protos, differ, types
        self.inits = [{i.name: i for i in p.graph.initializer} for p in protos]
        self.weights: list = []
        self.last = len(protos) - 1

    def selectors(self) -> list:
        """`path_id == k` for every path but the last (which takes the final else)."""
        from onnx import helper

        consts = [
            helper.make_node("Constant", [], [f"{PATH_INPUT}/{k}"], name=f"{PATH_INPUT}/const{k}", value_int=k)
            for k in range(self.last)
        ]
        tests = [
            helper.make_node(
                "Equal", [PATH_INPUT, f"{PATH_INPUT}/{k}"], [f"{PATH_INPUT}/is{k}"], name=f"{PATH_INPUT}/eq{k}"
            )
            for k in range(self.last)
        ]
        return consts + tests

    def reads(self, region: list[int]) -> list[str]:
        """The outer values a region's chain reads (for placing it after their producers)."""
        nodes = [self.protos[0].graph.node[i] for i in region]
        local = {o for n in nodes for o in n.output}
        reads = {x for n in nodes for x in n.input if x not in local and x not in self.differ}
        return sorted(reads | {f"{PATH_INPUT}/is{k}" for k in range(self.last)})

    def branch(self, region: list[int], outs: list[str], k: int, r: int):
        import onnx
        from onnx import helper

        tag = f"@p{k}r{r}"
        local = {o for i in region for o in self.protos[k].graph.node[i].output if o}
        nodes = []
        for i in region:
            node = onnx.NodeProto()
            node.CopyFrom(self.protos[k].graph.node[i])
            node.name = f"{node.name}{tag}"
            for j, x in enumerate(node.input):
                if x in local or x in self.differ:
                    node.input[j] = f"{x}{tag}"
            for j, x in enumerate(node.output):
                if x:
                    node.output[j] = f"{x}{tag}"
            nodes.append(node)
        for name in sorted({x for n in nodes for x in n.input if x.endswith(tag) and x[: -len(tag)] in self.differ}):
            weight = onnx.TensorProto()
            weight.CopyFrom(self.inits[k][name[: -len(tag)]])
            weight.name = name
            self.weights.append(weight)
        outputs = [helper.make_tensor_value_info(f"{o}{tag}", self.types[o], None) for o in outs]
        return helper.make_graph(nodes, f"path{k}_region{r}", [], outputs)

    def chain(self, region: list[int], outs: list[str], r: int, k: int, bound: list[str]):
        """If path_id == k: path k's branch, else the chain of the paths after k (after the last but one: the
        last path's branch). `bound`: the names the If node's outputs take."""
        from onnx import helper

        then = self.branch(region, outs, k, r)
        if k + 1 == self.last:
            other = self.branch(region, outs, self.last, r)
        else:
            tag = f"@c{k + 1}r{r}"
            inner = self.chain(region, outs, r, k + 1, [f"{o}{tag}" for o in outs])
            values = [helper.make_tensor_value_info(f"{o}{tag}", self.types[o], None) for o in outs]
            other = helper.make_graph([inner], f"chain{k + 1}_region{r}", [], values)
        return helper.make_node(
            "If", [f"{PATH_INPUT}/is{k}"], bound, name=f"route/region{r}/path{k}", then_branch=then, else_branch=other
        )


def _stable_topological(placed: list, ready: set[str]) -> list:
    """The nodes in their given order, each moved only as far as needed to follow the values it reads."""
    ready, pending, out = set(ready), list(placed), []
    while pending:
        for idx, (node, reads) in enumerate(pending):
            if all(x in ready for x in reads):
                out.append(node)
                ready.update(node.output)
                del pending[idx]
                break
        else:
            node, reads = pending[0]
            raise NotMergeable(f"node {node.name} reads {[x for x in reads if x not in ready][:3]}, made by no node")
    return out
