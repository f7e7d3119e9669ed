"""Which weight files mote-rag loads: safetensors only, never a pickle.

A PyTorch pickle (`pytorch_model.bin`, `*.pt`, `*.pth`, `*.ckpt`) is a program as much as data: unpickling it can
run any code stored in the file, which is why torch's loader refuses such files unless told `weights_only=False`.
mote-rag does not offer that switch. A checkpoint folder that holds only pickled weights is refused here, before
transformers or torch open it, with a message that says how to convert it once (in a place where the file is
trusted).
"""

from __future__ import annotations

import os
from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
NOT_WEIGHTS = {"training_args.bin", "optimizer.pt", "scheduler.pt", "rng_state.pth"}  # trainer side files


class PickledWeightsError(ValueError):
    """A model folder whose weights exist only as pickled PyTorch files (no safetensors)."""


def pickled_weight_files(folder: str | os.PathLike) -> list[str]:
    """Names of the pickled weight files in `folder` when it holds no .safetensors file, else []."""
    p = Path(folder)
    if not p.is_dir() or any(p.glob("*.safetensors")):
        return []
    return sorted(
        f.name for f in p.iterdir() if f.suffix in PICKLE_SUFFIXES and f.name not in NOT_WEIGHTS and f.is_file()
    )


def check_safe_weights(folder: str | os.PathLike) -> None:
    """Refuse (PickledWeightsError) a local checkpoint folder whose weights are only pickled; anything else passes
    (a hub id, a folder with safetensors, a folder with no weights at all, which the loader reports itself)."""
    pickled = pickled_weight_files(folder)
    if not pickled:
        return
    p = Path(folder)
    raise PickledWeightsError(
        f"{p} holds its weights only as pickled PyTorch files ({', '.join(pickled[:3])}), with no .safetensors "
        "file. mote-rag loads weights from safetensors only: unpickling runs whatever code the file holds, so a "
        "downloaded or shared checkpoint could run code on this machine (what torch's weights_only=False would "
        "allow). Convert it once, where you trust the file, e.g. "
        f"`python -c \"from transformers import AutoModel as M; M.from_pretrained('{p}').save_pretrained('{p}', "
        'safe_serialization=True)"`, then pass the folder again'
    )
