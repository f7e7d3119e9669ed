"""LlamaIndex embeddings backed by a MoTE encoder: text nodes go through the search_document expert, queries
through the search_query expert, with no instruction plumbing on the caller's side.

The encoder is an exported ONNX folder (the default; torch-free), a saved MoTE model folder, or an encoder
object already in memory (`MoTEModel`, `OnnxEncoder`, anything with the mote-rag encoder protocol).
Embeddings are L2-normalised: with llama-index-vector-stores-faiss use `faiss.IndexFlatIP(dim)` (inner
product = cosine similarity, and its scores read "higher is better" as LlamaIndex expects).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.storage.kvstore.types import BaseKVStore

from mote_rag.inputs import check_text, check_text_list
from mote_rag.interop.frameworks import MODEL_ENV, TaskEmbedder

DEFAULT_MOTE_BATCH_SIZE = 32
CACHE_VALUE_KEY = "embedding"


def _cached_vector(entry: dict | None) -> Embedding | None:
    """The vector of a cache entry ({key: vector}, as llama-index-core writes them too), or None."""
    return None if not entry else next(iter(entry.values()))


def _missing(texts: list[str], vectors: list[Embedding | None]) -> list[str]:
    """The texts without a cached vector, each once, in order."""
    return list(dict.fromkeys(t for t, v in zip(texts, vectors) if v is None))


def _filled(texts: list[str], vectors: list[Embedding | None], new: dict) -> list[Embedding]:
    return [new[t] if v is None else v for t, v in zip(texts, vectors)]


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

    Caching: `MoTEEmbedding(path, embeddings_cache=SimpleKVStore())` (or any BaseKVStore, given here or assigned
    later) is namespaced: every read and write, sync, async and batch, goes to the collection
    `embeddings/mote/<fingerprint>/<task>`, so a text embedded as a node never comes back as a query vector (and
    vice versa), and two models sharing a store keep their own entries. llama-index-core's own cache keys by the
    text alone in one collection; to keep it out of the way the store is held by this class (`cache`) and
    BaseEmbedding's `embeddings_cache` field stays None.
    """

    model: str | None = Field(
        default=None,
        description=f"Model folder (exported ONNX or saved MoTE) or the source of the encoder object given; "
        f"defaults to ${MODEL_ENV}.",
    )
    query_task: str = Field(default="search_query", description="Task (expert) for queries.")
    text_task: str = Field(default="search_document", description="Task (expert) for texts and nodes.")
    show_progress: bool = Field(default=False, description="Show the encoder's progress bar on text batches.")

    _embedder: TaskEmbedder = PrivateAttr(default=None)
    _cache: BaseKVStore | None = PrivateAttr(default=None)

    def __init__(self, model: Any = None, /, **kwargs: Any):
        if model is not None and "model" in kwargs:
            raise TypeError("model given both positionally and by keyword")
        if "document_task" in kwargs:  # the LangChain integration's name for the same thing
            kwargs["text_task"] = kwargs.pop("document_task")
        if "batch_size" in kwargs:
            kwargs["embed_batch_size"] = kwargs.pop("batch_size")
        kwargs.setdefault("embed_batch_size", DEFAULT_MOTE_BATCH_SIZE)
        embedder = TaskEmbedder(
            kwargs.pop("model", model),
            {
                "query_task": kwargs.get("query_task", "search_query"),
                "text_task": kwargs.get("text_task", "search_document"),
            },
            owner="MoTEEmbedding",
        )
        kwargs.setdefault("model_name", embedder.description)
        cache = kwargs.pop("embeddings_cache", None)
        super().__init__(model=embedder.description, **kwargs)
        self._embedder = embedder
        self.embeddings_cache = cache

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "embeddings_cache":  # ours to namespace: BaseEmbedding would key it by the text alone
            if value is not None and not isinstance(value, BaseKVStore):
                raise TypeError(f"embeddings_cache must be a llama_index BaseKVStore, got {type(value).__name__}")
            self._cache = value
            return
        super().__setattr__(name, value)

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

    @property
    def cache(self) -> BaseKVStore | None:
        """The embeddings cache given as `embeddings_cache` (None: no caching)."""
        return self._cache

    def cache_collection(self, task_field: str) -> str:
        """`embeddings/mote/<fingerprint>/<task>`: the cache collection of "query_task" or "text_task"."""
        return f"embeddings/mote/{self.fingerprint}/{self._embedder.check_task(getattr(self, task_field), task_field)}"

    # ------------------------------------------------------------------ every encode goes through these two
    def _embed(self, texts: list[str], task_field: str, progress: bool = False) -> list[Embedding]:
        task, cache = getattr(self, task_field), self._cache
        if cache is None:
            return self._embedder.embed(texts, task, self.embed_batch_size, progress)
        collection = self.cache_collection(task_field)
        vectors = [_cached_vector(cache.get(t, collection=collection)) for t in texts]
        missing = _missing(texts, vectors)
        if not missing:
            return vectors
        new = dict(zip(missing, self._embedder.embed(missing, task, self.embed_batch_size, progress)))
        cache.put_all([(t, {CACHE_VALUE_KEY: v}) for t, v in new.items()], collection=collection)
        return _filled(texts, vectors, new)

    async def _aembed(self, texts: list[str], task_field: str, progress: bool = False) -> list[Embedding]:
        task, cache = getattr(self, task_field), self._cache
        if cache is None:
            return await self._embedder.aembed(texts, task, self.embed_batch_size, progress)
        collection = self.cache_collection(task_field)
        vectors = [_cached_vector(await cache.aget(t, collection=collection)) for t in texts]
        missing = _missing(texts, vectors)
        if not missing:
            return vectors
        new = dict(zip(missing, await self._embedder.aembed(missing, task, self.embed_batch_size, progress)))
        await cache.aput_all([(t, {CACHE_VALUE_KEY: v}) for t, v in new.items()], collection=collection)
        return _filled(texts, vectors, new)

    # ------------------------------------------------------------------ public entry points: inputs checked first
    # BaseEmbedding iterates what it is given, so a str would be embedded character by character and a dict by
    # its keys; checking here gives the error mote-rag gives everywhere else.
    def get_query_embedding(self, query: str) -> Embedding:
        return super().get_query_embedding(check_text(query, "query"))

    async def aget_query_embedding(self, query: str) -> Embedding:
        return await super().aget_query_embedding(check_text(query, "query"))

    def get_text_embedding(self, text: str) -> Embedding:
        return super().get_text_embedding(check_text(text))

    async def aget_text_embedding(self, text: str) -> Embedding:
        return await super().aget_text_embedding(check_text(text))

    def get_text_embedding_batch(self, texts: list[str], show_progress: bool = False, **kwargs: Any) -> list[Embedding]:
        return super().get_text_embedding_batch(check_text_list(texts), show_progress=show_progress, **kwargs)

    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        return await super().aget_text_embedding_batch(check_text_list(texts), show_progress=show_progress, **kwargs)

    # ------------------------------------------------------------------ sync API
    def _get_query_embedding(self, query: str) -> Embedding:
        return self._embed([query], "query_task")[0]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._embed([text], "text_task")[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._embed(texts, "text_task", self.show_progress)

    # ------------------------------------------------------------------ async API (worker thread)
    async def _aget_query_embedding(self, query: str) -> Embedding:
        return (await self._aembed([query], "query_task"))[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._aembed([text], "text_task"))[0]

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self._aembed(texts, "text_task", self.show_progress)
