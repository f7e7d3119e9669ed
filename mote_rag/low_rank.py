"""Low-rank task experts: an expert is the dense block it was copied from plus a trainable rank-r delta.

In the spirit of jina-embeddings-v3's task LoRA adapters: `LowRankLinear` keeps the dense weight W0 as a
frozen buffer (never in `parameters()`, so no optimiser, experts-only flag or weight decay can move it) and
learns `delta = B @ A` (A: r x in, B: out x r, B starts at zero, so a fresh expert is exactly the dense block).
A trained task is then only its A/B pairs and LayerNorm: about 0.7 MB per task at rank 16 on MiniLM-L6's
three expert layers. `merge_low_rank` folds W0 + B @ A into a plain `nn.Linear`, which is what ONNX export
traces: a served task path costs what the dense model costs.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LowRankLinear(nn.Module):
    """y = x W0^T + b0 + (x A^T) B^T; W0/b0 frozen buffers, A/B trainable."""

    def __init__(self, dense: nn.Linear, rank: int):
        super().__init__()
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
            raise ValueError(f"expert rank must be a positive integer, got {rank!r}")
        if rank > min(dense.in_features, dense.out_features):
            raise ValueError(
                f"expert rank {rank} exceeds the block's size ({dense.in_features} x {dense.out_features})"
            )
        self.rank = rank
        self.in_features, self.out_features = dense.in_features, dense.out_features
        self.register_buffer("weight", dense.weight.detach().clone())
        self.register_buffer("bias", dense.bias.detach().clone() if dense.bias is not None else None)
        self.lora_a = nn.Parameter(torch.empty(rank, dense.in_features))
        self.lora_b = nn.Parameter(torch.zeros(dense.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_a, a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        return self.lora_b @ self.lora_a

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight, self.bias) + (x @ self.lora_a.t()) @ self.lora_b.t()

    def merged(self) -> nn.Linear:
        """A plain Linear computing the same function (W0 + B @ A)."""
        out = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        with torch.no_grad():
            out.weight.copy_(self.weight + self.delta())
            if self.bias is not None:
                out.bias.copy_(self.bias)
        return out.to(self.weight.device)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def add_low_rank(module: nn.Module, rank: int) -> None:
    """Replace every nn.Linear inside `module` (one expert) by a LowRankLinear of the same weights."""
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, LowRankLinear(child, rank))
        else:
            add_low_rank(child, rank)


def merge_low_rank(module: nn.Module) -> nn.Module:
    """Fold every LowRankLinear inside `module` into a plain nn.Linear (in place); returns `module`."""
    for name, child in list(module.named_children()):
        if isinstance(child, LowRankLinear):
            setattr(module, name, child.merged())
        else:
            merge_low_rank(child)
    return module


def served_parameters(module: nn.Module) -> int:
    """Parameters `module` has once merged for serving: dense weights (buffers here) but no A/B factors."""
    count = sum(p.numel() for n, p in module.named_parameters() if "lora_" not in n.rsplit(".", 1)[-1])
    for m in module.modules():
        if isinstance(m, LowRankLinear):
            count += m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
    return count


def trainable_parameters(module: nn.Module) -> int:
    """What training changes in one expert: A/B factors and LayerNorm of a low-rank expert, all of a full one."""
    return sum(p.numel() for p in module.parameters())


def expert_rank(module: nn.Module) -> int | None:
    """The rank of the low-rank experts inside `module`, or None when they are full blocks."""
    ranks = {m.rank for m in module.modules() if isinstance(m, LowRankLinear)}
    if len(ranks) > 1:
        raise ValueError(f"mixed expert ranks {sorted(ranks)}")
    return ranks.pop() if ranks else None
