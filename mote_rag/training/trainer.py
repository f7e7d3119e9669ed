"""TA-CL trainer: AdamW, warmup then linear decay, GradCache steps, checkpoints, resume, JSON log, final save.

Checkpoints hold no pickle: model weights via `save_pretrained` (safetensors), optimizer tensors and the torch
RNG state in `optimizer.safetensors`, and every scalar (optimizer groups, scheduler, sampler, step, losses) in
`trainer_state.json`. The sampler is restored by replaying its seeded draws, so a resumed run sees exactly the
batches an uninterrupted run would.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import staged_folder, write_json_atomic
from ..model import WEIGHTS_NAME, MoTEModel
from .arms import build_model, set_trainable
from .config import TrainConfig
from .data import TrainingDataset, load_training_data
from .loss import cached_contrastive_step, info_nce
from .sampler import Batch, TaskAwareSampler

logger = logging.getLogger(__name__)

STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.safetensors"
LOG_NAME = "train_log.json"
CHECKPOINTS = "checkpoints"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def _written_aside(save):
    """`save_checkpoint` writes into a hidden folder beside the checkpoint, swapped in only once complete
    (mote_rag.atomic.staged_folder): a full disk or a read-only folder leaves the earlier checkpoints as they were
    and no partial file, and the StorageError names the folder."""

    @functools.wraps(save)
    def wrapper(self, path: str | Path | None = None) -> Path:
        final = Path(path) if path else self.output_dir / CHECKPOINTS / f"step-{self.step_count:07d}"
        with staged_folder(final, f"checkpoint {final.name}") as work:
            save(self, work)
        if (self.output_dir / CHECKPOINTS).is_dir():
            self._prune_checkpoints()  # again: the new checkpoint counts now
        return final

    return wrapper


def build_sampler(config: TrainConfig, data: Mapping[str, list[TrainingDataset]]) -> TaskAwareSampler:
    return TaskAwareSampler(
        data,
        batch_sizes={t.name: t.batch_size for t in config.tasks},
        homogeneous={t.name: t.homogeneous for t in config.tasks},
        schedule=config.schedule,
        seed=config.seed,
        weights={t.name: t.weight for t in config.tasks},
    )


def warmup_linear(total_steps: int, warmup_steps: int):
    """LR multiplier: linear warmup to 1, then linear decay to 0 at `total_steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


@dataclass
class StepResult:
    step: int
    task: str
    loss: float
    seconds: float
    lr: float
    datasets: tuple[str, ...]


class Trainer:
    """Everything is checked (config, data, batch sizes) in the constructor, before the model is built."""

    def __init__(
        self,
        config: TrainConfig,
        model: MoTEModel | None = None,
        data: Mapping[str, list[TrainingDataset]] | None = None,
        show_progress: bool = True,
    ):
        self.config = config
        if config.threads:
            torch.set_num_threads(config.threads)
        self.data = dict(data) if data is not None else load_training_data(config)
        self.sampler = build_sampler(config, self.data)
        torch.manual_seed(config.seed)
        self.model = model if model is not None else build_model(config)
        if model is not None:
            set_trainable(self.model, config.experts_only)
        self.train_max_seq_length = min(self.model.max_seq_length, config.max_seq_length or self.model.max_seq_length)
        self.show_progress = show_progress
        self.temperatures = {
            t.name: float(
                t.temperature if t.temperature is not None else self.model.tasks.get(t.anchor_task).temperature
            )
            for t in config.tasks
        }
        self.routes = {t.name: (t.anchor_task, t.candidate_task) for t in config.tasks}
        self.optimizer = self._build_optimizer()
        warmup = int(round(config.warmup_ratio * config.steps))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, warmup_linear(config.steps, warmup))
        self.step_count = 0
        self.history: list[dict] = []
        self.output_dir = Path(config.output_dir)

    # ------------------------------------------------------------------ pieces
    def _build_optimizer(self) -> torch.optim.Optimizer:
        """AdamW; no decay on biases/LayerNorm/low-rank factors; experts at learning_rate x expert_lr_multiplier."""
        expert_ids = {id(p) for p in self.model.expert_parameters()}
        lr = self.config.learning_rate
        groups: dict[tuple[bool, bool], list] = {}
        for name, p in self.model.backbone.named_parameters():
            if not p.requires_grad:
                continue
            decays = not (p.ndim < 2 or "LayerNorm" in name or name.endswith(".bias") or "lora_" in name)
            groups.setdefault((id(p) in expert_ids, decays), []).append(p)
        order = [(False, True), (False, False), (True, True), (True, False)]  # stable: checkpoints index groups
        return torch.optim.AdamW(
            [
                {
                    "params": groups[k],
                    "weight_decay": self.config.weight_decay if k[1] else 0.0,
                    "lr": lr * (self.config.expert_lr_multiplier if k[0] else 1.0),
                }
                for k in order
                if k in groups
            ],
            lr=lr,
        )

    def loss_for_batch(self, batch: Batch, backward: bool = True) -> float:
        """Loss of one batch; with `backward`, gradients are accumulated into the weights (GradCache)."""
        anchor_task, cand_task = self.routes[batch.task]
        anchors = [ex.anchor for ex in batch.examples]
        cands = [ex.positive for ex in batch.examples] + [n for ex in batch.examples for n in ex.negatives]
        anchor_labels = [ex.label for ex in batch.examples]
        cand_labels = anchor_labels + [lab for ex in batch.examples for lab in _neg_labels(ex)]
        labelled = any(lab is not None for lab in cand_labels)
        temperature = self.temperatures[batch.task]

        def loss_fn(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
            return info_nce(
                a,
                c,
                temperature,
                anchor_labels if labelled else None,
                cand_labels if labelled else None,
                symmetric=self.config.symmetric,
            )

        groups = [(anchors, [anchor_task] * len(anchors)), (cands, [cand_task] * len(cands))]
        embed = functools.partial(self.model.embed_batch, max_length=self.train_max_seq_length)
        if backward:
            return cached_contrastive_step(embed, groups, loss_fn, self.config.mini_batch_size)
        size = self.config.mini_batch_size
        with torch.no_grad():
            embs = [
                torch.cat([embed(t[i : i + size], k[i : i + size]) for i in range(0, len(t), size)]) for t, k in groups
            ]
            return float(loss_fn(*embs))

    def train_step(self, batch: Batch) -> StepResult:
        """One optimisation step on one single-task batch."""
        start = time.perf_counter()
        self.model.backbone.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_for_batch(batch)
        if not math.isfinite(loss):
            raise FloatingPointError(f"step {self.step_count + 1}: loss is {loss} on task {batch.task!r}")
        if self.config.max_grad_norm:
            params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_norm_(params, self.config.max_grad_norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.step_count += 1
        return StepResult(self.step_count, batch.task, loss, time.perf_counter() - start, lr, batch.datasets)

    # ------------------------------------------------------------------ loop
    def train(self, resume: str | Path | bool | None = None) -> dict:
        """Train to `config.steps` (resuming from a checkpoint dir, or the latest one with `resume=True`)."""
        from tqdm.auto import tqdm

        if resume:
            ckpt = latest_checkpoint(self.output_dir) if resume is True else Path(resume)
            if ckpt is None:
                raise FileNotFoundError(f"no checkpoint to resume from under {self.output_dir / CHECKPOINTS}")
            self.load_checkpoint(ckpt)
            logger.info("resumed from %s at step %d", ckpt, self.step_count)
        ema: dict[str, float] = {}
        for entry in self.history:
            ema[entry["task"]] = (
                entry["loss"] if entry["task"] not in ema else 0.9 * ema[entry["task"]] + 0.1 * entry["loss"]
            )
        bar = tqdm(
            total=self.config.steps,
            initial=self.step_count,
            disable=not self.show_progress,
            desc=f"train {self.config.arm}",
            unit="step",
        )
        started = time.perf_counter()
        try:
            while self.step_count < self.config.steps:
                batch = self.sampler.next_batch()
                result = self.train_step(batch)
                self.history.append(
                    {
                        "step": result.step,
                        "task": result.task,
                        "loss": round(result.loss, 6),
                        "lr": result.lr,
                        "seconds": round(result.seconds, 4),
                        "datasets": sorted(set(result.datasets)),
                    }
                )
                ema[result.task] = result.loss if result.task not in ema else 0.9 * ema[result.task] + 0.1 * result.loss
                bar.update(1)
                bar.set_postfix({t: f"{v:.3f}" for t, v in ema.items()}, refresh=False)
                if self.step_count % self.config.log_every == 0:
                    self.write_log(finished=False)
                if (
                    self.config.checkpoint_every
                    and self.step_count % self.config.checkpoint_every == 0
                    and self.step_count < self.config.steps
                ):
                    self.save_checkpoint()
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        self.model.backbone.eval()
        self.model.refresh_fingerprint()
        self.model.save_pretrained(self.output_dir)
        logger.info("trained %d steps in %.1fs -> %s", self.step_count, elapsed, self.output_dir)
        return self.write_log(finished=True, elapsed=elapsed)

    def summary(self) -> dict:
        per_task: dict[str, dict] = {}
        for e in self.history:
            per_task.setdefault(e["task"], {"steps": 0, "losses": []})
            per_task[e["task"]]["steps"] += 1
            per_task[e["task"]]["losses"].append(e["loss"])
        out = {}
        for t, v in per_task.items():
            k = max(1, len(v["losses"]) // 10)
            out[t] = {
                "steps": v["steps"],
                "first_loss": sum(v["losses"][:k]) / k,
                "last_loss": sum(v["losses"][-k:]) / k,
            }
        times = sorted(e["seconds"] for e in self.history)
        return {"per_task": out, "median_step_seconds": times[len(times) // 2] if times else None}

    def write_log(self, finished: bool, elapsed: float | None = None) -> dict:
        log = {
            "arm": self.config.arm,
            "recipe_hash": self.config.recipe_hash(),
            "config": self.config.to_dict(),
            "temperatures": self.temperatures,
            "datasets": {t: {d.name: len(d.examples) for d in ds} for t, ds in self.data.items()},
            "steps_done": self.step_count,
            "finished": finished,
            "train_seconds": elapsed,
            "fingerprint": self.model.fingerprint if finished else None,
            **self.summary(),
            "entries": self.history,
        }
        write_json_atomic(self.output_dir / LOG_NAME, log)
        return log

    # ------------------------------------------------------------------ checkpoints
    @_written_aside
    def save_checkpoint(self, path: str | Path | None = None) -> Path:
        from safetensors.torch import save_file

        from ..atomic import atomic_path

        ckpt = Path(path) if path else self.output_dir / CHECKPOINTS / f"step-{self.step_count:07d}"
        ckpt.mkdir(parents=True, exist_ok=True)
        self.model.refresh_fingerprint()
        self.model.save_pretrained(ckpt)
        logger.info("checkpoint at step %d -> %s", self.step_count, ckpt)
        tensors, opt_state = optimizer_payload(self.optimizer, self.scheduler)
        with atomic_path(ckpt / OPTIMIZER_NAME) as tmp:
            save_file(tensors, str(tmp))
        state = {
            "step": self.step_count,
            "recipe_hash": self.config.recipe_hash(),
            "arm": self.config.arm,
            "sampler": self.sampler.state_dict(),
            **opt_state,
            "history": self.history,
        }
        write_json_atomic(ckpt / STATE_NAME, state)  # written last: its presence marks a complete checkpoint
        self._prune_checkpoints()
        return ckpt

    def _prune_checkpoints(self) -> None:
        root = self.output_dir / CHECKPOINTS
        done = sorted(p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_NAME).is_file())
        for old in done[: max(0, len(done) - self.config.keep_checkpoints)]:
            shutil.rmtree(old, ignore_errors=True)

    def load_checkpoint(self, path: str | Path) -> None:
        from safetensors.torch import load_file

        ckpt = Path(path)
        state_file = ckpt / STATE_NAME
        if not state_file.is_file():
            raise FileNotFoundError(f"{ckpt} is not a complete checkpoint ({STATE_NAME} missing)")
        state = json.loads(state_file.read_text())
        if state["recipe_hash"] != self.config.recipe_hash() or state["arm"] != self.config.arm:
            raise ValueError(
                f"{ckpt} was written by another recipe or arm (recipe {state['recipe_hash']}, arm "
                f"{state['arm']}); resume needs the same config"
            )
        weights = load_file(str(ckpt / WEIGHTS_NAME))
        missing, unexpected = self.model.backbone.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not k.endswith("position_ids")]
        if missing or unexpected:
            raise ValueError(
                f"{ckpt}: weights do not fit this model (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )
        restore_optimizer(self.optimizer, self.scheduler, load_file(str(ckpt / OPTIMIZER_NAME)), state)
        self.sampler.load_state_dict(state["sampler"])
        self.step_count = int(state["step"])
        self.history = list(state["history"])
        self.model.refresh_fingerprint()


def optimizer_payload(optimizer: torch.optim.Optimizer, scheduler) -> tuple[dict, dict]:
    """A checkpoint's optimizer, schedule and RNG with no pickle: (tensors for safetensors, scalars for JSON)."""
    opt = optimizer.state_dict()
    tensors = {"rng.cpu": torch.get_rng_state()}
    scalars: dict = {}
    for idx, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"state.{idx}.{key}"] = value.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in opt["param_groups"]]
    sched = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    return tensors, {"scheduler": sched, "optimizer_param_groups": groups, "optimizer_scalars": scalars}


def restore_optimizer(optimizer: torch.optim.Optimizer, scheduler, tensors: dict, state: dict) -> None:
    """The inverse of `optimizer_payload`."""
    opt_state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("state."):
            _, idx, key = name.split(".", 2)
            opt_state.setdefault(int(idx), {})[key] = value
    for idx, extra in state["optimizer_scalars"].items():
        opt_state.setdefault(int(idx), {}).update(extra)
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in state["optimizer_param_groups"]]
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    scheduler.load_state_dict({**state["scheduler"], "lr_lambdas": [None] * len(optimizer.param_groups)})
    torch.set_rng_state(tensors["rng.cpu"])


def _neg_labels(ex) -> tuple:
    return ex.negative_labels if len(ex.negative_labels) == len(ex.negatives) else (None,) * len(ex.negatives)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    root = Path(output_dir) / CHECKPOINTS
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if _STEP_DIR.match(p.name) and (p / STATE_NAME).is_file())
    return done[-1] if done else None


def train(config: TrainConfig, resume: str | Path | bool | None = None, show_progress: bool = True) -> dict:
    """Validate, build the arm's model, train, save; returns the JSON log."""
    return Trainer(config, show_progress=show_progress).train(resume=resume)
