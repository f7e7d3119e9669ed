"""One way to open any encoder by path: a saved MoTE model, an exported ONNX folder, or a dense checkpoint.

Everything downstream (evaluation, indexes, LangChain/LlamaIndex, CLI) only needs the encoder protocol:
`encode(texts, task=..., batch_size=..., show_progress_bar=...) -> np.ndarray`, `dim`, `fingerprint`, `tasks`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

EMBEDDED = ("base", "embedded", "default")


@runtime_checkable
class Encoder(Protocol):
    fingerprint: str
    dim: int

    def encode(self, texts: Sequence[str], task: str = ..., batch_size: int = ...,
               show_progress_bar: bool = ...) -> np.ndarray: ...


def encoder_kind(path: str | os.PathLike) -> str:
    """'mote' (saved MoTEModel), 'onnx' (exported graphs) or 'dense' (a transformers checkpoint)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model path {p} does not exist")
    if not p.is_dir():
        raise NotADirectoryError(f"model path {p} is a file; expected a model directory")
    if (p / "mote_config.json").is_file():
        return "mote"
    if (p / "manifest.json").is_file():
        return "onnx"
    if (p / "config.json").is_file():
        return "dense"
    raise ValueError(f"{p} is not a model directory: no mote_config.json, manifest.json or config.json inside")


def load_encoder(spec: str | os.PathLike | None = None, *, use_prefixes: bool = True, **kwargs):
    """Open an encoder. None/'base' -> the embedded dense base; a directory -> by what it holds.

    A dense checkpoint is wrapped as `MoTEModel.dense` (same API, no experts) so it can be compared
    task-for-task; pass `use_prefixes=False` for the plain base as published.
    """
    if spec is None or (isinstance(spec, str) and spec in EMBEDDED):
        from .model import MoTEModel

        return MoTEModel.dense(None, use_prefixes=use_prefixes)
    kind = encoder_kind(spec)
    if kind == "onnx":
        from .runtime.onnx_encoder import OnnxEncoder

        return OnnxEncoder(spec, **kwargs)
    from .model import MoTEModel

    if kind == "mote":
        return MoTEModel.from_pretrained(spec, **kwargs)
    return MoTEModel.dense(spec, use_prefixes=use_prefixes, **kwargs)


MODEL_ENV = "MOTE_RAG_MODEL"


def describe_encoder(encoder) -> str:
    """Where an in-memory encoder came from (its folder when it knows it), for reprs and index headers."""
    for attr in ("path", "source"):
        value = getattr(encoder, attr, None)
        if value:
            return os.fspath(value)
    return type(encoder).__name__


def resolve_encoder(model, *, owner: str = "mote-rag"):
    """(encoder, description) from a path, an encoder object, or $MOTE_RAG_MODEL; a clear error otherwise.

    What the LangChain and LlamaIndex classes accept as `model`.
    """
    if model is None:
        model = os.environ.get(MODEL_ENV)
        if not model:
            raise ValueError(
                f"{owner} needs a model: pass model=<exported ONNX folder, saved MoTE folder, or an "
                f"encoder object>, or set ${MODEL_ENV} to a model folder"
            )
    if isinstance(model, (str, os.PathLike)):
        return load_encoder(model), os.fspath(model)
    if callable(getattr(model, "encode", None)) and hasattr(model, "tasks"):
        return model, describe_encoder(model)
    raise TypeError(
        f"model must be a model folder path or a mote-rag encoder (with .encode and .tasks), "
        f"got {type(model).__name__}"
    )
