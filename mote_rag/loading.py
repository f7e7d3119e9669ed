"""Opening an encoder: from a folder (by the layout it holds), the embedded base, an object, or $MOTE_RAG_MODEL.

    LAYOUTS   one row per folder layout: the file that marks it, its kind, and how it opens
        mote_config.json  -> "mote"  (a saved MoTEModel)        MoTEModel.from_pretrained
        manifest.json     -> "onnx"  (an ONNX export)           OnnxEncoder
        config.json       -> "dense" (a transformers checkpoint) MoTEModel.dense (pickled weights refused first)

This module sits above every backend (mote_rag.model, mote_rag.runtime) and below the CLI and the framework
integrations; the backends import mote_rag.encoders, never this module (import-linter's layers contract in
pyproject.toml keeps it so).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .encoders import Encoder, check_encoder

logger = logging.getLogger(__name__)

__all__ = ["EMBEDDED", "MODEL_ENV", "LAYOUTS", "Layout", "encoder_kind", "load_encoder", "open_encoder"]

EMBEDDED = ("base", "embedded", "default")
MODEL_ENV = "MOTE_RAG_MODEL"


def _open_mote(path, *, use_prefixes: bool = True, **kwargs):  # noqa: ARG001 - a saved model records its prefixes
    from .model import MoTEModel

    return MoTEModel.from_pretrained(path, **kwargs)


def _open_onnx(path, *, use_prefixes: bool = True, **kwargs):  # noqa: ARG001 - an export records its prefixes
    from .runtime.onnx_encoder import OnnxEncoder

    return OnnxEncoder(path, **kwargs)


def _open_dense(path, *, use_prefixes: bool = True, **kwargs):
    from .model import MoTEModel

    return MoTEModel.dense(path, use_prefixes=use_prefixes, **kwargs)


def _check_dense(path: Path) -> None:
    from .weights import check_safe_weights

    check_safe_weights(path)  # pickled weights are refused before transformers or torch open them


@dataclass(frozen=True)
class Layout:
    """A model folder layout: `marker` (a file inside) makes the folder a `kind`, opened by `opener`."""

    kind: str
    marker: str
    opener: Callable[..., Any]
    check: Callable[[Path], None] | None = None


LAYOUTS: tuple[Layout, ...] = (  # first match wins: a saved MoTE folder also holds config.json
    Layout("mote", "mote_config.json", _open_mote),
    Layout("onnx", "manifest.json", _open_onnx),
    Layout("dense", "config.json", _open_dense, _check_dense),
)


def _layout(path: str | os.PathLike) -> Layout:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model path {p} does not exist")
    if not p.is_dir():
        raise NotADirectoryError(f"model path {p} is a file; expected a model directory")
    for layout in LAYOUTS:
        if (p / layout.marker).is_file():
            if layout.check is not None:
                layout.check(p)
            return layout
    *first, last = [layout.marker for layout in LAYOUTS]
    raise ValueError(f"{p} is not a model directory: no {', '.join(first)} or {last} inside")


def encoder_kind(path: str | os.PathLike) -> str:
    """'mote' (saved MoTEModel), 'onnx' (exported graphs) or 'dense' (a transformers checkpoint)."""
    return _layout(path).kind


def load_encoder(spec: str | os.PathLike | None = None, *, use_prefixes: bool = True, **kwargs) -> Encoder:
    """Open an encoder. None/'base' -> the embedded dense base; a directory -> by the layout it holds (LAYOUTS).

    A dense checkpoint is wrapped as `MoTEModel.dense` (same API, no experts) so it can be compared
    task-for-task; pass `use_prefixes=False` for the plain base as published.
    """
    if spec is None or (isinstance(spec, str) and spec in EMBEDDED):
        return _open_dense(None, use_prefixes=use_prefixes)
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"model must be a folder path, got {type(spec).__name__}")
    layout = _layout(spec)
    logger.debug("opening %s as a %s encoder", spec, layout.kind)
    return layout.opener(spec, use_prefixes=use_prefixes, **kwargs)


def open_encoder(model: Any, *, owner: str = "mote-rag") -> Encoder:
    """An encoder from a folder path, an encoder object, or $MOTE_RAG_MODEL; a clear error otherwise.

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
        return load_encoder(model)
    try:
        return check_encoder(model, f"{owner} model")
    except TypeError as exc:
        raise TypeError(
            f"model must be a model folder path or a mote-rag encoder, got {type(model).__name__} ({exc})"
        ) from None
