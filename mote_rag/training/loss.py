"""InfoNCE with in-batch and hard negatives, and GradCache so a large contrastive batch fits in little memory.

GradCache (Gao et al. 2021; sentence-transformers' CachedMultipleNegativesRankingLoss):
1. embed every mini-batch without building a graph, saving the RNG state before each one;
2. compute the loss on the full batch of embeddings and its gradient with respect to the embeddings;
3. re-run each mini-batch with a graph, with its RNG state restored (same dropout masks), and backpropagate
   the cached embedding gradients into the weights.
The loss and gradients equal those of one full-batch pass, while activations are held for one mini-batch only.
Activation checkpointing is deliberately not used: it would recompute layers outside the MoTE routing
context; step 3 re-runs whole forward passes through `embed_batch`, which sets the route itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def info_nce(
    anchors: torch.Tensor,
    candidates: torch.Tensor,
    temperature: float,
    anchor_labels: Sequence[str | None] | None = None,
    candidate_labels: Sequence[str | None] | None = None,
    symmetric: bool = False,
) -> torch.Tensor:
    """Mean InfoNCE; anchor i's positive is candidates[i], every other candidate is a negative.

    `candidates` = the B positives followed by any hard negatives. With labels, a candidate that shares the
    anchor's (non-None) label is not used as a negative (it is a false negative). `symmetric` adds the
    positive -> anchor direction (over the anchors), averaged with the main term.
    """
    n = anchors.shape[0]
    if candidates.shape[0] < n:
        raise ValueError(f"{candidates.shape[0]} candidates for {n} anchors: each anchor needs its positive")
    scores = anchors @ candidates.T / temperature
    target = torch.arange(n, device=anchors.device)
    mask = None
    if anchor_labels is not None and candidate_labels is not None:
        mask = _same_label_mask(anchor_labels, candidate_labels, anchors.device)
        scores = scores.masked_fill(mask, float("-inf"))
    loss = F.cross_entropy(scores, target)
    if symmetric:
        back = candidates[:n] @ anchors.T / temperature
        if mask is not None:
            back = back.masked_fill(mask[:, :n].T, float("-inf"))
        loss = (loss + F.cross_entropy(back, target)) / 2
    return loss


def _same_label_mask(anchor_labels, candidate_labels, device) -> torch.Tensor:
    """True where candidate j shares anchor i's label and is not its own positive (j != i)."""
    n = len(anchor_labels)
    ids: dict[str, int] = {}
    a = torch.tensor([ids.setdefault(x, len(ids)) if x is not None else -1 - i for i, x in enumerate(anchor_labels)])
    c = torch.tensor(
        [ids.setdefault(x, len(ids)) if x is not None else -(n + 1) - j for j, x in enumerate(candidate_labels)]
    )
    mask = a[:, None] == c[None, :]
    mask[torch.arange(n), torch.arange(n)] = False
    return mask.to(device)


class RandContext:
    """Capture the RNG state now; `with ctx:` replays it (dropout masks identical in both GradCache passes)."""

    def __init__(self, *tensors: torch.Tensor):
        self.cpu_state = torch.get_rng_state()
        self.devices = sorted({t.device.index or 0 for t in tensors if t.is_cuda}) if torch.cuda.is_available() else []
        self.cuda_states = [torch.cuda.get_rng_state(d) for d in self.devices]
        self._fork = None

    def __enter__(self):
        self._fork = torch.random.fork_rng(devices=self.devices, enabled=True)
        self._fork.__enter__()
        torch.set_rng_state(self.cpu_state)
        for d, s in zip(self.devices, self.cuda_states):
            torch.cuda.set_rng_state(s, d)

    def __exit__(self, *exc):
        self._fork.__exit__(*exc)
        self._fork = None


EmbedFn = Callable[[list[str], list[str]], torch.Tensor]


SORT_CHUNK = 16  # texts per forward when a batch fits one graph: length-sorted chunks cut padding


def _length_chunks(texts: Sequence[str], size: int) -> list[list[int]]:
    """Row indices in chunks of `size`, shortest texts first: each chunk pads only to its own longest text."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[i : i + size] for i in range(0, len(order), size)]


def _embed_sorted(embed: EmbedFn, texts: list[str], tasks: list[str], chunks: list[list[int]]) -> torch.Tensor:
    parts = [embed([texts[i] for i in c], [tasks[i] for i in c]) for c in chunks]
    order = [i for c in chunks for i in c]
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return torch.cat(parts)[inverse.to(parts[0].device)]


def cached_contrastive_step(
    embed: EmbedFn,
    groups: Sequence[tuple[list[str], list[str]]],
    loss_fn: Callable[..., torch.Tensor],
    mini_batch_size: int,
) -> float:
    """One GradCache forward/backward over `groups` (e.g. [(anchor texts, tasks), (candidate texts, tasks)]).

    `loss_fn(*embeddings)` gets one tensor per group, rows in the given order. Gradients are accumulated into
    the weights; returns the loss value. Mini-batches never mix groups (each is one task, so MoTE runs its
    single-expert path) and hold texts of similar length (less padding).
    """
    if mini_batch_size < 1:
        raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}")
    total = sum(len(texts) for texts, _ in groups)
    if total <= mini_batch_size:
        # small enough for one graph: no recomputation, only length-sorted chunks
        embs = [
            _embed_sorted(embed, texts, tasks, _length_chunks(texts, min(SORT_CHUNK, mini_batch_size)))
            for texts, tasks in groups
        ]
        loss = loss_fn(*embs)
        loss.backward()
        return float(loss.detach())
    cached: list[torch.Tensor] = []
    plans: list[list[tuple[list[int], RandContext]]] = []
    with torch.no_grad():
        for texts, tasks in groups:
            plan, parts = [], []
            for chunk in _length_chunks(texts, mini_batch_size):
                plan.append((chunk, RandContext()))
                parts.append(embed([texts[i] for i in chunk], [tasks[i] for i in chunk]))
            order = torch.tensor([i for c, _ in plan for i in c])
            reps = torch.empty(len(texts), parts[0].shape[1], dtype=parts[0].dtype, device=parts[0].device)
            reps[order.to(reps.device)] = torch.cat(parts)
            cached.append(reps.requires_grad_(True))
            plans.append(plan)
    loss = loss_fn(*cached)
    loss.backward()
    for (texts, tasks), reps, plan in zip(groups, cached, plans):
        for chunk, state in plan:
            with state:
                emb = embed([texts[i] for i in chunk], [tasks[i] for i in chunk])
            emb.backward(reps.grad[torch.tensor(chunk, device=reps.device)])
    return float(loss.detach())
