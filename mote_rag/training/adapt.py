"""Adapt a model to one collection without re-embedding it: train only the query expert (or both experts).

    pairs (query, passage) -> passages embedded once by the frozen document path (cached for the whole run)
        -> each step: a batch of queries through the trainable query expert -> InfoNCE against the cached passages

With `side="query"` the document path is not touched, so every vector already in an index stays valid (the index
checks the document path's fingerprint, not the whole model's). With `collection="medquad"` the trained expert is a
new path `search_query@medquad` (a copy of `search_query` before training): other collections keep the base query
expert bit for bit, and an index built for the collection routes its queries to the new path. `side="both"` trains
the document expert too (the collection's own `search_document@<name>` when a collection is named): the collection
must then be re-embedded with it, as after `mote-rag train`. `side="all"` trains every weight (a dense model's
fine-tuning, the reference the experts are measured against): every path changes and every collection must be
re-embedded.

Checkpoints hold no pickle: the trained experts (safetensors), the optimizer tensors (safetensors) and every scalar
(step, schedule, losses, the recipe) in JSON; the batch order is a seeded permutation, so a resumed run sees exactly
the batches an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_path, write_json_atomic
from ..model import MoTEModel
from ..tasks import collection_task
from .trainer import CHECKPOINTS, OPTIMIZER_NAME, STATE_NAME, latest_checkpoint, warmup_linear

logger = logging.getLogger(__name__)

SIDES = ("query", "both", "all")
EXPERTS_NAME = "experts.safetensors"
LOG_NAME = "adapt_log.json"


@dataclass(frozen=True)
class AdaptConfig:
    """The recipe of one adaptation run (the defaults are the TA-CL study's: 300 x 32, lr 5e-5, 64 tokens)."""

    side: str = "query"
    collection: str | None = None
    steps: int = 300
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    max_seq_length: int = 64
    temperature: float | None = None  # None: the query task's temperature
    seed: int = 13
    checkpoint_every: int = 100
    keep_checkpoints: int = 2

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {', '.join(SIDES)}, got {self.side!r}")
        if self.collection is not None:
            collection_task("search_query", self.collection)  # ValueError naming a bad collection name
            if self.side == "all":
                raise ValueError("side='all' trains the shared weights, so every path changes: it takes no collection")
        _check_numbers(self)
        if self.batch_size < 2:
            raise ValueError("batch_size must be at least 2: in-batch passages are the negatives")
        if not self.learning_rate > 0:
            raise ValueError("learning_rate must be > 0")
        if self.warmup_ratio >= 1:
            raise ValueError(f"warmup_ratio must be below 1, got {self.warmup_ratio}")
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")

    @property
    def query_task(self) -> str:
        return collection_task("search_query", self.collection) if self.collection else "search_query"

    @property
    def document_task(self) -> str:
        if self.side == "both" and self.collection:
            return collection_task("search_document", self.collection)
        return "search_document"

    def recipe_hash(self, pairs_digest: str) -> str:
        body = {k: v for k, v in asdict(self).items() if k not in ("checkpoint_every", "keep_checkpoints")}
        return hashlib.sha256(json.dumps({**body, "pairs": pairs_digest}, sort_keys=True).encode()).hexdigest()[:16]


def _check_numbers(cfg: AdaptConfig) -> None:
    """Counts are positive integers (checkpoints may be 0: none), rates finite non-negative numbers."""
    counts = (("steps", 1), ("batch_size", 1), ("max_seq_length", 1), ("checkpoint_every", 0), ("keep_checkpoints", 0))
    for name, lowest in counts:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            raise ValueError(f"{name} must be an integer >= {lowest}, got {value!r}")
    for name in ("learning_rate", "warmup_ratio", "weight_decay", "max_grad_norm"):
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")


@dataclass
class AdaptResult:
    """What a run did: the trained tasks, timings (the passage cache apart), losses and the output folder."""

    query_task: str
    document_task: str
    side: str
    steps: int
    pairs: int
    passages: int
    train_seconds: float
    passage_cache_seconds: float
    first_loss: float
    last_loss: float
    output_dir: str | None = None
    history: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def check_pairs(pairs) -> list[tuple[str, str]]:
    """A list of (query, passage) string pairs, else a ValueError/TypeError naming the first bad pair."""
    if isinstance(pairs, (str, os.PathLike)):
        from ..readers import load_pairs

        return load_pairs(pairs)
    if not isinstance(pairs, Sequence):
        raise TypeError(f"pairs must be a list of (query, passage) pairs or a path, got {type(pairs).__name__}")
    out = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, dict):
            pair = (pair.get("anchor", pair.get("query")), pair.get("positive", pair.get("passage")))
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"pairs[{i}] must be a (query, passage) pair, got {pair!r:.60}")
        for what, text in zip(("query", "passage"), pair):
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"pairs[{i}]: the {what} must be a non-empty string, got {text!r:.60}")
        out.append((pair[0], pair[1]))
    if len(out) < 2:
        raise ValueError(f"adaptation needs at least 2 pairs (in-batch negatives), got {len(out)}")
    return out


def _digest(pairs: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for q, p in pairs:
        h.update(q.encode("utf-8", "surrogatepass") + b"\0" + p.encode("utf-8", "surrogatepass") + b"\1")
    return h.hexdigest()[:16]


class Adapter:
    """One adaptation run; everything is checked in the constructor, before the model changes."""

    def __init__(
        self,
        model: MoTEModel,
        pairs,
        config: AdaptConfig | None = None,
        output_dir: str | os.PathLike | None = None,
        show_progress_bar: bool = True,
    ):
        if not isinstance(model, MoTEModel):
            raise TypeError(f"adapt needs a torch MoTEModel (MoTEModel.from_pretrained), got {type(model).__name__}")
        self.config = config or AdaptConfig()
        if not model.mote_layer_ids and self.config.side != "all":
            raise ValueError(
                f"side={self.config.side!r} trains experts, and this model is dense (no expert layers): upcycle it "
                "with MoTEModel.upcycle, or fine-tune every weight with side='all'"
            )
        self.pairs = check_pairs(pairs)
        self.model = model
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.show_progress_bar = show_progress_bar
        cfg = self.config
        for base, task in (("search_query", cfg.query_task), ("search_document", cfg.document_task)):
            if task not in model.tasks:
                model.add_collection_expert(cfg.collection, base)
        self.query_task = model.tasks.get(cfg.query_task).name
        self.document_task = model.tasks.get(cfg.document_task).name
        trained = [self.query_task] + ([self.document_task] if cfg.side == "both" else [])
        experts = {model.tasks.get(t).expert for t in trained}
        if cfg.side == "both" and len(experts) < 2:
            raise ValueError(
                f"{self.query_task} and {self.document_task} share one expert; train them with side='query'"
            )
        if cfg.side == "all":
            experts = set(model.tasks.experts) if model.mote_layer_ids else set()
            params = list(model.backbone.parameters())
        else:
            params = [p for e in experts for p in model.expert_parameters(e)]
        for p in model.backbone.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        self.experts = sorted(experts)
        decay = [p for n, p in self._named_trainable() if not _no_decay(n, p)]
        rest = [p for n, p in self._named_trainable() if _no_decay(n, p)]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}],
            lr=cfg.learning_rate,
        )
        warmup = int(round(cfg.warmup_ratio * cfg.steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_linear(cfg.steps, warmup))
        self.temperature = float(cfg.temperature or model.tasks.get(self.query_task).temperature)
        self.max_length = min(cfg.max_seq_length, model.max_seq_length)
        self.passages = list(dict.fromkeys(p for _, p in self.pairs))
        where = {p: i for i, p in enumerate(self.passages)}
        self.passage_ids = np.array([where[p] for _, p in self.pairs], dtype=np.int64)
        self.recipe = cfg.recipe_hash(_digest(self.pairs))
        self.step = 0
        self.history: list[dict] = []
        self.cache_seconds = 0.0

    def _named_trainable(self):
        return [(n, p) for n, p in self.model.backbone.named_parameters() if p.requires_grad]

    # ------------------------------------------------------------------ data
    def batch_rows(self, step: int) -> np.ndarray:
        """The pair rows of step `step` (0-based): consecutive slices of seeded permutations, one per epoch."""
        n, b = len(self.pairs), min(self.config.batch_size, len(self.pairs))
        per_epoch = max(1, n // b)
        epoch, k = divmod(step, per_epoch)
        order = np.random.default_rng([self.config.seed, epoch]).permutation(n)
        return order[k * b : (k + 1) * b]

    @torch.no_grad()
    def cache_passages(self) -> torch.Tensor:
        """Every distinct passage through the frozen document path, once (query side only)."""
        from ..inputs import progress

        start = time.perf_counter()
        self.model.backbone.eval()
        size = 64
        order = np.argsort([-len(p) for p in self.passages], kind="stable")
        out = torch.empty(len(self.passages), self.model.dim)
        with progress(len(order), self.show_progress_bar, "embed passages (once)") as bar:
            for s in range(0, len(order), size):
                idx = order[s : s + size]
                texts = [self.passages[i] for i in idx]
                out[torch.from_numpy(idx)] = self.model.embed_batch(
                    texts, [self.document_task] * len(texts), max_length=self.max_length
                ).float()
                bar.update(len(idx))
        self.cache_seconds = time.perf_counter() - start
        return out

    # ------------------------------------------------------------------ loop
    def loss(self, rows: np.ndarray, cached: torch.Tensor | None) -> torch.Tensor:
        queries = [self.pairs[i][0] for i in rows]
        q = self.model.embed_batch(queries, [self.query_task] * len(rows), max_length=self.max_length)
        pids = self.passage_ids[rows]
        if cached is not None:
            d = cached[torch.from_numpy(pids)]
        else:
            texts = [self.pairs[i][1] for i in rows]
            d = self.model.embed_batch(texts, [self.document_task] * len(rows), max_length=self.max_length)
        logits = q @ d.T / self.temperature
        same = torch.from_numpy(pids[:, None] == pids[None, :])
        logits = logits.masked_fill(same & ~torch.eye(len(rows), dtype=torch.bool), float("-inf"))  # false negatives
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(rows)))

    def run(self, resume: bool | str | os.PathLike = False) -> AdaptResult:
        from tqdm.auto import tqdm

        cfg = self.config
        torch.manual_seed(cfg.seed)  # dropout draws: a run is a function of its recipe (a resume restores them)
        if resume:
            self._resume(resume)
        cached = self.cache_passages() if cfg.side == "query" else None  # the document path does not move
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.show_progress_bar, desc="adapt", unit="step")
        params = [p for _, p in self._named_trainable()]
        started = time.perf_counter()
        try:
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                self.model.backbone.train()
                self.optimizer.zero_grad(set_to_none=True)
                loss = self.loss(self.batch_rows(self.step), cached)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"step {self.step + 1}: loss is {float(loss.detach())}")
                loss.backward()
                value = float(loss.detach())
                if cfg.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                lr = self.optimizer.param_groups[0]["lr"]
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                self.history.append(
                    {"step": self.step, "loss": round(value, 6), "lr": lr, "seconds": time.perf_counter() - t0}
                )
                bar.update(1)
                bar.set_postfix(loss=f"{value:.3f}", refresh=False)
                if (
                    self.output_dir is not None
                    and cfg.checkpoint_every
                    and self.step % cfg.checkpoint_every == 0
                    and self.step < cfg.steps
                ):
                    self.save_checkpoint()
        finally:
            bar.close()
            self.model.backbone.eval()
            for p in self.model.backbone.parameters():
                p.requires_grad_(False)
        elapsed = time.perf_counter() - started
        self.model.refresh_fingerprint()
        result = self._result(elapsed)
        if self.output_dir is not None:
            self.model.save_pretrained(self.output_dir)
            write_json_atomic(self.output_dir / LOG_NAME, {"recipe": asdict(cfg), **result.to_dict()})
        return result

    def _result(self, elapsed: float) -> AdaptResult:
        losses = [h["loss"] for h in self.history]
        k = max(1, len(losses) // 10)
        return AdaptResult(
            query_task=self.query_task,
            document_task=self.document_task,
            side=self.config.side,
            steps=self.step,
            pairs=len(self.pairs),
            passages=len(self.passages),
            train_seconds=round(elapsed, 3),
            passage_cache_seconds=round(self.cache_seconds, 3),
            first_loss=float(np.mean(losses[:k])) if losses else float("nan"),
            last_loss=float(np.mean(losses[-k:])) if losses else float("nan"),
            output_dir=str(self.output_dir) if self.output_dir is not None else None,
            history=self.history,
        )

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self) -> Path:
        from safetensors.torch import save_file

        from .trainer import optimizer_payload

        ckpt = self.output_dir / CHECKPOINTS / f"step-{self.step:07d}"
        ckpt.mkdir(parents=True, exist_ok=True)
        experts = {n: p.detach().contiguous().cpu() for n, p in self._named_trainable()}
        with atomic_path(ckpt / EXPERTS_NAME) as tmp:
            save_file(experts, str(tmp))
        tensors, state = optimizer_payload(self.optimizer, self.scheduler)
        with atomic_path(ckpt / OPTIMIZER_NAME) as tmp:
            save_file(tensors, str(tmp))
        state.update(step=self.step, recipe_hash=self.recipe, experts=self.experts, history=self.history)
        write_json_atomic(ckpt / STATE_NAME, state)  # written last: its presence marks a complete checkpoint
        done = sorted(p for p in (self.output_dir / CHECKPOINTS).iterdir() if (p / STATE_NAME).is_file())
        for old in done[: max(0, len(done) - max(1, self.config.keep_checkpoints))]:
            shutil.rmtree(old, ignore_errors=True)
        return ckpt

    def _resume(self, resume: bool | str | os.PathLike) -> None:
        from safetensors.torch import load_file

        from .trainer import restore_optimizer

        if resume is True:
            if self.output_dir is None:
                raise ValueError("resume=True needs the output_dir the interrupted run wrote its checkpoints to")
            ckpt = latest_checkpoint(self.output_dir)
            if ckpt is None:
                raise FileNotFoundError(f"no checkpoint to resume from under {self.output_dir / CHECKPOINTS}")
        else:
            ckpt = Path(resume)
        state_file = ckpt / STATE_NAME
        if not state_file.is_file():
            raise FileNotFoundError(f"{ckpt} is not a complete checkpoint ({STATE_NAME} missing)")
        state = json.loads(state_file.read_text())
        if state.get("recipe_hash") != self.recipe:
            raise ValueError(
                f"{ckpt} was written by another recipe or other pairs (recipe {state.get('recipe_hash')}, this run "
                f"{self.recipe}); resume needs the same settings and pairs"
            )
        weights = load_file(str(ckpt / EXPERTS_NAME))
        named = dict(self._named_trainable())
        if set(weights) != set(named):
            raise ValueError(f"{ckpt}: its experts {sorted(weights)[:3]} do not fit this run's {sorted(named)[:3]}")
        with torch.no_grad():
            for name, value in weights.items():
                named[name].copy_(value)
        restore_optimizer(self.optimizer, self.scheduler, load_file(str(ckpt / OPTIMIZER_NAME)), state)
        self.step = int(state["step"])
        self.history = list(state["history"])
        logger.info("resumed from %s at step %d", ckpt, self.step)


def _no_decay(name: str, p: torch.Tensor) -> bool:
    return p.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") or "lora_" in name


def adapt(
    model: MoTEModel,
    pairs,
    config: AdaptConfig | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    resume: bool | str | os.PathLike = False,
    show_progress_bar: bool = True,
    **overrides,
) -> AdaptResult:
    """Adapt `model` (in place) to (query, passage) `pairs` (a list, a JSON Lines file or a BEIR folder's train
    split); keyword overrides set AdaptConfig fields, e.g. `adapt(model, pairs, collection="medquad", steps=300)`.

    With an `output_dir` the adapted model is saved there (checkpoints under `checkpoints/`, `resume=True` picks
    the latest up)."""
    if overrides:
        config = AdaptConfig(**{**asdict(config or AdaptConfig()), **overrides})
    return Adapter(model, pairs, config, output_dir, show_progress_bar).run(resume=resume)
