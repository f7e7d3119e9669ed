"""Evaluate a plain sentence-transformers model with the same suite as MoTE/ONNX encoders.

A plain model has no task paths: every task gets the same model, optionally with a text prefix per task
(`prompts={"search_query": "query: ", ...}`). The fingerprint hashes weights + prompts + max_seq_length so
cached embeddings never mix models.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Mapping, Sequence

import numpy as np


class SentenceTransformerEncoder:
    def __init__(self, model, prompts: Mapping[str, str] | None = None, normalize: bool = True, device: str | None = "cpu"):
        from sentence_transformers import SentenceTransformer

        self.model = model if isinstance(model, SentenceTransformer) else SentenceTransformer(os.fspath(model), device=device)
        self.prompts = dict(prompts or {})
        self.normalize = normalize
        self.source = "sentence-transformers" if isinstance(model, SentenceTransformer) else os.fspath(model)
        self.tasks = None
        self._fingerprint: str | None = None

    @property
    def dim(self) -> int:
        getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            h = hashlib.sha256(b"sentence-transformers")
            h.update(json.dumps({"prompts": self.prompts, "normalize": self.normalize,
                                 "max_seq_length": self.max_seq_length}, sort_keys=True).encode())
            for key, tensor in sorted(self.model.state_dict().items()):
                h.update(key.encode())
                h.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:32]
        return self._fingerprint

    def encode(self, texts: Sequence[str] | str, task: str = "search_document", batch_size: int = 32,
               show_progress_bar: bool = False, **_ignored) -> np.ndarray:
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        prefix = self.prompts.get(task, "")
        emb = self.model.encode([prefix + t for t in items], batch_size=batch_size, show_progress_bar=show_progress_bar,
                                normalize_embeddings=self.normalize, convert_to_numpy=True)
        emb = np.asarray(emb, dtype=np.float32)
        return emb[0] if single else emb
