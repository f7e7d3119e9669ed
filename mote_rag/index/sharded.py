"""ShardedIndex: search a set of FAISS shard indexes as one, in one process.

A shard set is what `mote-rag index --ray --shards N` (mote_rag.index.ray_build) writes: N ordinary index
directories, each in exactly the single-machine FaissIndex format, plus a manifest that names them:

    <set>/shards.json                       written last, atomically (declared in index/shard_manifest.py)
    <set>/<build>/shard-00000-of-00002/     index.json + index.<sha>.faiss, as FaissIndex.save writes
    <set>/<build>/shard-00001-of-00002/

Every document lives in exactly one shard, chosen by `int_id(id) % N` (a stable hash, unlike Python's
`hash`), and keeps its stable 63-bit FAISS id, so `faiss.IndexShards(successive_ids=False)` over the shards
returns ids that the shards' id tables resolve. A search embeds the query once (search_query path), asks
every shard for its top k and merges them: the result equals one index holding all the vectors.

Opening refuses, with an error naming the shard, a set with a missing shard, a shard built by another
encoder (fingerprint), another dimension, kind or task pair, a shard rewritten after the manifest (its
faiss sha256 differs), or an id stored in two shards.

    index = ShardedIndex.load(set_dir, encoder=None)             # the manifest names the shards
    index = ShardedIndex.from_directories([dir0, dir1], encoder)  # shards gathered by hand, no manifest
    index.search("query", k=10) / index.search([q1, q2], k=10) / index.search_vectors(vectors, k=10)
    open_index(directory, encoder=None) -> FaissIndex | ShardedIndex   # whichever the directory holds
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import write_json_atomic
from ..inputs import check_batch_size, check_vectors, validate_texts
from .faiss_index import INDEX_JSON, EncoderMismatchError, FaissIndex, Hit, IndexFormatError, int_id
from .header import IndexHeader
from .params import check_k, check_search_overrides
from .persistence import check_compatible, same_document_vectors
from .shard_manifest import (
    ROUTING,
    SHARD_SET_FORMAT,
    SHARD_SET_VERSION,
    SHARDS_JSON,
    ShardEntry,
    ShardManifest,
    ShardSetError,
)

__all__ = [
    "ShardedIndex",
    "ShardManifest",
    "ShardEntry",
    "ShardSetError",
    "SHARDS_JSON",
    "SHARD_SET_FORMAT",
    "SHARD_SET_VERSION",
    "ROUTING",
    "shard_of",
    "shard_name",
    "is_shard_set",
    "write_manifest",
    "read_manifest",
    "read_any_header",
    "open_index",
    "IndexFormatError",
]


def shard_of(doc_id: str, num_shards: int) -> int:
    """The shard a document goes to: its stable FAISS id modulo the number of shards."""
    return int_id(doc_id) % int(num_shards)


def shard_name(i: int, num_shards: int) -> str:
    return f"shard-{i:05d}-of-{num_shards:05d}"


def is_shard_set(directory: str | os.PathLike) -> bool:
    return (Path(directory) / SHARDS_JSON).is_file()


def write_manifest(
    directory: str | os.PathLike, shard_dirs: Sequence[str | os.PathLike], build: dict | None = None
) -> dict:
    """Write `<directory>/shards.json` (atomically) for shards already saved under `directory`; returns its JSON.

    The manifest copies the encoder, dim, kind and tasks from the shards (which must agree) and records each
    shard's count and faiss sha256, so a shard replaced later is noticed when the set is opened.
    """
    directory = Path(directory).resolve()
    headers: list[tuple[str, IndexHeader]] = []
    entries = []
    for i, shard_dir in enumerate(shard_dirs):
        shard_dir = Path(shard_dir).resolve()
        header = IndexHeader.read(shard_dir)
        try:
            rel = shard_dir.relative_to(directory).as_posix()
        except ValueError:
            raise ValueError(f"shard {shard_dir} is not inside the shard-set directory {directory}") from None
        headers.append((rel, header))
        entries.append(ShardEntry(index=i, path=rel, count=header.count, faiss_sha256=header.faiss_sha256))
    if not headers:
        raise ValueError("a shard set needs at least one shard")
    _check_consistent(headers)
    first = headers[0][1]
    manifest = ShardManifest(
        kind=first.kind,
        dim=first.dim,
        fingerprint=first.fingerprint,
        document_task=first.document_task,
        query_task=first.query_task,
        shards=entries,
        encoder_spec=first.encoder_spec,
        encoder_class=first.encoder_class,
        build=build or {},
    )
    data = manifest.to_json()
    write_json_atomic(directory / SHARDS_JSON, data)
    return data


def read_manifest(directory: str | os.PathLike) -> ShardManifest:
    """shards.json of a shard set, fully validated (mote_rag.index.shard_manifest.ShardManifest)."""
    return ShardManifest.read(directory)


def _describe_encoder(h) -> str:
    return f"fingerprint {h.fingerprint} (model {h.encoder_spec})"


def _check_consistent(named: Sequence[tuple[str, object]]) -> None:
    """Every shard (an IndexHeader or a FaissIndex) must come from the same encoder and hold the same kind of
    vectors as the first one."""
    name0, h0 = named[0]
    for name, h in named[1:]:
        if not same_document_vectors(h, h0):  # index.persistence: the one compatibility rule
            raise ShardSetError(
                f"shard {name} was built with another encoder: {_describe_encoder(h)}, but shard {name0} with "
                f"{_describe_encoder(h0)}; its vectors are not comparable. Rebuild it with the same model"
            )
        for key in ("dim", "kind", "document_task", "query_task"):
            if getattr(h, key) != getattr(h0, key):
                raise ShardSetError(
                    f"shard {name} has {key}={getattr(h, key)!r} but shard {name0} has "
                    f"{key}={getattr(h0, key)!r}; the shards do not belong to one set"
                )


class ShardedIndex:
    """Several FaissIndex shards searched as one (see the module docstring).

    A read-only view: searches may run concurrently; to change a shard, open it as a FaissIndex, add/delete,
    save, rewrite the manifest with `write_manifest`, then open the set again.
    """

    def __init__(
        self,
        shards: Sequence[FaissIndex],
        encoder=None,
        names: Sequence[str] | None = None,
        manifest: ShardManifest | None = None,
    ):
        shards = list(shards)
        if not shards:
            raise ValueError("a sharded index needs at least one shard")
        names = list(names) if names is not None else [f"#{i}" for i in range(len(shards))]
        _check_consistent(list(zip(names, shards)))
        seen: dict[int, str] = {}
        for name, shard in zip(names, shards):
            for doc_id in shard.ids:  # ids live in one shard only, or merged results would repeat them
                other = seen.setdefault(int_id(doc_id), name)
                if other != name:
                    raise ShardSetError(
                        f"id {doc_id!r} is stored in shard {other} and in shard "
                        f"{name}; a shard set holds each document once"
                    )
        self.shards = shards
        self.names = names
        self.manifest = manifest
        self.encoder = encoder
        first = shards[0]
        self.dim, self.kind, self.fingerprint = first.dim, first.kind, first.fingerprint
        self.document_task, self.query_task = first.document_task, first.query_task
        self.document_fingerprint = first.document_fingerprint
        self._faiss_index = None

    # ------------------------------------------------------------------ opening
    @classmethod
    def load(cls, directory: str | os.PathLike, encoder=None, *, check_fingerprint: bool = True) -> ShardedIndex:
        """Open the shard set in `directory`; every shard its manifest names must be there and match."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        n = manifest.num_shards
        headers: list[tuple[str, IndexHeader]] = []
        for entry in manifest.shards:
            shard_dir = directory / entry.path
            label = f"{entry.index} of {n} ({entry.path})"
            if not shard_dir.resolve().is_relative_to(directory.resolve()):
                raise ShardSetError(f"{SHARDS_JSON} in {directory} names shard {label} outside the set's directory")
            if not (shard_dir / INDEX_JSON).is_file():
                raise ShardSetError(
                    f"shard {label} is missing from {directory}: the set is incomplete and a search would miss "
                    f"about 1/{n} of the documents. Copy the shard back or rebuild the set"
                )
            header = IndexHeader.read(shard_dir)
            if header.faiss_sha256 != entry.faiss_sha256 or header.count != entry.count:
                raise ShardSetError(
                    f"shard {label} differs from the one {SHARDS_JSON} lists (count/sha256): it was "
                    "replaced after the set was built, so the set may mix two builds. Rebuild it"
                )
            headers.append((label, header))
        if headers[0][1].fingerprint != manifest.fingerprint:
            raise ShardSetError(
                f"shard {headers[0][0]} has {_describe_encoder(headers[0][1])} but {SHARDS_JSON} "
                f"records {_describe_encoder(manifest)}"
            )
        _check_consistent(headers)
        if encoder is not None and check_fingerprint:
            check_compatible(headers[0][1], encoder, str(directory))
        shards = [
            FaissIndex.load(directory / e.path, encoder=encoder, check_fingerprint=check_fingerprint)
            for e in manifest.shards
        ]
        return cls(shards, encoder=encoder, names=[label for label, _ in headers], manifest=manifest)

    @classmethod
    def from_directories(
        cls, directories: Sequence[str | os.PathLike], encoder=None, *, check_fingerprint: bool = True
    ) -> ShardedIndex:
        """Open shard index directories gathered without a manifest (e.g. copied from several hosts)."""
        directories = [Path(d) for d in directories]
        for d in directories:
            if not (d / INDEX_JSON).is_file():
                raise ShardSetError(f"shard {d} is missing or not an index directory (no {INDEX_JSON})")
        _check_consistent([(str(d), IndexHeader.read(d)) for d in directories])
        shards = [FaissIndex.load(d, encoder=encoder, check_fingerprint=check_fingerprint) for d in directories]
        return cls(shards, encoder=encoder, names=[str(d) for d in directories])

    # ------------------------------------------------------------------ properties
    def __len__(self) -> int:
        return sum(len(s) for s in self.shards)

    def __contains__(self, doc_id: object) -> bool:
        return any(doc_id in s for s in self.shards)

    @property
    def num_shards(self) -> int:
        return len(self.shards)

    def get(self, doc_id: str) -> Hit:
        for shard in self.shards:
            if doc_id in shard:
                return shard.get(doc_id)
        raise KeyError(f"id {doc_id!r} is in none of the {self.num_shards} shards")

    def info(self) -> dict:
        return {
            "kind": self.kind,
            "dim": self.dim,
            "count": len(self),
            "num_shards": self.num_shards,
            "shard_counts": [len(s) for s in self.shards],
            "fingerprint": self.fingerprint,
            "document_task": self.document_task,
            "query_task": self.query_task,
            "encoder_spec": self.shards[0].encoder_spec,
        }

    @property
    def faiss_index(self):
        """A faiss.IndexShards over the shards' indexes (successive_ids=False: the ids are the shards' own)."""
        if self._faiss_index is None:
            import faiss

            merged = faiss.IndexShards(self.dim, True, False)
            for shard in self.shards:
                if shard.faiss_index is not None:
                    merged.add_shard(shard.faiss_index)
            self._faiss_index = merged
        return self._faiss_index

    # ------------------------------------------------------------------ search
    def _lookup(self, faiss_id: int, score: float) -> Hit | None:
        for shard in self.shards:
            hit = shard.lookup(faiss_id, score)
            if hit is not None:
                return hit
        return None

    def select(self, filter=None, ids: Sequence[str] | None = None) -> list[str]:
        """Ids of the documents (among `ids`, in their order) whose metadata pass `filter` (FaissIndex.select);
        without `ids`, shard by shard."""
        chosen = [doc_id for shard in self.shards for doc_id in shard.select(filter, ids)]
        if ids is None:
            return chosen
        found = set(chosen)
        return [doc_id for doc_id in dict.fromkeys([ids] if isinstance(ids, str) else ids) if doc_id in found]

    def vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of `ids`, each read from the shard that holds it (FaissIndex.vectors)."""
        ids = [ids] if isinstance(ids, str) else list(ids)
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for shard in self.shards:
            rows = [i for i, doc_id in enumerate(ids) if doc_id in shard]
            if rows:
                out[rows] = shard.vectors([ids[i] for i in rows])
        missing = [doc_id for doc_id in ids if doc_id not in self]
        if missing:
            raise KeyError(f"id(s) in none of the {self.num_shards} shards: {missing[:5]}")
        return out

    def encode_queries(self, queries: str | Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Query vectors through the set's recorded query path (`query_task`), as `search` embeds them."""
        if self.encoder is None:
            raise RuntimeError(
                "this sharded index has no encoder: pass one to ShardedIndex.load(dir, encoder=...) "
                "or use search_vectors"
            )
        items, _ = validate_texts(queries)
        q = self.encoder.encode(  # one encode at a time: the encoder's own lock (EncoderBase.encode)
            items, task=self.query_task, batch_size=check_batch_size(batch_size), show_progress_bar=False
        )
        return np.asarray(q, dtype=np.float32).reshape(len(items), -1)

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
        """Search every shard with query vectors and merge: (dim,) -> list[Hit]; (n, dim) -> list[list[Hit]].

        `filter` / `ids` restrict the documents searched, in every shard (FaissIndex.search_vectors)."""
        import faiss

        arr = check_vectors(queries, "query vectors")
        single = arr.ndim == 1
        q = arr[None, :] if single else arr
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise EncoderMismatchError(f"query vectors must be ({self.dim},) or (n, {self.dim}), got shape {arr.shape}")
        k = check_k(k, len(self))
        check_search_overrides(ef_search, nprobe)
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        if not np.isfinite(q).all() or (norms == 0).any():
            raise ValueError("query vectors must be finite and non-zero")
        q = np.ascontiguousarray(q / norms, dtype=np.float32)
        live = [s for s in self.shards if s.faiss_index is not None and len(s)]
        restricted = filter is not None or ids is not None
        if restricted:
            chosen = [(s, s.selection(filter, ids)) for s in live]
            live = [s for s, c in chosen if len(c)]
            selections = [c for _, c in chosen if len(c)]
        if not live:
            results = [[] for _ in range(len(q))]
            return results[0] if single else results
        if restricted:
            params = [s.search_parameters(k, ef_search, nprobe, c) for s, c in zip(live, selections)]
        else:
            params = [s.search_parameters(k, ef_search, nprobe) for s in live]
        if all(p is None for p in params):
            # exact flat shards without deletions: one faiss.IndexShards searches them all and merges
            scores, labels = self.faiss_index.search(q, k)
        else:
            # per-shard settings (HNSW efSearch, IVF nprobe, deletion filters) cannot pass through IndexShards:
            # search each shard with its own parameters, then let faiss merge the lists
            per = [s.faiss_index.search(q, k, params=p) for s, p in zip(live, params)]
            scores, labels = faiss.merge_knn_results(
                np.stack([d for d, _ in per]), np.stack([i for _, i in per]), keep_max=True
            )
        results = []
        for srow, lrow in zip(scores.tolist(), labels.tolist()):
            hits = [self._lookup(j, s) for s, j in zip(srow, lrow) if j >= 0]
            results.append([h for h in hits if h is not None])
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
        """Embed queries with the query path once and search every shard: str -> list[Hit]; list -> lists."""
        if self.encoder is None:
            raise RuntimeError(
                "this sharded index has no encoder: pass one to ShardedIndex.load(dir, encoder=...) "
                "or use search_vectors"
            )
        items, single = validate_texts(queries)
        check_k(k, len(self))
        check_search_overrides(ef_search, nprobe)
        if not items:
            return []
        q = self.encode_queries(items, batch_size)
        results = self.search_vectors(q, k, ef_search=ef_search, nprobe=nprobe, filter=filter, ids=ids)
        return results[0] if single else results


def read_any_header(directory: str | os.PathLike) -> IndexHeader | ShardManifest:
    """index.json of a single index, or the shards.json manifest of a shard set (both have fingerprint,
    encoder_spec, kind, dim, count and the task pair)."""
    return read_manifest(directory) if is_shard_set(directory) else IndexHeader.read(directory)


def open_index(directory: str | os.PathLike, encoder=None, **kwargs):
    """A FaissIndex or a ShardedIndex, whichever `directory` holds; both answer `search` the same way."""
    if is_shard_set(directory):
        return ShardedIndex.load(directory, encoder=encoder, **kwargs)
    return FaissIndex.load(directory, encoder=encoder, **kwargs)
