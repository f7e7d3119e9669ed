"""What the LangChain and LlamaIndex embedding classes share: an opened encoder, task names checked up front,
one encode at a time, and plain float lists out (the type both frameworks store).

Each framework class keeps only its own naming (embed_documents / _get_text_embeddings ...) on top of this.
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Sequence

from .encoders import resolve_encoder


class TaskEmbedder:
    """An encoder whose task names for each role (query, document) were checked when it was opened.

    The lock serialises encodes on one instance: two forwards on the same cores only oversubscribe them,
    and an encoder object need not be thread-safe (HF fast tokenizers raise "Already borrowed" when shared).
    """

    def __init__(self, model: Any, roles: dict[str, str], owner: str):
        """`roles`: field name -> task name (e.g. {"query_task": "search_query"}), validated now, not at the
        first encode."""
        self.encoder, self.description = resolve_encoder(model, owner=owner)
        for role, task in roles.items():
            self.check_task(task, role)
        self._lock = threading.Lock()

    def check_task(self, task: str, role: str) -> str:
        """Canonical task name of `task` (a name or alias), or a ValueError that names the role."""
        try:
            return self.encoder.tasks.get(task).name
        except ValueError as exc:
            raise ValueError(f"{role}: {exc}") from None

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    @property
    def fingerprint(self) -> str:
        return str(self.encoder.fingerprint)

    def embed(self, texts: Sequence[str], task: str, batch_size: int,
              show_progress: bool = False) -> list[list[float]]:
        """Vectors of `texts` through `task`'s expert; [] for no texts."""
        if isinstance(texts, str):
            raise TypeError("expected a list of strings, got one string; embed a query with the query method")
        texts = list(texts)
        if not texts:
            return []
        with self._lock:
            vectors = self.encoder.encode(texts, task=task, batch_size=batch_size,
                                          show_progress_bar=show_progress)
        return vectors.tolist()  # float32 -> Python floats, exactly

    async def aembed(self, texts: Sequence[str], task: str, batch_size: int,
                     show_progress: bool = False) -> list[list[float]]:
        """`embed` in a worker thread, so the event loop keeps running while the model computes."""
        return await asyncio.to_thread(self.embed, texts, task, batch_size, show_progress)
