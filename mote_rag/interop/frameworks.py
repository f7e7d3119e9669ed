"""What the LangChain and LlamaIndex classes share (integrations/): `TaskEmbedder`, an opened encoder whose task for
each role (query, document) was checked when it was opened, and plain float lists out.

No lock here: one encode at a time is the encoder's own rule (mote_rag.encoders.EncoderBase.encode).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any

from ..inputs import check_batch_size, check_text, check_text_list
from ..loading import MODEL_ENV, open_encoder

__all__ = ["TaskEmbedder", "MODEL_ENV"]


class TaskEmbedder:
    """An encoder opened for a framework class, its role tasks checked, its vectors as Python floats."""

    def __init__(self, model: Any, roles: dict[str, str], owner: str):
        """`roles`: field name -> task name (e.g. {"query_task": "search_query"}), validated now."""
        self.encoder = open_encoder(model, owner=owner)
        # the folder as the caller wrote it (or $MOTE_RAG_MODEL), else where the encoder object came from
        given = model if model is not None else os.environ.get(MODEL_ENV)
        self.description = os.fspath(given if isinstance(given, (str, os.PathLike)) else self.encoder.source)
        for role, task in roles.items():
            self.check_task(task, role)

    def check_task(self, task: str, role: str) -> str:
        """Canonical task name of `task` (a name or alias), or an error that names the role."""
        try:
            return self.encoder.tasks.get(task).name
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{role}: {exc}") from None

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    @property
    def fingerprint(self) -> str:
        return str(self.encoder.fingerprint)

    def vectors(self, texts: Sequence[str], task: str, batch_size: int, show_progress: bool = False):
        """float32 (n, dim) vectors of `texts` on `task`'s path. The texts are checked once, by the encoder's
        `encode` (mote_rag.inputs); the one rule added here is that one str is refused, not taken as one text."""
        if not isinstance(texts, list):
            texts = check_text_list(texts)  # one str, a set, a dict ... refused here, naming the problem
        batch_size = check_batch_size(batch_size)
        return self.encoder.encode(texts, task=task, batch_size=batch_size, show_progress_bar=show_progress)

    def embed(self, texts: Sequence[str], task: str, batch_size: int, show_progress: bool = False) -> list[list[float]]:
        """Vectors of `texts` (a list: one str is refused, not split into characters) on `task`'s path."""
        return self.vectors(texts, task, batch_size, show_progress).tolist()  # float32 -> Python floats, exactly

    def embed_one(self, text: str, task: str, batch_size: int) -> list[float]:
        """The vector of one text (a query); anything but one str is a TypeError."""
        return self.embed([check_text(text)], task, batch_size)[0]

    async def aembed(
        self, texts: Sequence[str], task: str, batch_size: int, show_progress: bool = False
    ) -> list[list[float]]:
        """`embed` in a worker thread, so the event loop keeps running while the model computes."""
        texts = check_text_list(texts)  # fail in the caller's frame, not the worker's
        return await asyncio.to_thread(self.embed, texts, task, batch_size, show_progress)

    async def aembed_one(self, text: str, task: str, batch_size: int) -> list[float]:
        return (await self.aembed([check_text(text)], task, batch_size))[0]
