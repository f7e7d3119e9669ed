"""LlamaIndex embeddings backed by a MoTE encoder: text nodes go through the search_document expert, queries
through the search_query expert, with no instruction plumbing on the caller's side.

The encoder is an exported ONNX folder (the default; torch-free), a saved MoTE model folder, or an encoder
object already in memory (`MoTEModel`, `OnnxEncoder`, anything with the mote-rag encoder protocol).
Embeddings are L2-normalised: with llama-index-vector-stores-faiss use `faiss.IndexFlatIP(dim)` (inner
product = cosine similarity, and its scores read "higher is better" as LlamaIndex expects).
"""
from __future__ import annotations

from typing import Any, List, Optional

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr

from mote_rag.encoders import MODEL_ENV
from mote_rag.task_embedder import TaskEmbedder

DEFAULT_MOTE_BATCH_SIZE = 32


class MoTEEmbedding(BaseEmbedding):
    """MoTE embeddings for LlamaIndex: queries -> search_query expert, texts/nodes -> search_document expert.

    Example:
        ```python
        import faiss
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.embeddings.mote import MoTEEmbedding
        from llama_index.vector_stores.faiss import FaissVectorStore

        embed_model = MoTEEmbedding("path/to/onnx-export")     # or a saved MoTE folder / MoTEModel object
        store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(embed_model.dim))
        index = VectorStoreIndex(nodes, embed_model=embed_model,
                                 storage_context=StorageContext.from_defaults(vector_store=store))
        index.as_retriever(similarity_top_k=5).retrieve("what causes anaemia?")
        ```

    Override the tasks for other pipelines, e.g. `MoTEEmbedding(path, text_task="clustering")`. `embed_batch_size`
    (alias `batch_size`) is both LlamaIndex's chunk size and the encoder's forward batch. Async methods run
    the encoder in a worker thread, so the event loop stays responsive.
    """

    model: Optional[str] = Field(
        default=None,
        description=f"Model folder (exported ONNX or saved MoTE) or the source of the encoder object given; "
        f"defaults to ${MODEL_ENV}.",
    )
    query_task: str = Field(default="search_query", description="Task (expert) for queries.")
    text_task: str = Field(default="search_document", description="Task (expert) for texts and nodes.")
    show_progress: bool = Field(default=False, description="Show the encoder's progress bar on text batches.")

    _embedder: TaskEmbedder = PrivateAttr(default=None)

    def __init__(self, model: Any = None, /, **kwargs: Any):
        if model is not None and "model" in kwargs:
            raise TypeError("model given both positionally and by keyword")
        if "document_task" in kwargs:  # the LangChain integration's name for the same thing
            kwargs["text_task"] = kwargs.pop("document_task")
        if "batch_size" in kwargs:
            kwargs["embed_batch_size"] = kwargs.pop("batch_size")
        kwargs.setdefault("embed_batch_size", DEFAULT_MOTE_BATCH_SIZE)
        embedder = TaskEmbedder(kwargs.pop("model", model),
                                {"query_task": kwargs.get("query_task", "search_query"),
                                 "text_task": kwargs.get("text_task", "search_document")},
                                owner="MoTEEmbedding")
        kwargs.setdefault("model_name", embedder.description)
        super().__init__(model=embedder.description, **kwargs)
        self._embedder = embedder

    @classmethod
    def class_name(cls) -> str:
        return "MoTEEmbedding"

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

    # ------------------------------------------------------------------ sync API
    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embedder.embed([query], self.query_task, self.embed_batch_size)[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embedder.embed([text], self.text_task, self.embed_batch_size)[0]

    def _get_text_embeddings(self, texts: List[str]) -> List[Embedding]:
        return self._embedder.embed(texts, self.text_task, self.embed_batch_size, self.show_progress)

    # ------------------------------------------------------------------ async API (worker thread)
    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._embedder.aembed([query], self.query_task, self.embed_batch_size))[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._embedder.aembed([text], self.text_task, self.embed_batch_size))[0]

    async def _aget_text_embeddings(self, texts: List[str]) -> List[Embedding]:
        return await self._embedder.aembed(texts, self.text_task, self.embed_batch_size, self.show_progress)
