"""Task experts: upcycle a transformer layer's feed-forward block into one copy per task, routed by sequence.

BERT-family layers (BERT, MiniLM, RoBERTa, XLM-R) compute `output(intermediate(h), h)`, where `output` holds
the second dense layer *and* the LayerNorm. We keep the layer module (attention untouched) and swap its pair
(`intermediate`, `output`) for (`Identity`, `TaskRoutedFeedForward`): the routed block receives the attention
output and sends each sequence through the expert of its task. Each expert is an exact deep copy of the
dense pair, so a freshly upcycled model computes exactly what the dense model computes.

The task of each row travels in a context variable set by the model's forward: transformers' layer API has
no slot for a per-row routing tensor, and a context variable is safe across threads.
"""

from __future__ import annotations

import contextvars
import copy
from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn

_ROUTE: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("mote_route", default=None)


@contextmanager
def routing(expert_ids: torch.Tensor):
    """Route the sequences of the next forward pass: `expert_ids[i]` is the expert of row i."""
    token = _ROUTE.set(expert_ids)
    try:
        yield
    finally:
        _ROUTE.reset(token)


class ExpertFeedForward(nn.Module):
    """One expert: a copy of a layer's dense feed-forward block (intermediate + output dense + LayerNorm)."""

    def __init__(self, intermediate: nn.Module, output: nn.Module):
        super().__init__()
        self.intermediate = intermediate
        self.output = output

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(hidden), hidden)


class TaskRoutedFeedForward(nn.Module):
    """Holds one expert per task and sends each whole sequence to its task's expert."""

    def __init__(self, experts: dict[str, ExpertFeedForward]):
        super().__init__()
        self.experts = nn.ModuleDict(experts)
        self.expert_names = list(experts)

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:  # noqa: ARG002 - HF *Output.forward signature
        # `hidden_states` is the Identity-passed attention output, equal to `input_tensor`.
        route = _ROUTE.get()
        if route is None:
            raise RuntimeError("a MoTE layer ran without a task route: call the model through MoTEModel")
        if route.shape[0] != input_tensor.shape[0]:
            raise RuntimeError(f"route has {route.shape[0]} rows for a batch of {input_tensor.shape[0]}")
        first = int(route[0])
        if bool((route == first).all()):  # the usual case: a single-task batch, no gather/scatter
            return self.experts[self.expert_names[first]](input_tensor)
        out = torch.empty_like(input_tensor)
        for expert_id in torch.unique(route).tolist():
            rows = (route == expert_id).nonzero(as_tuple=True)[0]
            out[rows] = self.experts[self.expert_names[expert_id]](input_tensor[rows])
        return out


def resolve_placement(placement: str | Sequence[int], num_layers: int) -> list[int]:
    """Layer indices that get experts: "every_other" (odd layers, as in the paper), "all", or a list."""
    if isinstance(placement, str):
        if placement in ("every_other", "alternate"):
            return list(range(1, num_layers, 2))
        if placement in ("all", "every"):
            return list(range(num_layers))
        raise ValueError(f"unknown placement {placement!r}: use 'every_other', 'all' or a list of layer indices")
    layers = sorted(set(int(i) for i in placement))
    if not layers:
        raise ValueError("placement lists no layer")
    bad = [i for i in layers if not 0 <= i < num_layers]
    if bad:
        raise ValueError(f"placement layers {bad} out of range for a {num_layers}-layer model")
    return layers


def transformer_layers(backbone: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of a BERT-family backbone."""
    encoder = getattr(backbone, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(
            f"{type(backbone).__name__} is not a BERT-family encoder (no encoder.layer list); "
            "MoTE upcycling supports BERT, MiniLM, RoBERTa and XLM-R"
        )
    return layers


def upcycle_layers(
    backbone: nn.Module, layer_ids: Sequence[int], expert_names: Sequence[str], rank: int | None = None
) -> None:
    """Replace the feed-forward block of each listed layer by identical per-task experts (in place).

    With `rank`, each expert is the dense block (frozen) plus a trainable rank-r delta (mote_rag.low_rank).
    """
    from .low_rank import add_low_rank

    layers = transformer_layers(backbone)
    for i in layer_ids:
        layer = layers[i]
        if isinstance(layer.output, TaskRoutedFeedForward):
            raise ValueError(f"layer {i} is already a MoTE layer")
        if not (hasattr(layer, "intermediate") and hasattr(layer, "output")):
            raise TypeError(f"layer {i} ({type(layer).__name__}) has no intermediate/output feed-forward pair")
        experts = {
            name: ExpertFeedForward(copy.deepcopy(layer.intermediate), copy.deepcopy(layer.output))
            for name in expert_names
        }
        if rank is not None:
            for expert in experts.values():
                add_low_rank(expert, rank)
        layer.intermediate = nn.Identity()
        layer.output = TaskRoutedFeedForward(experts)


def copy_expert(backbone: nn.Module, source: str, name: str) -> None:
    """Give every MoTE layer a new expert `name`, an exact copy of `source` (full or low-rank, as `source` is).

    Appended last, so the ids of the existing experts do not move; no other expert is touched."""
    layers = mote_layers(backbone)
    if not layers:
        raise ValueError("this model has no expert layers (a dense model): it cannot hold collection experts")
    for i, routed in layers.items():
        if name in routed.experts:
            raise ValueError(f"layer {i} already has an expert named {name!r}")
        if source not in routed.experts:
            raise ValueError(f"layer {i} has no expert {source!r} to copy (experts: {routed.expert_names})")
    for routed in layers.values():
        routed.experts[name] = copy.deepcopy(routed.experts[source])
        routed.expert_names.append(name)


def drop_expert(backbone: nn.Module, name: str) -> None:
    """Remove expert `name` from every MoTE layer; the experts after it move up one id."""
    for routed in mote_layers(backbone).values():
        if name in routed.experts:
            del routed.experts[name]
            routed.expert_names.remove(name)


def mote_layers(backbone: nn.Module) -> dict[int, TaskRoutedFeedForward]:
    return {
        i: layer.output
        for i, layer in enumerate(transformer_layers(backbone))
        if isinstance(layer.output, TaskRoutedFeedForward)
    }


def dense_path(backbone: nn.Module, expert: str) -> nn.Module:
    """A plain dense copy of the backbone where every MoTE layer is replaced by `expert`'s weights.

    This is what one task path computes; it is what the ONNX exporter traces, so each exported graph holds
    only that task's expert and is the size of the dense model. Low-rank experts are merged (W0 + B @ A).
    """
    from .low_rank import merge_low_rank

    dense = copy.deepcopy(backbone)
    for layer in transformer_layers(dense):
        if isinstance(layer.output, TaskRoutedFeedForward):
            chosen = merge_low_rank(layer.output.experts[expert])
            layer.intermediate = chosen.intermediate
            layer.output = chosen.output
    return dense
