"""MoTEVectorStore: a LlamaIndex vector store over mote-rag's own indexes (`FaissIndex`, `ShardedIndex`).

What it keeps that `SimpleVectorStore` and `llama-index-vector-stores-faiss` lose:
- the encoder guard: an index opens only with a model whose document path built it (the error `FaissIndex.load`
  gives, from the same check);
- queries go to the query path the index records (`FaissIndex.search` embeds the query text with
  `index.query_task`), so an index built for a collection follows that collection's query expert with no argument.
  The store embeds the query itself (`is_embedding_query = False`): the retriever does not call the embed model;
- mote-rag's on-disk format: atomic, sha256-checked, pickle-free saves (`index.json` + a faiss file);
- HNSW (deletes are tombstones, compacted) and IVF-PQ, and shard sets written by `mote-rag index --ray` (read-only);
- it stores the text (`stores_text = True`): `VectorStoreIndex.from_vector_store(store, embed_model=...)` needs no
  docstore.

Nodes keep LlamaIndex's metadata layout (`node_to_metadata_dict`: the node's metadata plus `_node_content`,
`_node_type`, `doc_id`, `document_id`, `ref_doc_id`), and `MetadataFilters` are evaluated by llama-index-core's own
`build_metadata_filter_fn`, the function `SimpleVectorStore` uses: every operator and condition it supports, with the
same results. The index then searches only the matching documents (a faiss IDSelector, `FaissIndex.search`), so the
top k is exact among them for flat indexes. Scores are cosine similarities, higher is better.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn, metadata_dict_to_node, node_to_metadata_dict

from mote_rag.index import EncoderMismatchError, FaissIndex, Hit
from mote_rag.index.header import EXTERNAL, INDEX_JSON
from mote_rag.index.persistence import check_compatible  # the check FaissIndex.load makes
from mote_rag.index.sharded import SHARDS_JSON, ShardedIndex, open_index

PERSIST_DIRNAME = "vector_store"  # StorageContext.persist(dir) -> dir/<namespace>__vector_store/ (an index folder)
NODE_CONTENT = "_node_content"
DEFAULT_MMR_PREFETCH_FACTOR = 4.0
MODES = (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR)


class _AsSaved:
    """An open index read as a saved header (an index without a fingerprint reads EXTERNAL), so an in-memory index
    is checked against an encoder by the function `FaissIndex.load` uses (mote_rag.index.persistence)."""

    def __init__(self, index: FaissIndex | ShardedIndex):
        self._index = index

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._index, name)
        return EXTERNAL if name == "fingerprint" and value is None else value


class _FilterView(Mapping):
    """A stored metadata dict as SimpleVectorStore filters it: without the serialised node (`_node_content`)."""

    __slots__ = ("_m",)

    def __init__(self, metadata: dict):
        self._m = metadata

    def __getitem__(self, key: str) -> Any:
        if key == NODE_CONTENT:
            raise KeyError(key)
        return self._m[key]

    def __iter__(self):
        return (k for k in self._m if k != NODE_CONTENT)

    def __len__(self) -> int:
        return len(self._m) - (NODE_CONTENT in self._m)


def metadata_predicate(
    filters: MetadataFilters | None, doc_ids: Sequence[str] | None = None
) -> Callable[[dict], bool] | None:
    """The predicate on a stored metadata dict for `filters` (llama-index-core's build_metadata_filter_fn, as
    SimpleVectorStore applies it) and, when given, `doc_ids` (ref_doc_id among them); None when nothing filters."""
    match = None
    if filters is not None and filters.filters:
        fn = build_metadata_filter_fn(_FilterView, filters)
        match = fn
    if not doc_ids:
        return match
    wanted = set(doc_ids)
    if match is None:
        return lambda metadata: metadata.get("ref_doc_id") in wanted
    return lambda metadata: metadata.get("ref_doc_id") in wanted and match(metadata)


def encoder_of(embed_model: Any) -> tuple[Any, str | None]:
    """(mote-rag encoder, document task) of a MoTEEmbedding (its `text_task`) or of an encoder object (None: the
    index's own document task)."""
    if embed_model is None:
        return None, None
    from llama_index.embeddings.mote import MoTEEmbedding

    if isinstance(embed_model, MoTEEmbedding):
        return embed_model.encoder, embed_model.text_task
    if all(hasattr(embed_model, a) for a in ("encode", "fingerprint", "dim", "tasks")):
        return embed_model, None
    raise TypeError(
        f"embed_model must be a MoTEEmbedding or a mote-rag encoder (MoTEModel, OnnxEncoder), got "
        f"{type(embed_model).__name__}: other embed models cannot vouch for the index's vectors"
    )


def _node(hit: Hit) -> BaseNode:
    """The node a hit stores: LlamaIndex's serialised node with its text, or (an index built outside LlamaIndex,
    e.g. by `mote-rag index`) a TextNode of the id, text and metadata."""
    if NODE_CONTENT in hit.metadata:
        return metadata_dict_to_node(hit.metadata, text=hit.text)
    return TextNode(id_=hit.id, text=hit.text or "", metadata=dict(hit.metadata))


def index_dir(persist_path: str | os.PathLike) -> Path:
    """The index folder of a persist path: as given, or for the file path StorageContext.persist passes
    (`<dir>/<namespace>__vector_store.json`) that path without `.json`."""
    path = Path(persist_path)
    return path.with_suffix("") if path.suffix == ".json" else path


class MoTEVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store over a mote-rag `FaissIndex` (read-write) or `ShardedIndex` (read-only).

    Example:
        ```python
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.embeddings.mote import MoTEEmbedding
        from llama_index.vector_stores.mote import MoTEVectorStore

        embed_model = MoTEEmbedding("path/to/onnx-export")
        store = MoTEVectorStore(embed_model, kind="hnsw")             # flat | hnsw | ivfpq
        index = VectorStoreIndex(nodes, embed_model=embed_model,
                                 storage_context=StorageContext.from_defaults(vector_store=store))
        index.as_retriever(similarity_top_k=5).retrieve("what causes anaemia?")
        store.persist("my-index")                                      # mote-rag's atomic index format
        store = MoTEVectorStore.from_persist_dir("my-index", embed_model=embed_model)   # refuses another model
        index = VectorStoreIndex.from_vector_store(store, embed_model=embed_model)     # no docstore needed
        ```

    `index` is the mote-rag index itself (`store.index.search(...)`, `store.index.info()` work as usual).
    """

    stores_text: bool = True
    is_embedding_query: bool = False  # the store embeds the query text itself, with the index's query path
    flat_metadata: bool = False

    _index: FaissIndex | ShardedIndex = PrivateAttr()
    _write_lock: Any = PrivateAttr()

    def __init__(
        self,
        embed_model: Any = None,
        *,
        index: FaissIndex | ShardedIndex | None = None,
        kind: str = "flat",
        flat_metadata: bool = False,
        **kind_params: Any,
    ):
        """`embed_model`: a MoTEEmbedding (or a mote-rag encoder) whose document path built `index`; it embeds
        queries through the index's recorded query path and nodes that come without an embedding. `index`: an
        open FaissIndex or ShardedIndex (checked against `embed_model`); None: a new empty FaissIndex of `kind`
        ("flat", "hnsw", "ivfpq") with `kind_params` (see FaissIndex), for `embed_model`'s encoder."""
        super().__init__(stores_text=True, is_embedding_query=False, flat_metadata=flat_metadata)
        encoder, document_task = encoder_of(embed_model)
        if index is None:
            if encoder is None:
                raise ValueError("a new store needs embed_model (a MoTEEmbedding or a mote-rag encoder) or index=")
            index = FaissIndex(encoder, kind=kind, document_task=document_task or "search_document", **kind_params)
        elif kind_params or kind != "flat":
            raise TypeError("kind and index options only apply to a new index; an index was given")
        elif encoder is not None:
            self._check(index, encoder, document_task, "in memory")
            index.encoder = encoder
        shards = index.shards if isinstance(index, ShardedIndex) else [index]
        if not all(s.store_text for s in shards):
            raise ValueError("this index stores no texts (built with store_text=False): a LlamaIndex store needs them")
        self._index = index
        self._write_lock = threading.RLock()

    @staticmethod
    def _check(index: FaissIndex | ShardedIndex, encoder: Any, document_task: str | None, where: str) -> None:
        """Refuse an encoder whose document path did not build `index` (FaissIndex.load's check and error)."""
        check_compatible(_AsSaved(index), encoder, where)
        if document_task is not None and encoder.tasks.get(document_task).name != index.document_task:
            raise EncoderMismatchError(
                f"index {where} embeds documents with task {index.document_task!r} but the embed model's text_task "
                f"is {document_task!r}: pass MoTEEmbedding(..., text_task={index.document_task!r})"
            )

    @classmethod
    def class_name(cls) -> str:
        return "MoTEVectorStore"

    @property
    def client(self) -> FaissIndex | ShardedIndex:
        """The mote-rag index."""
        return self._index

    @property
    def index(self) -> FaissIndex | ShardedIndex:
        """The mote-rag index (FaissIndex, or a read-only ShardedIndex)."""
        return self._index

    def _writable(self) -> FaissIndex:
        if isinstance(self._index, ShardedIndex):
            raise NotImplementedError(
                "a shard set is opened read-only: to change it, open the shard as a FaissIndex, add/delete, save, "
                "and rewrite the manifest (mote_rag.index.sharded.write_manifest), or rebuild with mote-rag index"
            )
        return self._index

    # ------------------------------------------------------------------ writes
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Store nodes (text, metadata, embedding); a node id already stored is replaced, and of a node id given
        twice the last wins (as in SimpleVectorStore). Nodes without an embedding are embedded with the index's
        document path, from the content VectorStoreIndex would embed (`MetadataMode.EMBED`)."""
        if add_kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(add_kwargs)}")
        nodes = list(nodes)
        index = self._writable()
        latest = list({node.node_id: node for node in nodes}.values())
        missing = [n for n in latest if n.embedding is None]
        fresh = {}
        if missing:  # embedded as VectorStoreIndex embeds a node: its text with the metadata LlamaIndex shows models
            if index.encoder is None:
                raise ValueError("nodes without an embedding need an embed_model: the index has no encoder")
            texts = [n.get_content(metadata_mode=MetadataMode.EMBED) for n in missing]
            vectors = index.encoder.encode(texts, task=index.document_task, show_progress_bar=False)
            fresh = {n.node_id: v for n, v in zip(missing, np.asarray(vectors, dtype=np.float32))}
        with self._write_lock:
            index.upsert_embeddings(
                np.asarray([fresh[n.node_id] if n.node_id in fresh else n.get_embedding() for n in latest], np.float32),
                [n.node_id for n in latest],
                [self._metadata(n) for n in latest],
                texts=[n.get_content(metadata_mode=MetadataMode.NONE) for n in latest],
            )
        return [node.node_id for node in nodes]

    def _metadata(self, node: BaseNode) -> dict:
        return node_to_metadata_dict(node, remove_text=True, flat_metadata=self.flat_metadata)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Remove every node of the source document `ref_doc_id`."""
        if delete_kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(delete_kwargs)}")
        self._delete(self._index.select({"ref_doc_id": ref_doc_id}))

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Remove the nodes among `node_ids` (all when None) whose metadata pass `filters` (all when None): with
        neither, every node, as SimpleVectorStore does."""
        if delete_kwargs:
            raise TypeError(f"unexpected argument(s) {sorted(delete_kwargs)}")
        self._delete(self._index.select(metadata_predicate(filters), node_ids))

    def clear(self) -> None:
        """Remove every node."""
        self._delete(self._index.ids if isinstance(self._index, FaissIndex) else None)

    def _delete(self, ids: list[str] | None) -> None:
        index = self._writable()
        with self._write_lock:
            present = [i for i in (ids or []) if i in index]
            if present:
                index.delete(present)

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """The stored nodes among `node_ids` (in that order; all when None) whose metadata pass `filters`."""
        index = self._index
        return [_node(index.get(i)) for i in index.select(metadata_predicate(filters), node_ids)]

    # ------------------------------------------------------------------ query
    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Top `similarity_top_k` nodes among those passing `filters`, `node_ids` and `doc_ids` (empty lists do not
        restrict: that is what VectorStoreIndex passes when the store keeps the nodes).

        The query text is embedded with the index's recorded query path; `query.query_embedding`, when set, is used
        as it is. Modes: default, and MMR (`mmr_threshold` as in SimpleVectorStore; candidates are the
        `mmr_prefetch_k` best, default `similarity_top_k * mmr_prefetch_factor` (4), re-ranked with llama-index-core's
        get_top_k_mmr_embeddings on the stored vectors; SimpleVectorStore ranks every stored vector)."""
        if query.mode not in MODES:
            raise ValueError(
                f"MoTEVectorStore supports the query modes {[m.value for m in MODES]}, not {query.mode.value!r}"
            )
        index = self._index
        empty = VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        if not len(index):
            return empty
        match = metadata_predicate(query.filters, query.doc_ids)
        node_ids = query.node_ids or None
        k = query.similarity_top_k
        if query.mode == VectorStoreQueryMode.MMR:
            return self._mmr(query, match, node_ids, **kwargs)
        if query.query_embedding is not None:
            hits = index.search_vectors(np.asarray(query.query_embedding, np.float32), k, filter=match, ids=node_ids)
        elif query.query_str:
            hits = index.search(query.query_str, k, filter=match, ids=node_ids)
        else:
            raise ValueError("the query has neither query_str nor query_embedding")
        return VectorStoreQueryResult(
            nodes=[_node(h) for h in hits], similarities=[h.score for h in hits], ids=[h.id for h in hits]
        )

    def _query_vector(self, query: VectorStoreQuery) -> np.ndarray:
        if query.query_embedding is not None:
            return np.asarray(query.query_embedding, dtype=np.float32)
        if not query.query_str:
            raise ValueError("the query has neither query_str nor query_embedding")
        return self._index.encode_queries([query.query_str])[0]

    def _mmr(self, query: VectorStoreQuery, match, node_ids, **kwargs: Any) -> VectorStoreQueryResult:
        index = self._index
        k = query.similarity_top_k
        prefetch = kwargs.get("mmr_prefetch_k") or int(
            k * kwargs.get("mmr_prefetch_factor", DEFAULT_MMR_PREFETCH_FACTOR)
        )
        threshold = kwargs.get("mmr_threshold", query.mmr_threshold)
        q = self._query_vector(query)
        hits = index.search_vectors(q, max(k, prefetch), filter=match, ids=node_ids)
        if not hits:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        by_id = {h.id: h for h in hits}
        similarities, ids = get_top_k_mmr_embeddings(
            (q / np.linalg.norm(q)).tolist(),
            self._stored_vectors(hits).tolist(),
            similarity_top_k=k,
            embedding_ids=list(by_id),
            mmr_threshold=threshold,
        )
        return VectorStoreQueryResult(nodes=[_node(by_id[i]) for i in ids], similarities=similarities, ids=ids)

    def _stored_vectors(self, hits: list[Hit]) -> np.ndarray:
        """The index's vectors for `hits` (flat and HNSW store them exactly); IVF-PQ keeps only codes, so its
        documents are embedded again from their stored texts with the document path."""
        index = self._index
        shards = index.shards if isinstance(index, ShardedIndex) else [index]
        if any(s.kind == "ivfpq" for s in shards):
            if index.encoder is None:
                raise ValueError("MMR over an IVF-PQ index embeds the candidates again: open it with an embed_model")
            return np.asarray(
                index.encoder.encode([h.text for h in hits], task=index.document_task), dtype=np.float32
            ).reshape(len(hits), -1)
        return index.vectors([h.id for h in hits])

    # ------------------------------------------------------------------ persistence
    def persist(self, persist_path: str | os.PathLike, fs: Any = None) -> None:
        """Write the index in mote-rag's format (atomic, fingerprint recorded, sha256-checked, no pickle) to the
        folder `persist_path`; `StorageContext.persist(dir)` passes `dir/<namespace>__vector_store.json`, which
        becomes the folder `dir/<namespace>__vector_store/`."""
        self._check_local(fs)
        with self._write_lock:
            self._writable().save(index_dir(persist_path))

    @staticmethod
    def _check_local(fs: Any) -> None:
        protocol = getattr(fs, "protocol", "file") if fs is not None else "file"
        if "file" not in ((protocol,) if isinstance(protocol, str) else tuple(protocol)):
            raise NotImplementedError(
                f"MoTEVectorStore saves to a local folder (atomic renames and a folder lock); got fs {protocol!r}"
            )

    @classmethod
    def from_persist_path(
        cls, persist_path: str | os.PathLike, embed_model: Any = None, fs: Any = None
    ) -> MoTEVectorStore:
        """Open an index folder (or a shard set, read-only) saved by `persist` or by mote-rag. With `embed_model`,
        an index built by another model is refused with the error `FaissIndex.load` gives."""
        cls._check_local(fs)
        path = index_dir(persist_path)
        encoder, document_task = encoder_of(embed_model)
        index = open_index(path, encoder=encoder)
        store = cls(index=index)
        if encoder is not None:
            cls._check(index, encoder, document_task, str(path))
        return store

    @classmethod
    def from_persist_dir(
        cls,
        persist_dir: str | os.PathLike = "./storage",
        namespace: str = "default",
        embed_model: Any = None,
        fs: Any = None,
    ) -> MoTEVectorStore:
        """Open `persist_dir` itself when it is an index folder or a shard set, else the namespaced folder that
        `StorageContext.persist(persist_dir)` wrote (`<persist_dir>/<namespace>__vector_store/`)."""
        root = Path(persist_dir)
        if (root / INDEX_JSON).is_file() or (root / SHARDS_JSON).is_file():
            return cls.from_persist_path(root, embed_model=embed_model, fs=fs)
        return cls.from_persist_path(root / f"{namespace}__{PERSIST_DIRNAME}", embed_model=embed_model, fs=fs)
