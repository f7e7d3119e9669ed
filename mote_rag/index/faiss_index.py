"""FaissIndex: a cosine-similarity FAISS index that embeds documents and queries with their own task paths.

Documents go through the encoder's `search_document` path and queries through `search_query` (both
recorded in the index), which is the point of a Mixture of Task Experts encoder. This module holds search and
mutation; the other jobs live beside it:

    index/ids.py          int_id (stable 63-bit FAISS id of a str id), DocRecord, id and metadata checks
    index/params.py       per-kind options: defaults, valid ranges, the FAISS index each kind builds
    index/rwlock.py       the readers-writer lock (searches in parallel, add/delete/save alone)
    index/header.py       index.json (IndexHeader): the declared on-disk header
    index/persistence.py  save/load of an index directory (atomic, locked, verified)

API (for the CLI, the LangChain/LlamaIndex classes and the Ray sharded builder)
-------------------------------------------------------------------------------
    index = FaissIndex.build(encoder, texts, ids=None, metadatas=None, kind="flat"|"hnsw"|"ivfpq",
                             document_task="search_document", query_task="search_query", batch_size=64,
                             show_progress_bar=True, store_text=True, **kind_params)
    index = FaissIndex(encoder=None, dim=None, kind=..., fingerprint=None, ...)   # empty; dim from encoder
    index.add(texts, ids=None, metadatas=None, batch_size=64, show_progress_bar=False, skip_empty=False) -> ids
    index.add_embeddings(vectors, ids, metadatas=None, texts=None)   # vectors embedded elsewhere (Ray)
    index.upsert(texts, ids, metadatas=None) / index.upsert_embeddings(vectors, ids, metadatas=None, texts=None)
                                                   # add, replacing stored ids, in one write-locked step
    index.delete(ids) -> int
    index.search("query", k=10) -> list[Hit]; index.search([q1, q2], k=10) -> list[list[Hit]]
    index.search_vectors(q (dim,) or (n, dim), k=10) -> list[Hit] / list[list[Hit]]
    index.search(..., filter={"source": ["NIH", "CDC"]} or callable(metadata) -> bool, ids=[...])
                                                   # exact top k among the matching documents (faiss IDSelector)
    index.select(filter=None, ids=None) -> list[str]; index.vectors(ids) -> (n, dim) stored vectors
    index.encode_queries(texts) -> (n, dim)         # the query path the index records (query_task)
    Hit(id: str, score: float (cosine), metadata: dict, text: str | None)
    index.save(directory, lock_timeout=None)       # atomic, one writer per folder (index.persistence)
    index.snapshot() -> IndexSnapshot; FaissIndex.from_snapshot(snapshot, encoder=None)   # plain parts
    FaissIndex.load(directory, encoder=None)       # verifies header, content hashes, size, sha256, fingerprint
    index.info() -> dict; len(index); "doc-id" in index; index.get(id) -> Hit (score nan); index.records()
    index.faiss_index                              # the faiss.Index (user int ids = int_id(str id))
    index.search_parameters(k, ef_search=None, nprobe=None) -> faiss.SearchParameters | None

Empty or whitespace-only texts are refused by `add`/`build`, naming the rows (`skip_empty=True` leaves them out
with a warning that counts them). Options are checked before any work (index.params): e.g. HNSW M must be
2..512, nprobe >= 1. `k` must be an int >= 1 and is capped at the number of live documents. Metadata must
round-trip through strict JSON.
`search(..., ef_search=, nprobe=)` override per call (thread-safe: passed as faiss SearchParameters).

Vectors are L2-normalised before they are added or searched, so inner product == cosine. flat =
IndexIDMap2(IndexFlatIP); hnsw = IndexIDMap2(IndexHNSWFlat, inner product); ivfpq = IndexIVFPQ (inner product)
with its own ids. IVF-PQ scores are PQ approximations of the cosine; flat and HNSW scores are exact.

Deletion: flat and IVF-PQ remove vectors (`remove_ids`). FAISS HNSW cannot remove graph nodes, so a deleted
HNSW id becomes a tombstone excluded at search time by an IDSelector (`search_parameters` builds it, so a
sharded searcher can pass it on); when tombstones exceed a quarter of the vectors, or a deleted id is added
again, the graph is rebuilt from the stored vectors.

Threads: searches may run concurrently (FAISS releases the GIL); the encoder runs one encode at a time under its
own lock (mote_rag.encoders.EncoderBase.encode), as tokenizers and some runtimes are not thread safe; add/delete/save
wait for running searches.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..inputs import blank_rows, blank_texts_error, check_batch_size, check_vectors, validate_texts
from .header import FORMAT_VERSION, INDEX_JSON, IndexFormatError, IndexHeader, IndexSnapshot
from .ids import DocRecord, check_delete_ids, check_metadatas, check_new_ids, int_id
from .params import (
    DEFAULT_PARAMS,
    KINDS,
    METRIC,
    check_k,
    check_kind,
    check_kind_params,
    check_search_overrides,
    new_faiss_index,
)
from .persistence import EncoderMismatchError, load_index, path_fingerprint, save_index
from .rwlock import ReadWriteLock

__all__ = [
    "FaissIndex",
    "Hit",
    "DocRecord",
    "IndexFormatError",
    "EncoderMismatchError",
    "int_id",
    "INDEX_JSON",
    "KINDS",
    "DEFAULT_PARAMS",
    "METRIC",
    "FORMAT_VERSION",
    "COMPACT_FRACTION",
    "metadata_matcher",
]

COMPACT_FRACTION = 0.25


@dataclass(frozen=True)
class Hit:
    """One search result: the user id, its cosine score, its metadata and (if stored) its text."""

    id: str
    score: float
    metadata: dict = field(default_factory=dict)
    text: str | None = None

    @classmethod
    def of(cls, record: DocRecord, score: float = float("nan")) -> Hit:
        return cls(record.id, float(score), dict(record.metadata), record.text)

    def to_dict(self) -> dict:
        return {"id": self.id, "score": self.score, "metadata": self.metadata, "text": self.text}


def _normalised(vectors, dim: int, what: str) -> np.ndarray:
    x = check_vectors(vectors, what)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2:
        raise ValueError(f"{what} must be a (n, {dim}) array, got shape {x.shape}")
    if x.shape[1] != dim:
        raise EncoderMismatchError(f"{what} have dimension {x.shape[1]} but the index holds {dim}-dim vectors")
    if not np.isfinite(x).all():
        raise ValueError(f"{what} contain NaN or infinite values")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError(
            f"{what} contain an all-zero vector (row {int(np.flatnonzero(norms[:, 0] == 0)[0])}): "
            "it has no direction, so no cosine"
        )
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def _faiss():
    import faiss

    return faiss


def metadata_matcher(filter) -> Callable[[dict], bool] | None:
    """A metadata predicate: None (no filter) and callables as given; a dict maps each key to the value it must
    have, or to a list / tuple / set of allowed values (a key missing from the metadata never matches)."""
    if filter is None or callable(filter):
        return filter
    if not isinstance(filter, dict):
        raise TypeError(f"filter must be a dict or a callable taking the metadata dict, got {type(filter).__name__}")
    wanted_items = list(filter.items())

    def match(metadata: dict) -> bool:
        for key, wanted in wanted_items:
            if key not in metadata:
                return False
            value = metadata[key]
            if isinstance(wanted, (list, tuple, set, frozenset)) and not isinstance(value, (list, tuple)):
                if value not in wanted:
                    return False
            elif value != wanted:
                return False
        return True

    return match


class FaissIndex:
    """Cosine search over documents embedded with one encoder's document path (see the module docstring)."""

    def __init__(
        self,
        encoder=None,
        *,
        dim: int | None = None,
        kind: str = "flat",
        fingerprint: str | None = None,
        document_task: str = "search_document",
        query_task: str = "search_query",
        store_text: bool = True,
        encoder_spec: str | None = None,
        document_fingerprint: str | None = None,
        query_fingerprint: str | None = None,
        **kind_params,
    ):
        check_kind(kind)
        if encoder is not None:
            enc_dim = int(encoder.dim)
            if dim is not None and int(dim) != enc_dim:
                raise EncoderMismatchError(f"dim={dim} but the encoder gives {enc_dim}-dim vectors")
            dim = enc_dim
            enc_fp = str(encoder.fingerprint)
            if fingerprint is not None and fingerprint != enc_fp:
                raise EncoderMismatchError(f"fingerprint {fingerprint} given but the encoder's is {enc_fp}")
            fingerprint = enc_fp
            tasks = getattr(encoder, "tasks", None)
            if tasks is not None and hasattr(tasks, "get"):
                document_task = tasks.get(document_task).name
                query_task = tasks.get(query_task).name
            document_fingerprint = path_fingerprint(encoder, document_task)
            query_fingerprint = path_fingerprint(encoder, query_task)
        if dim is None:
            raise ValueError("an index needs its dimension: pass an encoder or dim=")
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or not 1 <= dim <= 1 << 16:
            raise ValueError(f"dim must be an integer between 1 and 65536, got {dim!r}")
        if fingerprint is not None and (not isinstance(fingerprint, str) or not fingerprint):
            raise TypeError(f"fingerprint must be a non-empty string or None, got {fingerprint!r}")
        for name, task in (("document_task", document_task), ("query_task", query_task)):
            if not isinstance(task, str) or not task:
                raise TypeError(f"{name} must be a non-empty string, got {task!r}")
        self.dim = int(dim)
        self.kind = kind
        self.params = check_kind_params(kind, kind_params, self.dim)
        self.fingerprint = fingerprint
        self.document_task = document_task
        self.query_task = query_task  # the path queries are routed to (a collection's expert, or search_query)
        self.document_fingerprint = document_fingerprint  # the document path's (mote_rag.index.persistence)
        self.query_fingerprint = query_fingerprint
        self.store_text = bool(store_text)
        self.encoder = encoder
        self.encoder_spec = encoder_spec
        self.encoder_class = type(encoder).__name__ if encoder is not None else None
        self._records: dict[int, DocRecord] = {}
        self._tombstones: set[int] = set()
        self._tombstone_selector = None  # built once per change, shared read-only by searches
        self._lock = ReadWriteLock()
        self._faiss_index = new_faiss_index(kind, self.dim, self.params) if kind != "ivfpq" else None

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        encoder,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[dict] | None = None,
        kind: str = "flat",
        document_task: str = "search_document",
        query_task: str = "search_query",
        batch_size: int = 64,
        show_progress_bar: bool = True,
        store_text: bool = True,
        encoder_spec: str | None = None,
        skip_empty: bool = False,
        collection: str | None = None,
        **kind_params,
    ) -> FaissIndex:
        """Embed `texts` with the encoder's document path and index them (empty texts: see `add`).

        `collection="medquad"`: the index serves that collection, so its documents and queries take the
        collection's experts where the model has them (`search_document@medquad`, `search_query@medquad`)."""
        if collection is not None:
            document_task, query_task = encoder.tasks.collection_paths(collection)
        index = cls(
            encoder,
            kind=kind,
            document_task=document_task,
            query_task=query_task,
            store_text=store_text,
            encoder_spec=encoder_spec,
            **kind_params,
        )
        index.add(
            texts,
            ids=ids,
            metadatas=metadatas,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
            skip_empty=skip_empty,
        )
        return index

    # ------------------------------------------------------------------ properties
    @property
    def faiss_index(self):
        """The underlying faiss.Index (ids are `int_id` of the user ids); None for an empty IVF-PQ index."""
        return self._faiss_index

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        record = self._records.get(int_id(doc_id))
        return record is not None and record.id == doc_id

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self._records.values()]

    def records(self) -> list[DocRecord]:
        """Every stored document (id, text, metadata), in insertion order."""
        return list(self._records.values())

    def get(self, doc_id: str) -> Hit:
        record = self._records.get(int_id(doc_id)) if isinstance(doc_id, str) else None
        if record is None or record.id != doc_id:
            raise KeyError(f"id {doc_id!r} is not in the index")
        return Hit.of(record)

    def lookup(self, faiss_id: int, score: float = float("nan")) -> Hit | None:
        """The Hit for a faiss id (None if unknown): how a sharded searcher maps ids back."""
        record = self._records.get(int(faiss_id))
        return None if record is None else Hit.of(record, score)

    def info(self) -> dict:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "count": len(self),
            "metric": "cosine (inner product of L2-normalised vectors)",
            "params": dict(self.params),
            "fingerprint": self.fingerprint,
            "encoder_spec": self.encoder_spec,
            "document_task": self.document_task,
            "query_task": self.query_task,
            "store_text": self.store_text,
            "tombstones": len(self._tombstones),
        }

    def __repr__(self) -> str:
        return f"FaissIndex(kind={self.kind!r}, dim={self.dim}, count={len(self)})"

    # ------------------------------------------------------------------ writes
    def _known(self, key: int) -> str | None:
        record = self._records.get(key)
        return None if record is None else record.id

    def add(
        self,
        texts: Sequence[str],
        ids: Sequence[str] | None = None,
        metadatas: Sequence[dict] | None = None,
        batch_size: int = 64,
        show_progress_bar: bool = False,
        skip_empty: bool = False,
    ) -> list[str]:
        """Embed texts with the document path and add them; returns their ids (uuid4 hex when not given).

        A text that is empty or whitespace-only is refused (ValueError naming the rows) before anything is added;
        with `skip_empty=True` those rows (and their ids and metadata) are left out with a warning that counts
        them, and the ids returned are those of the documents added."""
        items, _ = validate_texts(texts)  # str rows without lone surrogates, each named (mote_rag.inputs)
        batch_size = check_batch_size(batch_size)
        ids = check_new_ids(ids, len(items), self._known)
        metas = check_metadatas(metadatas, len(items))
        blank = blank_rows(items)
        if blank and not skip_empty:
            raise blank_texts_error(blank, len(items), hint=", or pass skip_empty=True to leave them out")
        if blank:
            warnings.warn(
                f"skipped {len(blank)} of {len(items)} texts that are empty or whitespace-only "
                f"(texts[{', '.join(map(str, blank[:5]))}{', ...' if len(blank) > 5 else ''}])",
                UserWarning,
                stacklevel=2,
            )
            keep = sorted(set(range(len(items))) - set(blank))
            items, ids, metas = [items[i] for i in keep], [ids[i] for i in keep], [metas[i] for i in keep]
        if not items:
            return []
        vectors = self._encode(items, self.document_task, batch_size, show_progress_bar)
        self._add_vectors(vectors, ids, metas, items)
        return ids

    def add_embeddings(
        self, vectors, ids: Sequence[str], metadatas: Sequence[dict] | None = None, texts: Sequence[str] | None = None
    ) -> list[str]:
        """Add vectors embedded elsewhere (with this index's encoder fingerprint and document task)."""
        x, ids, metas, texts = self._checked_rows(vectors, ids, metadatas, texts, self._known)
        self._add_vectors(x, ids, metas, texts)
        return ids

    def _checked_rows(self, vectors, ids, metadatas, texts, known):
        """Vectors (normalised), ids, metadata and texts of rows to store, each checked once; `known` says which
        ids are already taken (add refuses them, upsert replaces them)."""
        x = _normalised(vectors, self.dim, "vectors")
        ids = check_new_ids(ids, len(x), known)
        metas = check_metadatas(metadatas, len(x))
        if texts is not None:
            texts, _ = validate_texts(texts)
            if len(texts) != len(x):
                raise ValueError(f"got {len(x)} vectors but {len(texts)} texts")
        return x, ids, metas, texts

    def _add_vectors(self, x: np.ndarray, ids: list[str], metas: list[dict], texts) -> None:
        with self._lock.write():
            self._add_locked(x, ids, metas, texts)

    def _add_locked(self, x: np.ndarray, ids: list[str], metas: list[dict], texts) -> None:
        int_ids = np.fromiter((int_id(d) for d in ids), dtype=np.int64, count=len(ids))
        if self._tombstones and not self._tombstones.isdisjoint(int_ids.tolist()):
            self._compact()  # a re-added id must not stay masked by its own tombstone
        if self._faiss_index is None:  # IVF-PQ: train on the first vectors it sees
            index = new_faiss_index(self.kind, self.dim, self.params, len(x))
            index.train(x)
            self._faiss_index = index
        self._faiss_index.add_with_ids(x, int_ids)
        for i, (doc_id, meta) in enumerate(zip(ids, metas)):
            text = texts[i] if (texts is not None and self.store_text) else None
            self._records[int(int_ids[i])] = DocRecord(doc_id, text, meta)

    def upsert(
        self,
        texts: Sequence[str],
        ids: Sequence[str],
        metadatas: Sequence[dict] | None = None,
        batch_size: int = 64,
        show_progress_bar: bool = False,
    ) -> list[str]:
        """`add`, except that an id already stored is replaced (text, metadata and vector) instead of refused."""
        items, _ = validate_texts(texts)  # str rows without lone surrogates, each named (mote_rag.inputs)
        batch_size = check_batch_size(batch_size)
        ids = check_new_ids(ids, len(items), lambda _: None)
        metas = check_metadatas(metadatas, len(items))
        if not items:
            return []
        vectors = self._encode(items, self.document_task, batch_size, show_progress_bar)
        self._upsert(vectors, ids, metas, items)
        return ids

    def upsert_embeddings(
        self, vectors, ids: Sequence[str], metadatas: Sequence[dict] | None = None, texts: Sequence[str] | None = None
    ) -> list[str]:
        """`add_embeddings`, except that an id already stored is replaced: everything is checked first, then the
        old entries are removed and the new ones added under one write lock (a search sees the old or the new)."""
        x, ids, metas, texts = self._checked_rows(vectors, ids, metadatas, texts, lambda _: None)
        self._upsert(x, ids, metas, texts)
        return ids

    def _upsert(self, x: np.ndarray, ids: list[str], metas: list[dict], texts) -> None:
        if not ids:
            return
        with self._lock.write():
            for i, doc_id in enumerate(ids):
                stored = self._known(int_id(doc_id))
                if stored is not None and stored != doc_id:
                    raise ValueError(
                        f"ids[{i}] {doc_id!r:.60} collides with the stored id {stored!r:.60} (same 63-bit hash); "
                        "rename it"
                    )
            replaced = [int_id(d) for d in ids if self._known(int_id(d)) == d]
            if replaced:
                self._delete_locked(np.array(replaced, dtype=np.int64))
            self._add_locked(x, ids, metas, texts)

    def delete(self, ids: str | Sequence[str]) -> int:
        """Remove documents by id; unknown ids raise KeyError before anything is removed."""
        ids = check_delete_ids(ids)
        missing = [d for d in ids if d not in self]
        if missing:
            raise KeyError(f"id(s) not in the index: {missing[:5]}")
        if not ids:
            return 0
        int_ids = np.array([int_id(d) for d in ids], dtype=np.int64)
        with self._lock.write():
            self._delete_locked(int_ids)
        return len(ids)

    def _delete_locked(self, int_ids: np.ndarray) -> None:
        if self.kind == "hnsw":
            self._tombstones.update(int_ids.tolist())
        else:
            self._faiss_index.remove_ids(int_ids)
        for i in int_ids.tolist():
            del self._records[i]
        if self.kind == "hnsw" and len(self._tombstones) > COMPACT_FRACTION * self._faiss_index.ntotal:
            self._compact()
        self._tombstone_selector = self._make_selector()

    def _compact(self) -> None:
        """Rebuild the HNSW graph from its live vectors (caller holds the write lock)."""
        faiss = _faiss()
        old = self._faiss_index
        all_ids = faiss.vector_to_array(old.id_map).astype(np.int64)
        vectors = old.index.reconstruct_n(0, old.ntotal) if old.ntotal else np.zeros((0, self.dim), np.float32)
        keep = ~np.isin(all_ids, np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones)))
        fresh = new_faiss_index(self.kind, self.dim, self.params)
        if keep.any():
            fresh.add_with_ids(np.ascontiguousarray(vectors[keep]), all_ids[keep])
        self._faiss_index = fresh
        self._tombstones.clear()
        self._tombstone_selector = None

    def _make_selector(self):
        if not self._tombstones:
            return None
        faiss = _faiss()
        banned = np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones))
        batch = faiss.IDSelectorBatch(banned)
        selector = faiss.IDSelectorNot(batch)
        selector._keep = batch  # IDSelectorNot holds a raw pointer to it
        return selector

    # ------------------------------------------------------------------ search
    def _encode(self, texts: list[str], task: str, batch_size: int, show: bool) -> np.ndarray:
        if self.encoder is None:
            raise RuntimeError(
                "this index has no encoder: pass one to FaissIndex.load(dir, encoder=...) "
                "or use search_vectors / add_embeddings"
            )
        # one encode call: the encoder sorts every text by length (least padding) and shows its own progress bar
        emb = self.encoder.encode(texts, task=task, batch_size=batch_size, show_progress_bar=show)
        return _normalised(emb, self.dim, "encoder output")

    def route_queries(self, task: str) -> None:
        """Send this index's queries to another path of its encoder, e.g. a collection's query expert
        ("search_query@medquad") trained after the index was built: no document is re-embedded. Saved with the
        index, so every later load and front end (FaissIndex.search, the vector stores) routes there too."""
        if self.encoder is None:
            raise RuntimeError(
                "route_queries needs the index's encoder: load it with FaissIndex.load(dir, encoder=...)"
            )
        name = self.encoder.tasks.get(task).name
        with self._lock.write():
            self.query_task = name
            self.query_fingerprint = path_fingerprint(self.encoder, name)
            self.fingerprint = str(self.encoder.fingerprint)  # the model it now serves with

    def search_parameters(
        self, k: int = 10, ef_search: int | None = None, nprobe: int | None = None, selection: np.ndarray | None = None
    ):
        """faiss SearchParameters for one search: efSearch / nprobe and the HNSW tombstone filter; `selection`
        (faiss ids of live documents, from `selection()`) restricts the search to them."""
        faiss = _faiss()
        check_search_overrides(ef_search, nprobe)
        sel = self._tombstone_selector
        if selection is not None:  # live ids only, so the tombstones are excluded as well
            sel = faiss.IDSelectorBatch(np.ascontiguousarray(selection, dtype=np.int64))
        if self.kind == "hnsw":
            ef = max(int(ef_search or self.params["ef_search"]), k)
            params = faiss.SearchParametersHNSW(efSearch=ef)
        elif self.kind == "ivfpq":
            params = faiss.SearchParametersIVF(nprobe=int(nprobe or self.params["nprobe"]))
        else:
            params = faiss.SearchParameters() if sel is not None else None
        if sel is not None:
            params.sel = sel
            params._keep = sel  # the C++ params hold a raw pointer: keep the selector alive with them
        return params

    def _selection(self, filter, ids) -> np.ndarray | None:
        """Faiss ids of the live documents among `ids` whose metadata pass `filter`; None when neither restricts
        (caller holds the read lock)."""
        match = metadata_matcher(filter)
        if match is None and ids is None:
            return None
        if ids is None:
            candidates = self._records.items()
        else:
            keyed = ((int_id(d), d) for d in check_delete_ids(ids))
            candidates = [(key, self._records[key]) for key, d in keyed if self._known(key) == d]
        return np.fromiter(
            (key for key, record in candidates if match is None or match(record.metadata)), dtype=np.int64
        )

    def selection(self, filter=None, ids: Sequence[str] | None = None) -> np.ndarray | None:
        """The faiss ids `select` names (for `search_parameters(..., selection=)`); None when nothing restricts."""
        with self._lock.read():
            return self._selection(filter, ids)

    def select(self, filter=None, ids: Sequence[str] | None = None) -> list[str]:
        """Ids of the stored documents (among `ids`, when given) whose metadata pass `filter` (a dict of key ->
        value or allowed values, or a callable on the metadata dict), in insertion order unless `ids` orders them."""
        with self._lock.read():
            chosen = self._selection(filter, ids)
            if chosen is None:
                return [r.id for r in self._records.values()]
            return [self._records[key].id for key in chosen.tolist()]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored (unit) vectors of `ids`, (n, dim): exact for flat and HNSW; IVF-PQ keeps only codes."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        if self.kind == "ivfpq":
            raise NotImplementedError("an IVF-PQ index keeps compressed codes, not vectors: embed the texts again")
        missing = [d for d in ids if d not in self]
        if missing:
            raise KeyError(f"id(s) not in the index: {missing[:5]}")
        with self._lock.read():
            out = [self._faiss_index.reconstruct(int_id(d)) for d in ids]
        return np.asarray(out, dtype=np.float32).reshape(len(ids), self.dim)

    def encode_queries(self, queries: str | Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Query vectors through the index's recorded query path (`query_task`), as `search` embeds them."""
        items, _ = validate_texts(queries)
        return self._encode(items, self.query_task, check_batch_size(batch_size), False)

    def search_vectors(
        self,
        queries,
        k: int = 10,
        *,
        ef_search: int | None = None,
        nprobe: int | None = None,
        filter=None,
        ids: Sequence[str] | None = None,
    ):
        """Search with query vectors: (dim,) -> list[Hit]; (n, dim) -> list[list[Hit]]. k is capped at len(self).

        `filter` / `ids`: only documents whose metadata pass the filter (see `select`) and whose id is listed."""
        queries = check_vectors(queries, "query vectors")
        single = queries.ndim == 1
        q = _normalised(queries, self.dim, "query vectors")
        k = check_k(k, len(self))
        check_search_overrides(ef_search, nprobe)
        with self._lock.read():
            selection = self._selection(filter, ids) if self._records else None
            if self._faiss_index is None or not self._records or (selection is not None and not len(selection)):
                results = [[] for _ in range(len(q))]
            else:
                params = self.search_parameters(k, ef_search, nprobe, selection)
                scores, labels = self._faiss_index.search(q, k, params=params)
                records = self._records
                results = [
                    [Hit.of(records[j], s) for s, j in zip(srow.tolist(), lrow.tolist()) if j in records]
                    for srow, lrow in zip(scores, labels)
                ]
        return results[0] if single else results

    def search(
        self,
        queries: str | Sequence[str],
        k: int = 10,
        *,
        batch_size: int = 64,
        ef_search: int | None = None,
        nprobe: int | None = None,
        filter=None,
        ids: Sequence[str] | None = None,
    ):
        """Embed queries with the query path and search: str -> list[Hit]; list[str] -> list[list[Hit]].

        `filter` / `ids` restrict the documents searched (see `search_vectors`)."""
        items, single = validate_texts(queries)
        check_k(k, len(self))
        check_search_overrides(ef_search, nprobe)
        if not items:
            return []
        q = self._encode(items, self.query_task, check_batch_size(batch_size), False)
        results = self.search_vectors(q, k, ef_search=ef_search, nprobe=nprobe, filter=filter, ids=ids)
        return results[0] if single else results

    # ------------------------------------------------------------------ persistence (index.persistence)
    def save(self, directory: str | os.PathLike, lock_timeout: float | None = None) -> Path:
        """Write the index directory atomically as its one writer (see mote_rag.index.persistence).

        A directory that is a file, or under a file, is a NotADirectoryError naming it; a full or read-only file
        system is a StorageError naming the folder, and the index saved there before stays loadable."""
        from ..atomic import check_folder_path, storage_error

        directory = Path(directory)
        check_folder_path(directory, "index directory")
        try:
            return save_index(self, directory, lock_timeout)
        except OSError as exc:
            raise storage_error(exc, directory, "save the index") from None

    @classmethod
    def read_header(cls, directory: str | os.PathLike) -> IndexHeader:
        """index.json of an index directory, fully validated (mote_rag.index.header.IndexHeader)."""
        return IndexHeader.read(directory)

    @classmethod
    def load(cls, directory: str | os.PathLike, encoder=None, *, check_fingerprint: bool = True) -> FaissIndex:
        """Open a saved index; with an encoder, refuse one whose dimension or fingerprint differs."""
        return load_index(cls, directory, encoder, check_fingerprint=check_fingerprint)

    def snapshot(self) -> IndexSnapshot:
        """The index as plain parts (mote_rag.index.header.IndexSnapshot), taken under the read lock: a consistent
        copy that a save writes while searches and writes go on."""
        faiss = _faiss()
        with self._lock.read():
            if self._faiss_index is None:
                raise ValueError("an IVF-PQ index is trained on its first vectors: add some before saving")
            return IndexSnapshot(
                kind=self.kind,
                dim=self.dim,
                params=dict(self.params),
                fingerprint=self.fingerprint,
                document_task=self.document_task,
                query_task=self.query_task,
                records=self.records(),
                faiss_data=faiss.serialize_index(self._faiss_index).tobytes(),
                store_text=self.store_text,
                encoder_spec=self.encoder_spec,
                encoder_class=self.encoder_class,
                deleted_int_ids=sorted(self._tombstones),
                document_fingerprint=self.document_fingerprint,
                query_fingerprint=self.query_fingerprint,
            )

    @classmethod
    def from_snapshot(cls, snap: IndexSnapshot, encoder=None, *, faiss_index=None) -> FaissIndex:
        """An index from its plain parts. `encoder` (optional) must serve the snapshot's task paths; it is not
        checked against the stored fingerprints here (that is index.persistence.check_compatible, which `load`
        applies first). `faiss_index`: `snap.faiss_data` already deserialised (a loader that checked it)."""
        index = cls(
            None,
            dim=snap.dim,
            kind=snap.kind,
            fingerprint=snap.fingerprint,
            document_task=snap.document_task,
            query_task=snap.query_task,
            store_text=snap.store_text,
            encoder_spec=snap.encoder_spec,
            document_fingerprint=snap.document_fingerprint,
            query_fingerprint=snap.query_fingerprint,
            **snap.params,
        )
        if encoder is not None:
            tasks = getattr(encoder, "tasks", None)
            if tasks is not None and hasattr(tasks, "get"):
                for task in (snap.document_task, snap.query_task):
                    tasks.get(task)  # the encoder must serve the index's task paths
            if snap.document_fingerprint and snap.fingerprint is not None:  # opened through its document path
                index.fingerprint = str(encoder.fingerprint)
                index.query_fingerprint = path_fingerprint(encoder, snap.query_task)
        if faiss_index is None:
            faiss_index = _faiss().deserialize_index(np.frombuffer(snap.faiss_data, dtype=np.uint8))
        index.encoder = encoder
        index.encoder_class = snap.encoder_class or (type(encoder).__name__ if encoder is not None else None)
        index._faiss_index = faiss_index
        index._tombstones = set(snap.deleted_int_ids)
        index._tombstone_selector = index._make_selector()
        index._records = {int_id(r.id): r for r in snap.records}
        if len(index._records) != len(snap.records):
            raise IndexFormatError(f"{INDEX_JSON}: two ids share a 63-bit hash")
        return index
