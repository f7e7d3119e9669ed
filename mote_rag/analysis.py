"""The paper's analysis of a trained MoTE model: how far each expert moved, and how differently tasks embed.

- `expert_drift`: per MoTE layer and expert, the relative distance ||theta - theta0|| / ||theta0|| of the expert's
  feed-forward weights from the dense block it was upcycled from (low-rank experts merged first), plus the same
  figure for the shared trunk (attention, embeddings, dense layers), which only a full fine-tune moves.
- `task_similarity`: for the same texts, the mean cosine between their embeddings under task path i and task
  path j. 1.0 everywhere is an untrained MoTE (every path computes the same function, up to prefixes); lower
  off-diagonal values mean the experts specialised.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .experts import mote_layers, transformer_layers
from .low_rank import merge_low_rank
from .model import MoTEModel


def _distance(params: dict[str, torch.Tensor], start: dict[str, torch.Tensor]) -> float:
    num = sum(float((params[k].float() - start[k].float()).pow(2).sum()) for k in start)
    den = sum(float(start[k].float().pow(2).sum()) for k in start)
    return (num / den) ** 0.5 if den else 0.0


def expert_drift(model: MoTEModel, base: MoTEModel) -> dict:
    """{"layers": {layer: {expert: relative distance}}, "trunk": relative distance of the shared weights}.

    `base` is the dense model the MoTE model was upcycled from (MoTEModel.dense(base_path))."""
    if not model.mote_layer_ids:
        raise ValueError("expert drift needs a MoTE model (this one has no expert layers)")
    base_layers = transformer_layers(base.backbone)
    if len(base_layers) != len(transformer_layers(model.backbone)):
        raise ValueError(
            f"the base has {len(base_layers)} layers, the model {len(transformer_layers(model.backbone))}:"
            " pass the base the model was upcycled from"
        )
    layers = {}
    for i, routed in mote_layers(model.backbone).items():
        dense = base_layers[i]
        start = {f"intermediate.{k}": v for k, v in dense.intermediate.state_dict().items()}
        start.update({f"output.{k}": v for k, v in dense.output.state_dict().items()})
        layers[i] = {}
        for name, expert in routed.experts.items():
            params = merge_low_rank(copy.deepcopy(expert)).state_dict()
            missing = set(start) - set(params)
            if missing:
                raise ValueError(
                    f"layer {i} expert {name!r} does not match the base's block (missing {sorted(missing)[:3]})"
                )
            layers[i][name] = _distance(params, start)
    shared = {
        k: v for k, v in model.backbone.state_dict().items() if ".experts." not in k and not k.endswith("position_ids")
    }
    base_state = base.backbone.state_dict()
    common = {k: base_state[k] for k in shared if k in base_state and base_state[k].shape == shared[k].shape}
    return {"layers": layers, "trunk": _distance(shared, common)}


def task_similarity(model, texts: Sequence[str], tasks: Sequence[str] | None = None, batch_size: int = 32) -> dict:
    """{"tasks": [...], "matrix": [[mean cosine of a text's embeddings under task i and task j]]}."""
    if not texts:
        raise ValueError("task similarity needs at least one text")
    names = list(tasks or model.tasks.names)
    emb = {t: np.asarray(model.encode(list(texts), task=t, batch_size=batch_size), dtype=np.float64) for t in names}
    for t in names:
        emb[t] /= np.maximum(np.linalg.norm(emb[t], axis=1, keepdims=True), 1e-12)
    matrix = [[float(np.mean(np.sum(emb[a] * emb[b], axis=1))) for b in names] for a in names]
    return {"tasks": names, "matrix": matrix, "texts": len(texts)}


def plot_analysis(drift: dict, similarity: dict, path: str | os.PathLike) -> Path:
    """Left: expert drift per layer (one bar per expert); right: the inter-task cosine heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .evaluation.report import save_figure

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    layers = sorted(drift["layers"])
    experts = list(next(iter(drift["layers"].values())))
    width = 0.8 / len(experts)
    x = np.arange(len(layers))
    for j, e in enumerate(experts):
        left.bar(x + (j - (len(experts) - 1) / 2) * width, [drift["layers"][i][e] for i in layers], width, label=e)
    left.set_xticks(x)
    left.set_xticklabels([f"layer {i}" for i in layers])
    left.set_ylabel("||theta - theta0|| / ||theta0||")
    left.set_title(f"Expert drift from the dense block (trunk: {drift['trunk']:.4f})")
    left.legend(fontsize=7)
    m = np.asarray(similarity["matrix"])
    im = right.imshow(m, vmin=min(0.5, float(m.min())), vmax=1.0, cmap="viridis")
    names = similarity["tasks"]
    right.set_xticks(range(len(names)))
    right.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
    right.set_yticks(range(len(names)))
    right.set_yticklabels(names, fontsize=8)
    for a in range(len(names)):
        for b in range(len(names)):
            right.text(
                b,
                a,
                f"{m[a, b]:.3f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if m[a, b] < 0.9 else "black",
            )
    right.set_title(f"Inter-task cosine, same {similarity['texts']} texts")
    fig.colorbar(im, ax=right, fraction=0.046)
    return save_figure(fig, path)
