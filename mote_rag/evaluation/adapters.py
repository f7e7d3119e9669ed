"""Evaluate a plain sentence-transformers model with the same suite as MoTE/ONNX encoders.

A plain model has no task paths: every task runs the same model, optionally with a text prefix per task
(`prompts={"search_query": "query: ", ...}`, keyed by mote-rag task names). The fingerprint hashes weights +
prompts + max_seq_length so cached embeddings never mix models.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from ..encoders import EncoderBase
from ..tasks import DEFAULT_TASKS, Task, TaskSet


class SentenceTransformerEncoder(EncoderBase):
    """A `SentenceTransformer` (object or folder) as a mote-rag encoder; only the batch step is its own."""

    def __init__(
        self, model, prompts: Mapping[str, str] | None = None, normalize: bool = True, device: str | None = "cpu"
    ):
        from sentence_transformers import SentenceTransformer

        given = isinstance(model, SentenceTransformer)
        self.model = model if given else SentenceTransformer(os.fspath(model), device=device)
        self.prompts = dict(prompts or {})
        names = [t.name for t in DEFAULT_TASKS]
        unknown = [k for k in self.prompts if k not in names]
        if unknown:
            raise ValueError(f"prompts: unknown task(s) {unknown}; valid tasks: {', '.join(names)}")
        self.tasks = TaskSet(replace(t, prefix=self.prompts.get(t.name, "")) for t in DEFAULT_TASKS)
        self.normalize = normalize
        self.source = "sentence-transformers" if given else os.fspath(model)
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
            h.update(
                json.dumps(
                    {"prompts": self.prompts, "normalize": self.normalize, "max_seq_length": self.max_seq_length},
                    sort_keys=True,
                ).encode()
            )
            for key, tensor in sorted(self.model.state_dict().items()):
                h.update(key.encode())
                h.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
            self._fingerprint = h.hexdigest()[:32]
        return self._fingerprint

    def _embed_batch(self, texts: list[str], tasks: list[Task], normalize: bool) -> np.ndarray:  # noqa: ARG002 - encoder hook; a dense model has one path for every task
        emb = self.model.encode(
            texts, batch_size=len(texts), show_progress_bar=False, normalize_embeddings=normalize, convert_to_numpy=True
        )
        return np.asarray(emb, dtype=np.float32)
