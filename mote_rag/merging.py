"""Post-hoc weight-space operations on a trained MoTE model: no training, a new model out.

- `interpolate_experts`: WiSE-FT for experts, theta = theta0 + alpha * (theta - theta0) per task, where theta0 is
  the expert's initial weights (the dense block it was upcycled from). alpha = 0 gives the initial expert back,
  alpha = 1 the trained one; alpha is meant to be chosen per task on dev splits (benchmarks/train_compare.py).
- `wave`: the paper's WAVE, the experts of each layer averaged into one dense block: one model for all tasks,
  which shows what routing is worth.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch

from .experts import mote_layers, transformer_layers
from .low_rank import merge_low_rank
from .model import MoTEModel


def _alphas(model: MoTEModel, alpha: float | Mapping[str, float]) -> dict[str, float]:
    """alpha per expert, from one number or a {task or alias: alpha} mapping (unnamed experts keep 1.0)."""
    if isinstance(alpha, Mapping):
        out = {e: 1.0 for e in model.tasks.experts}
        for task, value in alpha.items():
            out[model.tasks.get(task).expert] = value
    else:
        out = {e: alpha for e in model.tasks.experts}
    for expert, value in out.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"interpolation alpha for expert {expert!r} must be a number in [0, 1], got {value!r}")
    return {e: float(v) for e, v in out.items()}


def interpolate_experts(trained: MoTEModel, initial: MoTEModel, alpha: float | Mapping[str, float]) -> MoTEModel:
    """A copy of `trained` whose experts are moved toward `initial`'s (same layout); shared weights stay trained.

    `initial` is the model training started from (e.g. `MoTEModel.upcycle(base, placement=..., expert_rank=...)`).
    Low-rank experts interpolate their delta: B is scaled by alpha, so W = W0 + alpha * B @ A.
    """
    alphas = _alphas(trained, alpha)
    if trained.mote_layer_ids != initial.mote_layer_ids or list(trained.tasks.experts) != list(initial.tasks.experts):
        raise ValueError(
            f"initial model has another layout (layers {initial.mote_layer_ids}, experts "
            f"{list(initial.tasks.experts)}) than the trained one ({trained.mote_layer_ids}, "
            f"{list(trained.tasks.experts)})"
        )
    out = copy.deepcopy(trained)
    start = initial.backbone.state_dict()
    state = out.backbone.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            expert = _expert_of(name)
            if expert is None:
                continue
            a = alphas[expert]
            if name.endswith("lora_a"):
                continue  # the delta B @ A scales through B alone
            theta0 = torch.zeros_like(tensor) if name.endswith("lora_b") else start[name]
            if theta0.shape != tensor.shape:
                raise ValueError(f"{name}: initial shape {tuple(theta0.shape)} != trained {tuple(tensor.shape)}")
            tensor.copy_(theta0 + a * (tensor - theta0))
    out.refresh_fingerprint()
    return out


def _expert_of(param_name: str) -> str | None:
    parts = param_name.split(".")
    if "experts" in parts:
        return parts[parts.index("experts") + 1]
    return None


def wave(model: MoTEModel) -> MoTEModel:
    """The experts of every MoTE layer averaged (weights, element-wise) into one dense feed-forward block.

    Returns a dense MoTEModel (no expert layers) with the same tasks, prefixes and tokenizer."""
    if not model.mote_layer_ids:
        raise ValueError("wave needs a MoTE model (this one has no expert layers)")
    backbone = copy.deepcopy(model.backbone)
    layers = transformer_layers(backbone)
    with torch.no_grad():
        for i, routed in mote_layers(backbone).items():
            experts = [merge_low_rank(copy.deepcopy(e)) for e in routed.experts.values()]
            block = experts[0]
            params = [dict(e.named_parameters()) for e in experts]
            for name, p in block.named_parameters():
                p.copy_(torch.stack([ps[name] for ps in params]).mean(dim=0))
            layers[i].intermediate = block.intermediate
            layers[i].output = block.output
    settings = {**model.config().model_kwargs(), "mote_layers": []}  # the model's settings, no expert layer
    out = MoTEModel(backbone, model.tokenizer, **settings, source=f"wave({model.source})")
    out.backbone.eval()
    return out
