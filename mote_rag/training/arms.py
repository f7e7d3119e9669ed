"""The three arms of the comparison, built from one base: only the model differs, never the recipe.

- `mote`: the base upcycled into task experts (MoTEModel.upcycle), with instruction prefixes unless
  `use_prefixes` is false (router-only: the task reaches its expert by routing alone); optionally low-rank
  experts (`expert_rank`), a frozen trunk (`experts_only`) and a larger expert learning rate.
- `ic`: the dense base with instruction prefixes (instruction-conditioning).
- `plain`: the dense base without prefixes.
"""

from __future__ import annotations

from ..model import MoTEModel
from .config import ARMS, TrainConfig


def build_model(config: TrainConfig) -> MoTEModel:
    """The arm's model, its trainable parameters set (experts only, when asked)."""
    if config.arm not in ARMS:
        raise ValueError(f"unknown arm {config.arm!r}; use one of {', '.join(ARMS)}")
    placement = list(config.placement) if isinstance(config.placement, (list, tuple)) else config.placement
    if config.arm == "mote":
        model = MoTEModel.upcycle(
            config.base, placement=placement, use_prefixes=config.prefixes, expert_rank=config.expert_rank
        )
    else:
        model = MoTEModel.dense(config.base, use_prefixes=config.prefixes)
    check_tasks(model, config)
    set_trainable(model, experts_only=config.experts_only)
    return model


def check_tasks(model: MoTEModel, config: TrainConfig) -> None:
    for task in config.tasks:
        for name in (task.anchor_task, task.candidate_task):
            if name not in model.tasks:
                raise ValueError(
                    f"{config.source}: tasks.{task.name} routes to {name!r}, which the model's task "
                    f"set does not define ({', '.join(model.tasks.names)})"
                )


def set_trainable(model: MoTEModel, experts_only: bool) -> None:
    """Everything trains, or (MoTE) only the experts: the shared attention/embeddings stay frozen.

    (A low-rank expert's dense weight is a buffer, so it never trains either way.)"""
    if experts_only and not model.mote_layer_ids:
        raise ValueError("experts_only needs a MoTE model (this one has no expert layers)")
    expert_ids = {id(p) for p in model.expert_parameters()}
    for p in model.backbone.parameters():
        p.requires_grad_(not experts_only or id(p) in expert_ids)
