"""LangChain embeddings backed by a MoTE encoder: documents go through the search_document expert, queries
through the search_query expert, with no prompt plumbing on the caller's side.

The encoder is an exported ONNX folder (the default; torch-free), a saved MoTE model folder, or an encoder
object already in memory (`MoTEModel`, `OnnxEncoder`, anything with the mote-rag encoder protocol).
Embeddings are L2-normalised, so with langchain_community's FAISS store use
`distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT`: `similarity_search_with_score` then gives cosine
similarities (for relevance scores in [0, 1] also pass `relevance_score_fn=lambda s: (1.0 + s) / 2.0`).
"""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from mote_rag.interop.frameworks import MODEL_ENV, TaskEmbedder


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

    Caching: use `langchain_mote.cache_backed(emb, store)`, not
    `CacheBackedEmbeddings.from_bytes_store(emb, store, query_embedding_cache=True)`. The latter keys queries
    and documents by the text alone in one namespace, so a text embedded as a document and later asked as a
    query gets the search_document vector back (and vice versa), and two models sharing the store collide.
    `cache_backed` keeps each role under its own namespace, `mote:<fingerprint>:<task>:`.
    """

    model: str | None = Field(
        default=None,
        description=f"Model folder (exported ONNX or saved MoTE) or the source of the encoder object given; "
        f"defaults to ${MODEL_ENV}.",
    )
    query_task: str = Field(default="search_query", description="Task (expert) used by embed_query.")
    document_task: str = Field(default="search_document", description="Task (expert) used by embed_documents.")
    batch_size: int = Field(default=32, gt=0, description="Texts per forward pass.")
    show_progress: bool = Field(default=False, description="Show a progress bar while embedding documents.")

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    _embedder: TaskEmbedder = PrivateAttr(default=None)

    def __init__(self, model: Any = None, /, **kwargs: Any):
        if model is not None and "model" in kwargs:
            raise TypeError("model given both positionally and by keyword")
        embedder = TaskEmbedder(
            kwargs.pop("model", model),
            {
                "query_task": kwargs.get("query_task", "search_query"),
                "document_task": kwargs.get("document_task", "search_document"),
            },
            owner="MoTEEmbeddings",
        )
        super().__init__(model=embedder.description, **kwargs)
        self._embedder = embedder

    # ------------------------------------------------------------------ identity
    @property
    def encoder(self) -> Any:
        """The underlying mote-rag encoder (MoTEModel, OnnxEncoder, ...)."""
        return self._embedder.encoder

    @property
    def dim(self) -> int:
        return self._embedder.dim

    @property
    def fingerprint(self) -> str:
        """The encoder's fingerprint: what a saved index must have been built with."""
        return self._embedder.fingerprint

    def cache_namespace(self, role: str) -> str:
        """`"mote:<fingerprint>:<task>:"` for `role` "query" or "document": the key prefix that keeps a cache's
        entries apart by model and expert (see `cache_backed`)."""
        field = {"query": "query_task", "document": "document_task"}[role]
        return f"mote:{self.fingerprint}:{self._embedder.check_task(getattr(self, field), field)}:"

    def with_tasks(self, *, query_task: str | None = None, document_task: str | None = None) -> MoTEEmbeddings:
        """The same encoder (not reloaded) with other tasks for its roles: how `MoTEVectorStore` sends a collection's
        queries to the query expert its index records (e.g. "search_query@medquad")."""
        update = {}
        for field, task in (("query_task", query_task), ("document_task", document_task)):
            if task is not None:
                update[field] = self._embedder.check_task(task, field)
        clone = self.model_copy(update=update)
        clone._embedder = self._embedder
        return clone

    # ------------------------------------------------------------------ sync API
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed passages with the document task's expert (search_document unless overridden)."""
        return self._embedder.embed(texts, self.document_task, self.batch_size, self.show_progress)

    def embed_query(self, text: str) -> list[float]:
        """Embed one query with the query task's expert (search_query unless overridden)."""
        return self._embedder.embed_one(text, self.query_task, self.batch_size)

    # ------------------------------------------------------------------ async API (worker thread)
    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """`embed_documents` in a worker thread: the event loop keeps running while the model computes."""
        return await self._embedder.aembed(texts, self.document_task, self.batch_size, self.show_progress)

    async def aembed_query(self, text: str) -> list[float]:
        """`embed_query` in a worker thread."""
        return await self._embedder.aembed_one(text, self.query_task, self.batch_size)
