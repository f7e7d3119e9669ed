"""FaissIndex: a cosine-similarity FAISS index that embeds documents and queries with their own task paths.

Documents go through the encoder's `search_document` path and queries through `search_query` (both
recorded in the index), which is the point of a Mixture of Task Experts encoder.

API (for the CLI, the LangChain/LlamaIndex classes and the Ray sharded builder)
-------------------------------------------------------------------------------
    index = FaissIndex.build(encoder, texts, ids=None, metadatas=None, kind="flat"|"hnsw"|"ivfpq",
                             document_task="search_document", query_task="search_query", batch_size=64,
                             show_progress_bar=True, store_text=True, **kind_params)
    index = FaissIndex(encoder=None, dim=None, kind=..., fingerprint=None, ...)   # empty; dim from encoder
    index.add(texts, ids=None, metadatas=None, batch_size=64, show_progress_bar=False) -> list[str] ids
    index.add_embeddings(vectors, ids, metadatas=None, texts=None)   # vectors embedded elsewhere (Ray)
    index.delete(ids) -> int
    index.search("query", k=10) -> list[Hit]; index.search([q1, q2], k=10) -> list[list[Hit]]
    index.search_vectors(q (dim,) or (n, dim), k=10) -> list[Hit] / list[list[Hit]]
    Hit(id: str, score: float (cosine), metadata: dict, text: str | None)
    index.save(directory)                          # atomic; see "On disk"
    FaissIndex.load(directory, encoder=None)       # verifies size, sha256, dim, encoder fingerprint
    index.info() -> dict; len(index); "doc-id" in index; index.get(id) -> Hit (score nan)
    index.faiss_index                              # the faiss.Index (user int ids = int_id(str id))
    index.search_parameters(k, ef_search=None, nprobe=None) -> faiss.SearchParameters | None

kind_params: hnsw: M=32, ef_construction=200, ef_search=256 (on 100k x 384 MiniLM-based vectors,
benchmarks/bench_index.py: ef 128 -> recall@10 0.984 at 29x flat's one-query QPS; ef 256 -> 0.992 at 26x);
ivfpq: nlist (auto ~4*sqrt(n)), pq_m (auto, a divisor of dim near dim/8), nbits (auto, 8 when there are
>= 9,984 training vectors), nprobe=16 (about 1/20 of flat's bytes; recall@10 ~0.7 on the same vectors).
`search(..., ef_search=, nprobe=)` override per call (thread-safe: passed as faiss SearchParameters).

Ids and cosine
--------------
User ids are strings. Each maps to a stable 63-bit int64 `int_id(id)` (blake2b of the UTF-8 string), so the
same document has the same faiss id in every shard and an `faiss.IndexShards(successive_ids=False)` over
several indexes returns ids that any shard's id table resolves. Vectors are L2-normalised before they are
added or searched, so inner product == cosine. flat = IndexIDMap2(IndexFlatIP); hnsw =
IndexIDMap2(IndexHNSWFlat, inner product); ivfpq = IndexIVFPQ (inner product) with its own ids.
IVF-PQ scores are PQ approximations of the cosine; flat and HNSW scores are exact.

Deletion: flat and IVF-PQ remove vectors (`remove_ids`). FAISS HNSW cannot remove graph nodes, so a deleted
HNSW id becomes a tombstone excluded at search time by an IDSelector (`search_parameters` builds it, so a
sharded searcher can pass it on); when tombstones exceed a quarter of the vectors, or a deleted id is added
again, the graph is rebuilt from the stored vectors.

On disk (a directory; the format the Ray shards also write)
-----------------------------------------------------------
    index.<sha256[:16]>.faiss    faiss.serialize_index bytes, content-addressed
    index.json                   written last, atomically: format_version, kind, metric, dim, count, params,
                                 encoder {fingerprint, spec, class}, document_task, query_task, faiss_file,
                                 faiss_sha256, faiss_bytes, ids, texts (or null), metadatas, deleted_int_ids
A save writes the new faiss file under a new name, then atomically replaces index.json, then removes faiss
files index.json no longer names (and temp files of killed saves; one writer per directory). A crash at any
moment leaves an index.json whose faiss file exists with the recorded size and sha256: the previous index or
the new one, never a mix. Load checks size (truncation),
sha256 (corruption), dimension and, with an encoder, its fingerprint before FAISS reads a byte. No pickle.

Threads: searches may run concurrently (FAISS releases the GIL); the encoder is called under a lock because
tokenizers and some runtimes are not thread safe; add/delete/save wait for running searches (a
readers-writer lock), so mixing them with searches is safe too.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic import write_bytes_atomic, write_json_atomic
from ..inputs import check_batch_size, progress, validate_texts

FORMAT_VERSION = 1
KINDS = ("flat", "hnsw", "ivfpq")
INDEX_JSON = "index.json"
METRIC = "inner_product"  # of L2-normalised vectors, i.e. cosine
DEFAULT_PARAMS = {
    "flat": {},
    "hnsw": {"M": 32, "ef_construction": 200, "ef_search": 256},
    "ivfpq": {"nlist": None, "pq_m": None, "nbits": None, "nprobe": 16},
}
COMPACT_FRACTION = 0.25


class IndexFormatError(ValueError):
    """An index directory that is missing pieces, truncated, corrupted or of an unknown format."""


class EncoderMismatchError(ValueError):
    """The encoder (or vectors) do not match the index: another fingerprint or another dimension."""


@dataclass(frozen=True)
class Hit:
    """One search result: the user id, its cosine score, its metadata and (if stored) its text."""

    id: str
    score: float
    metadata: dict = field(default_factory=dict)
    text: str | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "score": self.score, "metadata": self.metadata, "text": self.text}


def int_id(doc_id: str) -> int:
    """The stable non-negative int64 FAISS id of a string id (same in every process and shard)."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


def _faiss():
    import faiss

    return faiss


class _ReadWriteLock:
    """Many readers (searches) or one writer (add/delete/save)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False

    @contextmanager
    def read(self):
        with self._cond:
            while self._writer:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def write(self):
        with self._cond:
            while self._writer or self._readers:
                self._cond.wait()
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def _normalised(vectors, dim: int, what: str) -> np.ndarray:
    x = np.asarray(vectors, dtype=np.float32)
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
        raise ValueError(f"{what} contain an all-zero vector (row {int(np.flatnonzero(norms[:, 0] == 0)[0])}): "
                         "it has no direction, so no cosine")
    return np.ascontiguousarray(x / norms, dtype=np.float32)


def _check_metadata(metadatas, n: int) -> list[dict]:
    if metadatas is None:
        return [{} for _ in range(n)]
    metadatas = list(metadatas)
    if len(metadatas) != n:
        raise ValueError(f"got {n} texts/vectors but {len(metadatas)} metadata entries")
    out = []
    for i, meta in enumerate(metadatas):
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise TypeError(f"metadatas[{i}] must be a dict, got {type(meta).__name__}")
        try:
            json.dumps(meta)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"metadatas[{i}] is not JSON-serialisable ({exc}); indexes store metadata as JSON")
        out.append(dict(meta))
    return out


def _auto_pq_m(dim: int) -> int:
    """A divisor of dim close to dim/8 (8-dim sub-vectors), e.g. 48 for 384."""
    target = max(1, dim // 8)
    divisors = [m for m in range(1, dim + 1) if dim % m == 0]
    return min(divisors, key=lambda m: (abs(m - target), m))


class FaissIndex:
    """Cosine search over documents embedded with one encoder's document path (see the module docstring)."""

    def __init__(self, encoder=None, *, dim: int | None = None, kind: str = "flat", fingerprint: str | None = None,
                 document_task: str = "search_document", query_task: str = "search_query",
                 store_text: bool = True, encoder_spec: str | None = None, **kind_params):
        if kind not in KINDS:
            raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
        unknown = set(kind_params) - set(DEFAULT_PARAMS[kind])
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)} for a {kind} index; "
                             f"valid: {sorted(DEFAULT_PARAMS[kind]) or 'none'}")
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
        if dim is None or int(dim) < 1:
            raise ValueError("an index needs its dimension: pass an encoder or dim=")
        self.dim = int(dim)
        self.kind = kind
        self.params = {**DEFAULT_PARAMS[kind], **kind_params}
        self.fingerprint = fingerprint
        self.document_task = document_task
        self.query_task = query_task
        self.store_text = bool(store_text)
        self.encoder = encoder
        self.encoder_spec = encoder_spec
        self._encoder_class = type(encoder).__name__ if encoder is not None else None
        self._docs: dict[int, tuple[str, str | None, dict]] = {}
        self._tombstones: set[int] = set()
        self._tombstone_selector = None  # built once per change, shared read-only by searches
        self._lock = _ReadWriteLock()
        self._encode_lock = threading.Lock()
        self._faiss_index = self._new_faiss_index() if kind != "ivfpq" else None

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, encoder, texts: Sequence[str], ids: Sequence[str] | None = None,
              metadatas: Sequence[dict] | None = None, kind: str = "flat",
              document_task: str = "search_document", query_task: str = "search_query", batch_size: int = 64,
              show_progress_bar: bool = True, store_text: bool = True, encoder_spec: str | None = None,
              **kind_params) -> "FaissIndex":
        """Embed `texts` with the encoder's document path and index them."""
        index = cls(encoder, kind=kind, document_task=document_task, query_task=query_task,
                    store_text=store_text, encoder_spec=encoder_spec, **kind_params)
        index.add(texts, ids=ids, metadatas=metadatas, batch_size=batch_size, show_progress_bar=show_progress_bar)
        return index

    def _new_faiss_index(self, n_train: int | None = None):
        faiss = _faiss()
        p = self.params
        if self.kind == "flat":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
        if self.kind == "hnsw":
            hnsw = faiss.IndexHNSWFlat(self.dim, int(p["M"]), faiss.METRIC_INNER_PRODUCT)
            hnsw.hnsw.efConstruction = int(p["ef_construction"])
            hnsw.hnsw.efSearch = int(p["ef_search"])
            return faiss.IndexIDMap2(hnsw)
        # ivfpq: sizes follow the training set unless given
        n = int(n_train or 0)
        nbits = int(p["nbits"]) if p["nbits"] else next((b for b in (8, 7, 6, 5, 4) if n >= 39 * 2 ** b), 4)
        if n < 2 ** nbits:
            raise ValueError(f"an IVF-PQ index with nbits={nbits} needs at least {2 ** nbits} vectors to train its "
                             f"codebooks (got {n}); use kind='flat' for small collections")
        nlist = int(p["nlist"] or max(1, min(int(4 * math.sqrt(n)), n // 39)))
        pq_m = int(p["pq_m"] or _auto_pq_m(self.dim))
        if self.dim % pq_m:
            raise ValueError(f"pq_m={pq_m} must divide the dimension {self.dim}")
        if n < nlist:
            raise ValueError(f"nlist={nlist} needs at least as many training vectors (got {n})")
        self.params.update(nlist=nlist, pq_m=pq_m, nbits=int(nbits))
        quantizer = faiss.IndexFlatIP(self.dim)
        index = faiss.IndexIVFPQ(quantizer, self.dim, nlist, pq_m, int(nbits), faiss.METRIC_INNER_PRODUCT)
        index.nprobe = int(p["nprobe"])
        return index

    # ------------------------------------------------------------------ properties
    @property
    def faiss_index(self):
        """The underlying faiss.Index (ids are `int_id` of the user ids); None for an empty IVF-PQ index."""
        return self._faiss_index

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and int_id(doc_id) in self._docs and self._docs[int_id(doc_id)][0] == doc_id

    @property
    def ids(self) -> list[str]:
        return [doc[0] for doc in self._docs.values()]

    def get(self, doc_id: str) -> Hit:
        doc = self._docs.get(int_id(doc_id))
        if doc is None or doc[0] != doc_id:
            raise KeyError(f"id {doc_id!r} is not in the index")
        return Hit(doc[0], float("nan"), dict(doc[2]), doc[1])

    def lookup(self, faiss_id: int, score: float = float("nan")) -> Hit | None:
        """The Hit for a faiss id (None if unknown): how a sharded searcher maps ids back."""
        doc = self._docs.get(int(faiss_id))
        return None if doc is None else Hit(doc[0], float(score), dict(doc[2]), doc[1])

    def info(self) -> dict:
        return {
            "kind": self.kind, "dim": self.dim, "count": len(self), "metric": "cosine (inner product of "
            "L2-normalised vectors)", "params": dict(self.params), "fingerprint": self.fingerprint,
            "encoder_spec": self.encoder_spec, "document_task": self.document_task, "query_task": self.query_task,
            "store_text": self.store_text, "tombstones": len(self._tombstones),
        }

    def __repr__(self) -> str:
        return f"FaissIndex(kind={self.kind!r}, dim={self.dim}, count={len(self)})"

    # ------------------------------------------------------------------ writes
    def _check_new_ids(self, ids, n: int) -> list[str]:
        if ids is None:
            return [uuid.uuid4().hex for _ in range(n)]
        if isinstance(ids, str):
            raise TypeError("ids must be a list of strings, not one string")
        ids = list(ids)
        if len(ids) != n:
            raise ValueError(f"got {n} texts/vectors but {len(ids)} ids")
        for i, doc_id in enumerate(ids):
            if not isinstance(doc_id, str) or not doc_id:
                raise TypeError(f"ids[{i}] must be a non-empty string, got {doc_id!r:.60}")
        seen: set[str] = set()
        dup = sorted({d for d in ids if d in seen or seen.add(d)})
        if dup:
            raise ValueError(f"duplicate id(s) in the input: {dup[:5]}")
        present = [d for d in ids if d in self]
        if present:
            raise ValueError(f"id(s) already in the index: {present[:5]} (delete them first to replace)")
        clash = [d for d in ids if int_id(d) in self._docs]
        if clash:
            raise ValueError(f"id(s) {clash[:5]} collide with other ids' 63-bit hashes; rename them")
        return ids

    def add(self, texts: Sequence[str], ids: Sequence[str] | None = None, metadatas: Sequence[dict] | None = None,
            batch_size: int = 64, show_progress_bar: bool = False) -> list[str]:
        """Embed texts with the document path and add them; returns their ids (uuid4 hex when not given)."""
        items, _ = validate_texts(texts)
        batch_size = check_batch_size(batch_size)
        ids = self._check_new_ids(ids, len(items))
        metas = _check_metadata(metadatas, len(items))
        if not items:
            return []
        vectors = self._encode(items, self.document_task, batch_size, show_progress_bar, "embed documents")
        self._add_vectors(vectors, ids, metas, items)
        return ids

    def add_embeddings(self, vectors, ids: Sequence[str], metadatas: Sequence[dict] | None = None,
                       texts: Sequence[str] | None = None) -> list[str]:
        """Add vectors embedded elsewhere (with this index's encoder fingerprint and document task)."""
        x = _normalised(vectors, self.dim, "vectors")
        ids = self._check_new_ids(ids, len(x))
        metas = _check_metadata(metadatas, len(x))
        if texts is not None:
            texts, _ = validate_texts(texts)
            if len(texts) != len(x):
                raise ValueError(f"got {len(x)} vectors but {len(texts)} texts")
        self._add_vectors(x, ids, metas, texts)
        return ids

    def _add_vectors(self, x: np.ndarray, ids: list[str], metas: list[dict], texts) -> None:
        int_ids = np.fromiter((int_id(d) for d in ids), dtype=np.int64, count=len(ids))
        with self._lock.write():
            if self._tombstones and not self._tombstones.isdisjoint(int_ids.tolist()):
                self._compact()  # a re-added id must not stay masked by its own tombstone
            if self._faiss_index is None:  # IVF-PQ: train on the first vectors it sees
                index = self._new_faiss_index(len(x))
                index.train(x)
                self._faiss_index = index
            self._faiss_index.add_with_ids(x, int_ids)
            for i, (doc_id, meta) in enumerate(zip(ids, metas)):
                text = texts[i] if (texts is not None and self.store_text) else None
                self._docs[int(int_ids[i])] = (doc_id, text, meta)

    def delete(self, ids: Sequence[str]) -> int:
        """Remove documents by id; unknown ids raise KeyError before anything is removed."""
        if isinstance(ids, str):
            ids = [ids]
        ids = list(dict.fromkeys(ids))
        missing = [d for d in ids if d not in self]
        if missing:
            raise KeyError(f"id(s) not in the index: {missing[:5]}")
        if not ids:
            return 0
        int_ids = np.array([int_id(d) for d in ids], dtype=np.int64)
        with self._lock.write():
            if self.kind == "hnsw":
                self._tombstones.update(int_ids.tolist())
            else:
                self._faiss_index.remove_ids(int_ids)
            for i in int_ids.tolist():
                del self._docs[i]
            if self.kind == "hnsw" and len(self._tombstones) > COMPACT_FRACTION * self._faiss_index.ntotal:
                self._compact()
            self._tombstone_selector = self._make_selector()
        return len(ids)

    def _compact(self) -> None:
        """Rebuild the HNSW graph from its live vectors (caller holds the write lock)."""
        faiss = _faiss()
        old = self._faiss_index
        all_ids = faiss.vector_to_array(old.id_map).astype(np.int64)
        vectors = old.index.reconstruct_n(0, old.ntotal) if old.ntotal else np.zeros((0, self.dim), np.float32)
        keep = ~np.isin(all_ids, np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones)))
        fresh = self._new_faiss_index()
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
    def _encode(self, texts: list[str], task: str, batch_size: int, show: bool, desc: str) -> np.ndarray:
        if self.encoder is None:
            raise RuntimeError("this index has no encoder: pass one to FaissIndex.load(dir, encoder=...) "
                               "or use search_vectors / add_embeddings")
        chunk = max(batch_size * 16, 256)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with progress(len(texts), show, desc) as bar:
            for start in range(0, len(texts), chunk):
                part = texts[start:start + chunk]
                with self._encode_lock:
                    emb = self.encoder.encode(part, task=task, batch_size=batch_size, show_progress_bar=False)
                out[start:start + len(part)] = _normalised(emb, self.dim, "encoder output")
                bar.update(len(part))
        return out

    def search_parameters(self, k: int = 10, ef_search: int | None = None, nprobe: int | None = None):
        """faiss SearchParameters for one search: efSearch / nprobe and the HNSW tombstone filter."""
        faiss = _faiss()
        sel = self._tombstone_selector
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

    def search_vectors(self, queries, k: int = 10, *, ef_search: int | None = None,
                       nprobe: int | None = None):
        """Search with query vectors: (dim,) -> list[Hit]; (n, dim) -> list[list[Hit]]."""
        single = np.asarray(queries).ndim == 1
        q = _normalised(queries, self.dim, "query vectors")
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        with self._lock.read():
            if self._faiss_index is None or not self._docs:
                results = [[] for _ in range(len(q))]
            else:
                params = self.search_parameters(int(k), ef_search, nprobe)
                scores, labels = self._faiss_index.search(q, int(k), params=params)
                docs = self._docs
                results = [[Hit(docs[j][0], float(s), dict(docs[j][2]), docs[j][1])
                            for s, j in zip(srow.tolist(), lrow.tolist()) if j in docs]
                           for srow, lrow in zip(scores, labels)]
        return results[0] if single else results

    def search(self, queries: str | Sequence[str], k: int = 10, *, batch_size: int = 64,
               ef_search: int | None = None, nprobe: int | None = None):
        """Embed queries with the query path and search: str -> list[Hit]; list[str] -> list[list[Hit]]."""
        items, single = validate_texts(queries)
        if not items:
            return []
        q = self._encode(items, self.query_task, check_batch_size(batch_size), False, "embed queries")
        results = self.search_vectors(q, k, ef_search=ef_search, nprobe=nprobe)
        return results[0] if single else results

    # ------------------------------------------------------------------ persistence
    def _header(self) -> dict:
        docs = list(self._docs.values())
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "metric": METRIC,
            "dim": self.dim,
            "count": len(docs),
            "params": self.params,
            "encoder": {"fingerprint": self.fingerprint, "spec": self.encoder_spec, "class": self._encoder_class},
            "document_task": self.document_task,
            "query_task": self.query_task,
            "id_hash": "blake2b-64 & (2**63 - 1)",
            "store_text": self.store_text,
            "deleted_int_ids": sorted(self._tombstones),
            "ids": [d[0] for d in docs],
            "texts": [d[1] for d in docs] if self.store_text else None,
            "metadatas": [d[2] for d in docs],
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the index directory atomically (see the module docstring); returns the directory."""
        faiss = _faiss()
        directory = Path(directory)
        if directory.exists() and not directory.is_dir():
            raise NotADirectoryError(f"cannot save the index to {directory}: it is a file")
        with self._lock.read():
            if self._faiss_index is None:
                raise ValueError("an IVF-PQ index is trained on its first vectors: add some before saving")
            data = faiss.serialize_index(self._faiss_index).tobytes()
            header = self._header()
        sha = hashlib.sha256(data).hexdigest()
        name = f"index.{sha[:16]}.faiss"
        header.update(faiss_file=name, faiss_sha256=sha, faiss_bytes=len(data))
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / name
        if not (target.is_file() and target.stat().st_size == len(data) and _sha256_file(target) == sha):
            write_bytes_atomic(target, data)
        write_json_atomic(directory / INDEX_JSON, header)
        # one writer per directory: files an interrupted save left behind are no one's
        for old in [*directory.glob("index.*.faiss"), *directory.glob(".index.*.tmp")]:
            if old.name != name:
                try:
                    old.unlink()
                except OSError:
                    pass
        return directory

    @classmethod
    def read_header(cls, directory: str | os.PathLike) -> dict:
        """index.json of an index directory, checked for format; clear errors for anything else."""
        directory = Path(directory)
        if not directory.exists():
            raise FileNotFoundError(f"index directory {directory} does not exist")
        if not directory.is_dir():
            raise NotADirectoryError(f"{directory} is a file; an index is a directory holding {INDEX_JSON}")
        path = directory / INDEX_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is not a mote-rag index: no {INDEX_JSON} inside")
        try:
            header = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise IndexFormatError(f"{path} is not valid JSON ({exc}); the index metadata is damaged") from None
        if not isinstance(header, dict):
            raise IndexFormatError(f"{path} must hold a JSON object")
        version = header.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexFormatError(f"{path}: unsupported index format_version {version!r} (this mote-rag reads "
                                   f"{FORMAT_VERSION})")
        required = ("kind", "dim", "count", "params", "encoder", "document_task", "query_task", "faiss_file",
                    "faiss_sha256", "faiss_bytes", "ids", "metadatas")
        missing = [k for k in required if k not in header]
        if missing:
            raise IndexFormatError(f"{path} lacks field(s) {missing}")
        if header["kind"] not in KINDS:
            raise IndexFormatError(f"{path}: unknown index kind {header['kind']!r}")
        n = len(header["ids"])
        texts = header.get("texts")
        if n != header["count"] or len(header["metadatas"]) != n or (texts is not None and len(texts) != n):
            raise IndexFormatError(f"{path}: count, ids, texts and metadatas disagree in length")
        return header

    @classmethod
    def load(cls, directory: str | os.PathLike, encoder=None, *, check_fingerprint: bool = True) -> "FaissIndex":
        """Open a saved index; with an encoder, refuse one whose dimension or fingerprint differs."""
        faiss = _faiss()
        directory = Path(directory)
        header = cls.read_header(directory)
        dim = int(header["dim"])
        stored_fp = header["encoder"].get("fingerprint")
        if encoder is not None:
            if int(encoder.dim) != dim:
                raise EncoderMismatchError(
                    f"index {directory} holds {dim}-dim vectors but the encoder gives {int(encoder.dim)}-dim ones: "
                    f"it was built with another model (fingerprint {stored_fp})")
            if check_fingerprint and stored_fp is not None and str(encoder.fingerprint) != stored_fp:
                raise EncoderMismatchError(
                    f"index {directory} was built with encoder fingerprint {stored_fp}, but the encoder given has "
                    f"fingerprint {encoder.fingerprint}; its query vectors would not be comparable. Load the same "
                    f"model (index spec: {header['encoder'].get('spec')}) or rebuild the index")
        fpath = directory / header["faiss_file"]
        if not fpath.is_file():
            raise IndexFormatError(f"{directory}: index file {header['faiss_file']} named by {INDEX_JSON} is missing")
        data = fpath.read_bytes()
        if len(data) != header["faiss_bytes"]:
            raise IndexFormatError(f"{fpath} is truncated or altered: {len(data)} bytes, expected "
                                   f"{header['faiss_bytes']}")
        if hashlib.sha256(data).hexdigest() != header["faiss_sha256"]:
            raise IndexFormatError(f"{fpath} is corrupted: its sha256 differs from the one in {INDEX_JSON}")
        try:
            findex = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        except RuntimeError as exc:
            raise IndexFormatError(f"{fpath}: FAISS cannot read it ({str(exc).splitlines()[0]})") from None
        if findex.d != dim:
            raise IndexFormatError(f"{fpath} holds {findex.d}-dim vectors but {INDEX_JSON} says {dim}")
        tombstones = {int(i) for i in header.get("deleted_int_ids", [])}
        if findex.ntotal != header["count"] + len(tombstones):
            raise IndexFormatError(f"{fpath} holds {findex.ntotal} vectors but {INDEX_JSON} lists "
                                   f"{header['count']} ids (+{len(tombstones)} deleted)")
        params = dict(header["params"])
        index = cls(encoder, dim=dim, kind=header["kind"], fingerprint=None if encoder is not None else stored_fp,
                    document_task=header["document_task"], query_task=header["query_task"],
                    store_text=header.get("store_text", True), encoder_spec=header["encoder"].get("spec"), **params)
        index.fingerprint = stored_fp if stored_fp is not None else index.fingerprint
        index._encoder_class = header["encoder"].get("class") or index._encoder_class
        index._faiss_index = findex
        index._tombstones = tombstones
        index._tombstone_selector = index._make_selector()
        texts = header.get("texts") or [None] * header["count"]
        for doc_id, text, meta in zip(header["ids"], texts, header["metadatas"]):
            index._docs[int_id(doc_id)] = (doc_id, text, meta)
        if len(index._docs) != header["count"]:
            raise IndexFormatError(f"{directory / INDEX_JSON}: duplicate ids in the id list")
        return index


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
