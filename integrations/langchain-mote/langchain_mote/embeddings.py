"""LangChain embeddings backed by a MoTE encoder: documents go through the search_document expert, queries
through the search_query expert, with no prompt plumbing on the caller's side.

The encoder is an exported ONNX folder (the default; torch-free), a saved MoTE model folder, or an encoder
object already in memory (`MoTEModel`, `OnnxEncoder`, anything with the mote-rag encoder protocol).
Embeddings are L2-normalised, so with langchain_community's FAISS store use
`distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT`: `similarity_search_with_score` then gives cosine
similarities (for relevance scores in [0, 1] also pass `relevance_score_fn=lambda s: (1.0 + s) / 2.0`).
"""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Optional

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from mote_rag.encoders import MODEL_ENV, resolve_encoder


def _open_encoder(model: Any) -> tuple[Any, str]:
    return resolve_encoder(model, owner="MoTEEmbeddings")


def _check_task(encoder: Any, task: str, role: str) -> str:
    """Resolve a task name or alias against the encoder's task set (canonical name back)."""
    try:
        return encoder.tasks.get(task).name
    except ValueError as exc:
        raise ValueError(f"{role}: {exc}") from None


class MoTEEmbeddings(BaseModel, Embeddings):
    """MoTE embeddings for LangChain: `embed_documents` -> search_document, `embed_query` -> search_query.

    Example:
        ```python
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy
        from langchain_mote import MoTEEmbeddings

        emb = MoTEEmbeddings("path/to/onnx-export")          # or a saved MoTE folder / MoTEModel object
        store = FAISS.from_texts(texts, emb, distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT)
        store.similarity_search("what causes anaemia?", k=4)
        ```

    Override the tasks for other pipelines, e.g. `MoTEEmbeddings(path, document_task="clustering")`.
    Async methods run the encoder in a worker thread, so the event loop stays responsive.
    """

    model: Optional[str] = Field(
        default=None,
        description=f"Model folder (exported ONNX or saved MoTE) or the source of the encoder object given; "
        f"defaults to ${MODEL_ENV}.",
    )
    query_task: str = Field(default="search_query", description="Task (expert) used by embed_query.")
    document_task: str = Field(default="search_document", description="Task (expert) used by embed_documents.")
    batch_size: int = Field(default=32, gt=0, description="Texts per forward pass.")
    show_progress: bool = Field(default=False, description="Show a progress bar while embedding documents.")

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    _encoder: Any = PrivateAttr(default=None)
    # One encode at a time per instance: two forwards on the same cores only oversubscribe them, and an encoder
    # object need not be thread-safe (HF fast tokenizers can raise "Already borrowed" when shared).
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model: Any = None, /, **kwargs: Any):
        if model is not None and "model" in kwargs:
            raise TypeError("model given both positionally and by keyword")
        given = kwargs.pop("model", model)
        encoder, description = _open_encoder(given)
        super().__init__(model=description, **kwargs)
        self._encoder = encoder
        _check_task(encoder, self.query_task, "query_task")
        _check_task(encoder, self.document_task, "document_task")

    # ------------------------------------------------------------------ identity
    @property
    def encoder(self) -> Any:
        """The underlying mote-rag encoder (MoTEModel, OnnxEncoder, ...)."""
        return self._encoder

    @property
    def dim(self) -> int:
        return int(self._encoder.dim)

    @property
    def fingerprint(self) -> str:
        """The encoder's fingerprint: what a saved index must have been built with."""
        return str(self._encoder.fingerprint)

    # ------------------------------------------------------------------ sync API
    def _encode(self, texts: list[str], task: str, show_progress: bool) -> list[list[float]]:
        if isinstance(texts, str):
            raise TypeError("embed_documents takes a list of strings; use embed_query for one string")
        texts = list(texts)
        if not texts:
            return []
        with self._lock:
            vectors = self._encoder.encode(
                texts, task=task, batch_size=self.batch_size, show_progress_bar=show_progress
            )
        return vectors.tolist()  # float32 -> Python floats, exactly

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages with the document task's expert (search_document unless overridden)."""
        return self._encode(texts, self.document_task, self.show_progress)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the query task's expert (search_query unless overridden)."""
        if not isinstance(text, str):
            raise TypeError(f"embed_query takes one string, got {type(text).__name__}")
        return self._encode([text], self.query_task, False)[0]

    # ------------------------------------------------------------------ async API
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """`embed_documents` in a worker thread: the event loop keeps running while the model computes."""
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        """`embed_query` in a worker thread."""
        return await asyncio.to_thread(self.embed_query, text)
