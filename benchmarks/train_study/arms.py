"""The study's variants: each one TrainConfig override set on a shared recipe, so that only the model or its
trainable set differs between them, and the model each variant's training starts from."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

# name -> TrainConfig overrides. Only the model or its trainable set differs between variants.
VARIANTS: dict[str, dict] = {
    "plain": {"arm": "plain"},  # dense, no prefixes
    "ic": {"arm": "ic"},  # dense, instruction prefixes
    "mote": {"arm": "mote"},  # the paper: experts + prefixes
    "mote_router": {"arm": "mote", "use_prefixes": False},  # experts reached by routing alone
    "mote_frozen": {"arm": "mote", "experts_only": True},  # trunk frozen, prefixes
    "mote_router_frozen": {"arm": "mote", "use_prefixes": False, "experts_only": True},
    "mote_router_frozen_lr3": {"arm": "mote", "use_prefixes": False, "experts_only": True, "expert_lr_multiplier": 3.0},
    "mote_router_frozen_all": {"arm": "mote", "use_prefixes": False, "experts_only": True, "placement": "all"},
    "mote_router_all": {"arm": "mote", "use_prefixes": False, "placement": "all"},
    "mote_router_lora16": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "expert_rank": 16,
        "expert_lr_multiplier": 10.0,
    },
    "mote_router_lora16_all": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "expert_rank": 16,
        "expert_lr_multiplier": 10.0,
        "placement": "all",
    },
    # Retrieval-only recipes (the RAG user's case): every step is a retrieval batch from the same datasets. The
    # frozen-trunk MoTE then leaves the classification and clustering paths bit-identical to the base.
    "plain_retrieval": {"arm": "plain", "train_tasks": ("retrieval",)},
    "mote_router_frozen_retrieval": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "train_tasks": ("retrieval",),
    },
    # Screens of the retrieval recipe: more expert layers (EB), a larger expert learning rate, low-rank experts,
    # and experts on top of a trainable trunk (asymmetric query/document paths, no bit-identity guarantee).
    "mote_router_frozen_all_retrieval": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "placement": "all",
        "train_tasks": ("retrieval",),
    },
    "mote_router_frozen_lr3_retrieval": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "expert_lr_multiplier": 3.0,
        "train_tasks": ("retrieval",),
    },
    "mote_router_lora16_retrieval": {
        "arm": "mote",
        "use_prefixes": False,
        "experts_only": True,
        "expert_rank": 16,
        "expert_lr_multiplier": 10.0,
        "train_tasks": ("retrieval",),
    },
    "mote_router_retrieval": {"arm": "mote", "use_prefixes": False, "train_tasks": ("retrieval",)},
}
DENSE = ("plain", "ic", "plain_retrieval")  # the dense arms; the best on retrieval is the reference


def run_dir(work: Path, name: str, seed: int) -> Path:
    """Where one (variant, seed) run keeps its model, checkpoints and eval JSON."""
    return work / name / f"seed-{seed}"


def variant_config(config, name: str, seed: int, work: Path):
    """The shared recipe with the variant's overrides; `train_tasks` keeps only those tasks of the recipe."""
    overrides = dict(VARIANTS[name])
    arm = overrides.pop("arm")
    cfg = config.with_arm(arm, str(run_dir(work, name, seed)))
    train_tasks = overrides.pop("train_tasks", None)
    if train_tasks is not None:
        overrides["tasks"] = tuple(t for t in cfg.tasks if t.name in train_tasks)
    return replace(cfg, seed=seed, **overrides)


def initial_model(config, name: str):
    """The model a variant's training started from (upcycled base, same layout): WiSE interpolates toward it."""
    from mote_rag import MoTEModel

    v = VARIANTS[name]
    placement = v.get("placement", config.placement)
    return MoTEModel.upcycle(
        config.base,
        placement=list(placement) if isinstance(placement, tuple) else placement,
        use_prefixes=v.get("use_prefixes", True),
        expert_rank=v.get("expert_rank"),
    )
