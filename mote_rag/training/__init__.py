"""TA-CL training: recipe (config), examples (data), task-aware batches (sampler), InfoNCE + GradCache (loss),
the three arms (arms) and the trainer; adapt: query-side (or two-sided) adaptation to one
collection. `train(load_config(path))` is what `mote-rag train --config` runs."""

from __future__ import annotations

from .config import ConfigError, TrainConfig, default_config_path, load_config, parse_config

__all__ = [
    "ConfigError",
    "TrainConfig",
    "load_config",
    "parse_config",
    "default_config_path",
    "train",
    "Trainer",
    "adapt",
    "AdaptConfig",
]


def __getattr__(name: str):  # torch-heavy pieces load on first use
    if name in ("train", "Trainer"):
        from . import trainer

        return getattr(trainer, name)
    if name in ("adapt", "AdaptConfig"):
        from . import adapt

        return getattr(adapt, name)
    raise AttributeError(f"module 'mote_rag.training' has no attribute {name!r}")
