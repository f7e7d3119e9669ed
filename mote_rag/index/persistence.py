"""Saving and loading a FaissIndex directory (the format the Ray shards also write); no pickle.

    index.<sha256[:16]>.faiss    faiss.serialize_index bytes, content-addressed
    index.json                   the header (mote_rag.index.header.IndexHeader), written last, atomically
    .mote-rag.lock               the one-writer lock (mote_rag.atomic.folder_lock), removed by a clean exit

A save takes the folder lock (a second writer waits up to `lock_timeout` seconds, then gets FolderLockedError),
writes the new faiss file under a new name, atomically replaces index.json, then removes the faiss files and
temp files index.json no longer names (safe: the lock guarantees no other save is under way). A crash at any
moment leaves an index.json whose faiss file exists with the recorded size and sha256: the previous index or the
new one, never a mix. Load validates every header field, the content hashes of the document table, the faiss
file's size (truncation) and sha256 (corruption), dimension, vector count and, with an encoder, its
document path's fingerprint (check_compatible), before FAISS reads a byte; then the faiss file's kind, metric and
dimension against the header. A load racing a save re-reads index.json when its faiss file vanished.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..atomic import LOCK_NAME, folder_lock, write_bytes_atomic, write_json_atomic
from ..schema import sha256_bytes, sha256_file
from .header import EXTERNAL, INDEX_JSON, IndexFormatError, IndexHeader, IndexSnapshot
from .ids import int_id


class EncoderMismatchError(ValueError):
    """The encoder (or vectors) do not match the index: another fingerprint or another dimension."""


def save_index(index, directory: str | os.PathLike, lock_timeout: float | None = None) -> Path:
    """Write `index` (a FaissIndex, or anything with `snapshot()`) to `directory` atomically, as the one writer of
    that folder."""

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"cannot save the index to {directory}: it is a file")
    snap = index.snapshot()  # plain parts, taken under the index's read lock
    data = snap.faiss_data
    sha = sha256_bytes(data)
    name = f"index.{sha[:16]}.faiss"
    header = snap.header(name, sha)
    payload = header.to_json()  # checks that everything is strict JSON before a byte is written
    directory.mkdir(parents=True, exist_ok=True)
    with folder_lock(directory / LOCK_NAME, f"index directory {directory}", lock_timeout):
        target = directory / name
        if not (target.is_file() and target.stat().st_size == len(data) and sha256_file(target) == sha):
            write_bytes_atomic(target, data)
        write_json_atomic(directory / INDEX_JSON, payload)
        # we hold the lock: faiss and temp files index.json does not name are left by earlier or killed saves
        for old in [*directory.glob("index.*.faiss"), *directory.glob(".index.*.tmp")]:
            if old.name != name:
                try:
                    old.unlink()
                except OSError:
                    pass
    return directory


def read_faiss_bytes(directory: Path, retries: int = 3) -> tuple[IndexHeader, bytes]:
    """The header and the verified bytes of its faiss file (re-reading index.json if a save replaced it)."""
    for attempt in range(retries):
        header = IndexHeader.read(directory)
        fpath = directory / header.faiss_file
        try:
            data = fpath.read_bytes()
        except FileNotFoundError:
            if attempt + 1 < retries and IndexHeader.read(directory).faiss_file != header.faiss_file:
                continue  # a concurrent save replaced index.json and removed the old faiss file
            raise IndexFormatError(
                f"{directory}: index file {header.faiss_file} named by {INDEX_JSON} is missing"
            ) from None
        if len(data) != header.faiss_bytes:
            raise IndexFormatError(f"{fpath} is truncated or altered: {len(data)} bytes, expected {header.faiss_bytes}")
        if sha256_bytes(data) != header.faiss_sha256:
            raise IndexFormatError(f"{fpath} is corrupted: its sha256 differs from the one in {INDEX_JSON}")
        return header, data
    raise AssertionError("unreachable")


def path_fingerprint(encoder, task: str) -> str | None:
    """The encoder's fingerprint of one task path, or None for an encoder that cannot tell (checked whole)."""
    fn = getattr(encoder, "path_fingerprint", None)
    return str(fn(task)) if callable(fn) else None


def check_compatible(index, encoder, where: str) -> None:
    """The one rule for opening stored vectors with an encoder (FaissIndex, ShardedIndex, the vector stores).

    `index` is anything with dim, fingerprint, document_task, query_task and document_fingerprint (an IndexHeader,
    a shard manifest, an index). The dimension must match. When the index records its document path's fingerprint,
    that path must be the encoder's, bit for bit, and the encoder must have the query path the index routes to;
    the rest of the model may differ (a retrained query expert, a new collection expert). An index written before
    per-path fingerprints needs the whole model's fingerprint."""
    if int(encoder.dim) != index.dim:
        raise EncoderMismatchError(
            f"index {where} holds {index.dim}-dim vectors but the encoder gives {int(encoder.dim)}-dim ones: "
            f"it was built with another model (fingerprint {index.fingerprint})"
        )
    if index.fingerprint == EXTERNAL:
        raise EncoderMismatchError(
            f"index {where} records no encoder fingerprint (its vectors were embedded outside mote-rag), so the "
            "encoder given cannot be vouched for; load it without an encoder, or with check_fingerprint=False"
        )
    stored = getattr(index, "document_fingerprint", None)
    mine = path_fingerprint(encoder, index.document_task) if stored else None
    if stored and mine is not None:
        if mine != stored:
            raise EncoderMismatchError(
                f"index {where} holds documents embedded by the {index.document_task!r} path with fingerprint "
                f"{stored}, but the encoder's {index.document_task!r} path has fingerprint {mine} (whole models: "
                f"{index.fingerprint} built the index, the encoder is {encoder.fingerprint}): its document vectors "
                f"are not this encoder's. Load the model whose document path matches (index spec: "
                f"{getattr(index, 'encoder_spec', None)}) or rebuild the index with this one"
            )
        if index.query_task not in encoder.tasks:
            raise EncoderMismatchError(
                f"index {where} routes queries to {index.query_task!r}, which the encoder does not have "
                f"(tasks: {', '.join(encoder.tasks.names)}); open it with the model that holds that expert "
                "(`mote-rag experts list MODEL`)"
            )
        return
    if str(encoder.fingerprint) != index.fingerprint:
        raise EncoderMismatchError(
            f"index {where} was built with encoder fingerprint {index.fingerprint}, but the encoder given has "
            f"fingerprint {encoder.fingerprint}; its query vectors would not be comparable. Load the same "
            f"model (index spec: {getattr(index, 'encoder_spec', None)}) or rebuild the index"
        )


def same_document_vectors(a, b) -> bool:
    """`check_compatible`'s rule between two stored indexes (headers, shard manifests, indexes): their documents
    were embedded by the same path when both record its fingerprint, else by the same whole model."""
    if a.document_fingerprint and b.document_fingerprint:
        return a.document_fingerprint == b.document_fingerprint
    return a.fingerprint == b.fingerprint


def check_faiss_matches(findex, header: IndexHeader, fpath: Path) -> None:
    """The faiss file must be what index.json says: dimension, metric and kind (an edited header is refused)."""
    import faiss

    inner = faiss.downcast_index(findex.index) if hasattr(findex, "id_map") else findex
    kind = {faiss.IndexFlatIP: "flat", faiss.IndexHNSWFlat: "hnsw", faiss.IndexIVFPQ: "ivfpq"}.get(type(inner))
    problems = []
    if findex.d != header.dim:
        problems.append(f"{findex.d}-dim vectors where {INDEX_JSON} says {header.dim}")
    if findex.metric_type != faiss.METRIC_INNER_PRODUCT:
        problems.append(f"metric {findex.metric_type} where {INDEX_JSON} says inner product")
    if kind != header.kind:
        problems.append(f"a {kind or type(inner).__name__} index where {INDEX_JSON} says {header.kind!r}")
    if problems:
        raise IndexFormatError(f"{fpath} holds {'; '.join(problems)}: the header or the file was altered")


def load_index(cls, directory: str | os.PathLike, encoder=None, *, check_fingerprint: bool = True):
    """Open a saved index as `cls` (FaissIndex); with an encoder, refuse one whose dimension or fingerprint
    differs (check_fingerprint=False skips the fingerprint, never the dimension)."""
    import faiss

    directory = Path(directory)
    header, data = read_faiss_bytes(directory)
    if encoder is not None:
        if check_fingerprint or int(encoder.dim) != header.dim:
            check_compatible(header, encoder, str(directory))
    fpath = directory / header.faiss_file
    try:
        findex = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
    except RuntimeError as exc:
        raise IndexFormatError(f"{fpath}: FAISS cannot read it ({str(exc).splitlines()[0]})") from None
    check_faiss_matches(findex, header, fpath)
    tombstones = set(header.deleted_int_ids)
    if findex.ntotal != header.count + len(tombstones):
        raise IndexFormatError(
            f"{fpath} holds {findex.ntotal} vectors but {INDEX_JSON} lists "
            f"{header.count} ids (+{len(tombstones)} deleted)"
        )
    _check_ids_match(findex, header, directory / INDEX_JSON)
    return cls.from_snapshot(IndexSnapshot.of(header, data), encoder, faiss_index=findex)


def _check_ids_match(findex, header: IndexHeader, path: Path) -> None:
    """Every listed id must hash to a stored vector id (flat/HNSW keep an id map; IVF-PQ its inverted lists)."""
    import faiss

    if hasattr(findex, "id_map"):
        stored = faiss.vector_to_array(findex.id_map).astype(np.int64)
    elif hasattr(findex, "invlists"):
        inv = findex.invlists
        parts = [
            faiss.rev_swig_ptr(inv.get_ids(i), inv.list_size(i)).copy() for i in range(inv.nlist) if inv.list_size(i)
        ]
        stored = np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)
    else:
        return
    wanted = np.fromiter((int_id(d) for d in header.ids), dtype=np.int64, count=header.count)
    missing = ~np.isin(wanted, stored)
    if missing.any():
        doc_id = header.ids[int(np.flatnonzero(missing)[0])]
        raise IndexFormatError(
            f"{path}: id {doc_id!r:.60} has no vector in the faiss file; the id list was edited "
            "after the save. Rebuild the index, or restore the file"
        )
