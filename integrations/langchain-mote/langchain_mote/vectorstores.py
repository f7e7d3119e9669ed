"""MoTEVectorStore: a LangChain VectorStore over mote-rag's own indexes (`FaissIndex`, `ShardedIndex`).

What it keeps that langchain_community's FAISS store loses:
- the encoder fingerprint guard: `load_local` refuses an index built by another model (the error
  `FaissIndex.load` gives), and a store refuses embeddings whose tasks differ from the index's;
- mote-rag's on-disk format: atomic, sha256-checked, pickle-free saves (`index.json` + a faiss file);
- HNSW and IVF-PQ (`kind="hnsw"` / `"ivfpq"`), and shard sets written by `mote-rag index --ray`, opened
  read-only (`load_local` opens whichever the folder holds).

Scores are cosine similarities (vectors are L2-normalised), higher is better; relevance scores map them onto
[0, 1] as (1 + cosine) / 2. Documents are embedded with the embeddings' `embed_documents` (search_document
expert) and queries with `embed_query` (search_query expert), so a `cache_backed` wrapper works as it is.

Any LangChain `Embeddings` works; the fingerprint guard needs `MoTEEmbeddings` (or a `cache_backed` /
CacheBackedEmbeddings wrapper around one). An index built with other embeddings records no fingerprint and
only opens with embeddings that are not MoTE either.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from langchain_mote.embeddings import MoTEEmbeddings
from mote_rag.index import EncoderMismatchError, FaissIndex, Hit
from mote_rag.index.faiss_index import metadata_matcher
from mote_rag.index.header import EXTERNAL
from mote_rag.index.ids import new_id
from mote_rag.index.params import check_kind_params
from mote_rag.index.persistence import check_compatible
from mote_rag.index.sharded import ShardedIndex, open_index, read_any_header
from mote_rag.inputs import check_text_list

Filter = dict | Callable[[dict], bool]
DEFAULT_K = 4
DEFAULT_FETCH_K = 20


def mote_embeddings_of(embedding: Any) -> MoTEEmbeddings | None:
    """The MoTEEmbeddings inside `embedding` (itself, or under CacheBackedEmbeddings' `underlying_embeddings`)."""
    for _ in range(8):  # wrappers around wrappers, but never a cycle
        if embedding is None or isinstance(embedding, MoTEEmbeddings):
            return embedding
        embedding = getattr(embedding, "underlying_embeddings", None)
    return None


def _document(hit: Hit) -> Document:
    return Document(id=hit.id, page_content=hit.text or "", metadata=dict(hit.metadata))


class MoTERetriever(VectorStoreRetriever):
    """`MoTEVectorStore.as_retriever()`: LangChain's VectorStoreRetriever that also takes `k` (and any other
    search argument such as `filter` or `fetch_k`) directly, e.g. `MoTERetriever(vectorstore=store, k=3)`."""

    def __init__(self, *, k: int | None = None, filter: Filter | None = None, **kwargs: Any):
        search_kwargs = dict(kwargs.pop("search_kwargs", None) or {})
        if k is not None:
            search_kwargs["k"] = k
        if filter is not None:
            search_kwargs["filter"] = filter
        super().__init__(search_kwargs=search_kwargs, **kwargs)


class MoTEVectorStore(VectorStore):
    """LangChain VectorStore over a mote-rag `FaissIndex` (read-write) or `ShardedIndex` (read-only).

    Example:
        ```python
        from langchain_mote import MoTEEmbeddings, MoTEVectorStore

        emb = MoTEEmbeddings("path/to/onnx-export")
        store = MoTEVectorStore.from_texts(texts, emb, metadatas=metas, kind="hnsw")
        store.similarity_search("what causes anaemia?", k=4, filter={"source": "NIH"})
        store.save_local("my-index")                           # atomic, fingerprint recorded, no pickle
        store = MoTEVectorStore.load_local("my-index", emb)    # refuses another model; opens shard sets too
        store.as_retriever(k=4).invoke("what causes anaemia?")
        ```

    `index` is the mote-rag index itself (`store.index.search(...)`, `store.index.info()` work as usual).
    """

    def __init__(
        self,
        embedding: Embeddings,
        index: FaissIndex | ShardedIndex | None = None,
        *,
        kind: str = "flat",
        **kind_params: Any,
    ):
        """`index`: an open FaissIndex or ShardedIndex (checked against `embedding`); None: a new empty
        FaissIndex of `kind` ("flat", "hnsw", "ivfpq") with `kind_params` (see FaissIndex)."""
        self._embedding = embedding
        self._mote = mote_embeddings_of(embedding)
        self._write_lock = threading.RLock()
        self._new_index_args = {"kind": kind, **kind_params}
        if index is None and self._mote is not None:
            index = self._new_index(self._mote.dim)
        elif index is None:
            check_kind_params(kind, kind_params)  # check kind and options now; dim comes with the first vector
        else:
            self._check_index(index)
        self.index: FaissIndex | ShardedIndex | None = index

    # ------------------------------------------------------------------ identity and checks
    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    def _new_index(self, dim: int) -> FaissIndex:
        if self._mote is None:
            return FaissIndex(dim=dim, **self._new_index_args)
        mote = self._mote
        return FaissIndex(
            mote.encoder, document_task=mote.document_task, query_task=mote.query_task, **self._new_index_args
        )

    def _check_index(self, index: FaissIndex | ShardedIndex) -> None:
        """Refuse an index whose vectors these embeddings cannot be compared with."""
        mote = self._mote
        if mote is None:
            if index.fingerprint is not None:
                raise EncoderMismatchError(
                    f"the index was built with mote-rag encoder fingerprint {index.fingerprint}, but the embeddings "
                    f"given ({type(self._embedding).__name__}) are not MoTEEmbeddings of that model; pass "
                    f"MoTEEmbeddings of the model that built it"
                )
            return
        check_compatible(index, mote.encoder, "given to MoTEVectorStore")  # mote_rag.index.persistence
        tasks = mote.encoder.tasks
        for role, field, stored in (
            ("document", "document_task", index.document_task),
            ("query", "query_task", index.query_task),
        ):
            task = tasks.get(getattr(mote, field)).name
            if task not in (stored, tasks.get(stored).base_task):  # a collection's own expert is routed to
                raise EncoderMismatchError(
                    f"the index embeds {role}s with task {stored!r} but the embeddings' {field} is {task!r}: "
                    f"pass MoTEEmbeddings(..., {field}={stored!r})"
                )

    def _routed(self) -> Embeddings:
        """The embeddings to use with this store's index: as given, or the same encoder routed to the task paths
        the index records (a collection's own query expert, `mote-rag adapt --collection`), with no argument."""
        mote, index = self._mote, self.index
        if mote is None or index is None:
            return self._embedding
        tasks = mote.encoder.tasks
        if (tasks.get(mote.query_task).name, tasks.get(mote.document_task).name) == (
            index.query_task,
            index.document_task,
        ):
            return self._embedding
        return mote.with_tasks(query_task=index.query_task, document_task=index.document_task)

    def _writable(self) -> FaissIndex:
        if isinstance(self.index, ShardedIndex):
            raise NotImplementedError(
                "a shard set is opened read-only: to change it, open the shard as a FaissIndex, add/delete, save, "
                "and rewrite the manifest (mote_rag.index.sharded.write_manifest), or rebuild with mote-rag index"
            )
        return self.index

    # ------------------------------------------------------------------ writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict] | None = None,
        *,
        ids: list[str | None] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed `texts` with the document expert and add them; an id already stored is replaced (upsert).

        Ids default to random uuid hex strings (also for None entries). Metadata must be JSON-serialisable.

        One pass into the index: the texts are checked by the index (FaissIndex.upsert) and embedded by its
        encoder, which normalises them once, and each vector is inserted once. Embeddings that are not the index's
        own encoder (a cache wrapper, other LangChain embeddings) embed first, and the index checks the rows once
        (FaissIndex.upsert_embeddings)."""
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)}")
        if self.index is not None:
            self._writable()  # a shard set refuses before anything is embedded
        if not isinstance(texts, list):
            texts = check_text_list(texts)  # an iterable once consumed; one str refused, not split into characters
        if ids is not None:
            if len(ids) != len(texts):
                raise ValueError(f"got {len(texts)} texts but {len(ids)} ids")
            ids = [new_id() if i is None else str(i) for i in ids]
        if not texts:
            return []
        metadatas = [dict(m or {}) for m in metadatas] if metadatas is not None else None
        mote = self._mote
        own = mote is not None and mote is self._embedding
        if own and isinstance(self.index, FaissIndex) and self.index.encoder is not None:
            ids = ids or [new_id() for _ in texts]  # the store's own encoder: the index embeds on its document path
            return self.index.upsert(texts, ids, metadatas, mote.batch_size, mote.show_progress)
        vectors = self._routed().embed_documents(texts)
        with self._write_lock:
            if self.index is None:
                self.index = self._new_index(len(vectors[0]))
            ids = ids or [new_id() for _ in texts]
            return self._writable().upsert_embeddings(vectors, ids, metadatas, texts=texts)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Remove documents by id (ids not stored are ignored); `ids=None` removes every document."""
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)}")
        with self._write_lock:
            if self.index is None:
                return True
            index = self._writable()
            present = [i for i in (index.ids if ids is None else ids) if i in index]
            if present:
                index.delete(present)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents with these ids, in the order given; ids not stored are skipped."""
        index = self.index
        if index is None:
            return []
        return [_document(index.get(i)) for i in ids if i in index]

    # ------------------------------------------------------------------ search
    def _hits(
        self,
        vector: Sequence[float],
        k: int,
        filter: Filter | None,
        fetch_k: int,
        ef_search: int | None,
        nprobe: int | None,
    ) -> list[Hit]:
        """The top `k` hits whose metadata pass `filter`: the index searches only the matching documents (a faiss
        IDSelector, FaissIndex.search_vectors), so the result is exact among them for flat indexes."""
        del fetch_k  # kept for LangChain's signature: no over-fetching is needed
        index = self.index
        if index is None or not len(index):
            return []
        return index.search_vectors(
            np.asarray(vector, dtype=np.float32),
            min(k, len(index)),
            ef_search=ef_search,
            nprobe=nprobe,
            filter=metadata_matcher(filter),
        )

    def similarity_search_with_score_by_vector(
        self,
        embedding: Sequence[float],
        k: int = DEFAULT_K,
        filter: Filter | None = None,
        fetch_k: int = DEFAULT_FETCH_K,
        ef_search: int | None = None,
        nprobe: int | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """(document, cosine) pairs, best first. `filter`: a dict (key -> value, or a list of allowed values)
        or a callable on the metadata dict. `ef_search` / `nprobe`: per-call HNSW / IVF-PQ search depth."""
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)}")
        return [(_document(h), h.score) for h in self._hits(embedding, k, filter, fetch_k, ef_search, nprobe)]

    def similarity_search_with_score(
        self, query: str, k: int = DEFAULT_K, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return self.similarity_search_with_score_by_vector(self._routed().embed_query(query), k, **kwargs)

    def similarity_search_by_vector(self, embedding: list[float], k: int = DEFAULT_K, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, **kwargs)]

    def similarity_search(self, query: str, k: int = DEFAULT_K, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, **kwargs)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # clipped: a float32 cosine of a vector with itself can exceed 1 by an ulp, and LangChain warns outside [0, 1]
        return lambda cosine: min(1.0, max(0.0, (1.0 + cosine) / 2.0))

    def _stored_vectors(self, hits: list[Hit]) -> np.ndarray:
        """The index's vectors for `hits` (flat and HNSW store them exactly); IVF-PQ keeps only codes, so its
        documents are embedded again from their stored texts."""
        index = self.index
        shards = index.shards if isinstance(index, ShardedIndex) else [index]
        if any(s.kind == "ivfpq" for s in shards):
            if any(h.text is None for h in hits):
                raise ValueError("MMR over an IVF-PQ index needs the documents' texts (the index stores none)")
            return np.asarray(self._routed().embed_documents([h.text for h in hits]), dtype=np.float32)
        return index.vectors([h.id for h in hits])

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = DEFAULT_K,
        fetch_k: int = DEFAULT_FETCH_K,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Maximal marginal relevance among the `fetch_k` best (filtered) documents: `lambda_mult` 1 ranks by
        similarity alone, 0 by diversity alone."""
        hits = self._hits(
            embedding, fetch_k, filter, fetch_k, kwargs.pop("ef_search", None), kwargs.pop("nprobe", None)
        )
        if kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(kwargs)}")
        if not hits:
            return []
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), self._stored_vectors(hits), lambda_mult=lambda_mult, k=k
        )
        return [_document(hits[i]) for i in chosen]

    def max_marginal_relevance_search(
        self, query: str, k: int = DEFAULT_K, fetch_k: int = DEFAULT_FETCH_K, lambda_mult: float = 0.5, **kwargs: Any
    ) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(
            self._routed().embed_query(query), k, fetch_k, lambda_mult, **kwargs
        )

    def as_retriever(self, **kwargs: Any) -> MoTERetriever:
        """A `MoTERetriever`: as LangChain's, plus `k=` / `filter=` given directly."""
        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return MoTERetriever(vectorstore=self, tags=tags, **kwargs)

    # ------------------------------------------------------------------ construction and persistence
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict] | None = None,
        *,
        ids: list[str] | None = None,
        kind: str = "flat",
        **kind_params: Any,
    ) -> MoTEVectorStore:
        """A new FaissIndex of `kind` holding `texts` (IVF-PQ trains its codebooks on them)."""
        store = cls(embedding, kind=kind, **kind_params)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def save_local(self, folder_path: str | os.PathLike) -> None:
        """Write the index in mote-rag's format: atomic, encoder fingerprint recorded, sha256-checked, no pickle."""
        with self._write_lock:
            if self.index is None:
                raise ValueError("nothing to save: the store has no documents yet")
            self._writable().save(folder_path)

    @classmethod
    def load_local(
        cls,
        folder_path: str | os.PathLike,
        embeddings: Embeddings,
        *,
        allow_dangerous_deserialization: bool = False,  # noqa: ARG003 - LangChain load_local signature; no pickle here
    ) -> MoTEVectorStore:
        """Open a saved index or a shard set (read-only). Refuses, with `EncoderMismatchError`, an index whose
        documents another encoder's document path embedded (the error `FaissIndex.load` gives); a model whose
        query expert was retrained since opens it. Queries go to the query path the index records (a collection's
        own expert). (`allow_dangerous_deserialization` is accepted for drop-in use and ignored: no pickle.)"""
        mote = mote_embeddings_of(embeddings)
        if mote is not None and read_any_header(folder_path).fingerprint == EXTERNAL:
            raise EncoderMismatchError(
                f"index {folder_path} records no encoder fingerprint (it was built with embeddings other than a "
                f"mote-rag encoder), so MoTEEmbeddings cannot vouch for its vectors; open it with the embeddings "
                f"that built it"
            )
        return cls(embeddings, open_index(folder_path, encoder=mote.encoder if mote is not None else None))
