"""mote-rag: Mixture of Task Experts encoders for retrieval-augmented generation.

texts -> task -> expert path -> embedding -> index. Heavy modules (torch, faiss) load on first use, so
`from mote_rag import OnnxEncoder` never imports torch.
"""

from __future__ import annotations

from .tasks import DEFAULT_TASKS, Task, TaskSet

__version__ = "0.1.0"

_LAZY = {
    "Encoder": ("mote_rag.encoders", "Encoder"),
    "EncoderBase": ("mote_rag.encoders", "EncoderBase"),
    "load_encoder": ("mote_rag.encoders", "load_encoder"),
    "MoTEModel": ("mote_rag.model", "MoTEModel"),
    "embedded_base_path": ("mote_rag.default_base", "embedded_base_path"),
    "OnnxEncoder": ("mote_rag.runtime.onnx_encoder", "OnnxEncoder"),
    "FaissIndex": ("mote_rag.index.faiss_index", "FaissIndex"),
}

__all__ = ["Task", "TaskSet", "DEFAULT_TASKS", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mote_rag' has no attribute {name!r}")
