"""index.json, the header of an index directory: one dataclass, read and written only here.

    format_version 2, kind, metric, dim, count, params (the kind's options, see index.params),
    encoder {fingerprint (required: EXTERNAL when the vectors came from outside mote-rag), spec, class,
             document_path, query_path (per-path fingerprints, MoTEModel.path_fingerprint; absent before them)},
    document_task, query_task (the path queries are routed to: "search_query", or a collection's
    "search_query@<name>"), id_hash, store_text, deleted_int_ids (HNSW tombstones),
    faiss_file (a plain name in the folder), faiss_sha256, faiss_bytes,
    ids, texts (or null), metadatas, content_sha256 {ids, texts, metadatas}: sha256 of each column's canonical
    JSON, so an id, text or metadata edited by hand is refused on load, naming the column (and the id, when an
    edited id no longer matches a stored vector), search_sha256: sha256 of every field that changes what a search
    does (kind, metric, dim, params, encoder, tasks, tombstones, the faiss file's identity), so an edited kind or
    query path is refused too; the loader also checks kind, metric and dim against the faiss file itself.
Format 1 (before content hashes and required fingerprints) is refused with a "rebuild" message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..schema import Fields, SchemaError, canonical_sha256, is_sha256, read_json_file
from .ids import ID_HASH, DocRecord
from .params import KINDS, METRIC, check_kind_params

INDEX_JSON = "index.json"
FORMAT_VERSION = 2
EXTERNAL = "external"  # the fingerprint of vectors embedded outside mote-rag (add_embeddings without an encoder)


class IndexFormatError(SchemaError):
    """An index directory that is missing pieces, truncated, corrupted, edited or of an unknown format."""


@dataclass(frozen=True)
class IndexSnapshot:
    """An index as plain parts: what `FaissIndex.snapshot()` takes under the index's read lock, what
    mote_rag.index.persistence writes and reads, and what `FaissIndex.from_snapshot` builds an index from.
    `faiss_data` is the faiss index serialised (faiss.serialize_index); `fingerprint` None: vectors from outside."""

    kind: str
    dim: int
    params: dict
    fingerprint: str | None
    document_task: str
    query_task: str
    records: list[DocRecord]
    faiss_data: bytes
    store_text: bool = True
    encoder_spec: str | None = None
    encoder_class: str | None = None
    deleted_int_ids: list[int] = field(default_factory=list)
    document_fingerprint: str | None = None
    query_fingerprint: str | None = None

    def header(self, faiss_file: str, faiss_sha256: str) -> IndexHeader:
        """index.json of this snapshot, whose faiss bytes are stored as `faiss_file`."""
        return IndexHeader(
            kind=self.kind,
            dim=self.dim,
            params=dict(self.params),
            fingerprint=self.fingerprint or EXTERNAL,
            document_task=self.document_task,
            query_task=self.query_task,
            records=self.records,
            faiss_file=faiss_file,
            faiss_sha256=faiss_sha256,
            faiss_bytes=len(self.faiss_data),
            store_text=self.store_text,
            encoder_spec=self.encoder_spec,
            encoder_class=self.encoder_class,
            deleted_int_ids=list(self.deleted_int_ids),
            document_fingerprint=self.document_fingerprint,
            query_fingerprint=self.query_fingerprint,
        )

    @classmethod
    def of(cls, header: IndexHeader, faiss_data: bytes) -> IndexSnapshot:
        """The snapshot a verified header and its faiss bytes describe."""
        return cls(
            kind=header.kind,
            dim=header.dim,
            params=dict(header.params),
            fingerprint=None if header.fingerprint == EXTERNAL else header.fingerprint,
            document_task=header.document_task,
            query_task=header.query_task,
            records=list(header.records),
            faiss_data=faiss_data,
            store_text=header.store_text,
            encoder_spec=header.encoder_spec,
            encoder_class=header.encoder_class,
            deleted_int_ids=list(header.deleted_int_ids),
            document_fingerprint=header.document_fingerprint,
            query_fingerprint=header.query_fingerprint,
        )


@dataclass(frozen=True)
class IndexHeader:
    kind: str
    dim: int
    params: dict
    fingerprint: str
    document_task: str
    query_task: str
    records: list[DocRecord]
    faiss_file: str
    faiss_sha256: str
    faiss_bytes: int
    store_text: bool = True
    encoder_spec: str | None = None
    encoder_class: str | None = None
    deleted_int_ids: list[int] = field(default_factory=list)
    document_fingerprint: str | None = None  # the document path's fingerprint; None: written before paths
    query_fingerprint: str | None = None  # the query path's, at build time (informative: queries may be retrained)
    format_version: int = FORMAT_VERSION

    @property
    def count(self) -> int:
        return len(self.records)

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.records]

    @property
    def encoder(self) -> dict:
        out = {"fingerprint": self.fingerprint, "spec": self.encoder_spec, "class": self.encoder_class}
        if self.document_fingerprint is not None:
            out.update(document_path=self.document_fingerprint, query_path=self.query_fingerprint)
        return out

    def search_fields(self) -> dict:
        """Every field that changes what a search returns, as written; sealed by `search_sha256`."""
        return {
            "kind": self.kind,
            "metric": METRIC,
            "dim": self.dim,
            "params": self.params,
            "encoder": self.encoder,
            "document_task": self.document_task,
            "query_task": self.query_task,
            "store_text": self.store_text,
            "deleted_int_ids": sorted(self.deleted_int_ids),
            "faiss_file": self.faiss_file,
            "faiss_sha256": self.faiss_sha256,
            "faiss_bytes": self.faiss_bytes,
        }

    # ------------------------------------------------------------------ writing
    def to_json(self) -> dict:
        ids = [r.id for r in self.records]
        texts = [r.text for r in self.records] if self.store_text else None
        metas = [r.metadata for r in self.records]
        return {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "metric": METRIC,
            "dim": self.dim,
            "count": len(ids),
            "params": self.params,
            "encoder": self.encoder,
            "document_task": self.document_task,
            "query_task": self.query_task,
            "id_hash": ID_HASH,
            "store_text": self.store_text,
            "deleted_int_ids": sorted(self.deleted_int_ids),
            "faiss_file": self.faiss_file,
            "faiss_sha256": self.faiss_sha256,
            "faiss_bytes": self.faiss_bytes,
            "content_sha256": content_hashes(ids, texts, metas),
            "search_sha256": canonical_sha256(self.search_fields()),
            "ids": ids,
            "texts": texts,
            "metadatas": metas,
        }

    # ------------------------------------------------------------------ reading
    @classmethod
    def from_json(cls, data: Any, source: str | os.PathLike = INDEX_JSON) -> IndexHeader:
        try:
            return cls._from_json(data, source)
        except SchemaError as exc:
            raise IndexFormatError(str(exc)) from None

    @classmethod
    def _from_json(cls, data: Any, source) -> IndexHeader:
        f = Fields(data, source)
        version = f.value("format_version", lambda _: True, "")
        if version == 1:
            raise SchemaError(
                f"{source} is format_version 1, written by an older mote-rag without content hashes; "
                "rebuild the index (mote-rag index ... --overwrite)"
            )
        if version != FORMAT_VERSION:
            raise f.fail("format_version", f"unsupported version {version!r} (this mote-rag reads {FORMAT_VERSION})")
        kind = f.str("kind", choices=KINDS)
        f.str("metric", choices=(METRIC,))
        dim = f.int("dim", lo=1, hi=1 << 16)
        count = f.int("count", lo=0)
        params = f.dict("params")
        try:
            params = check_kind_params(kind, params, dim)
        except (TypeError, ValueError) as exc:
            raise f.fail("params", str(exc)) from None
        enc = f.obj("encoder")
        fingerprint = enc.str("fingerprint", nonempty=True)
        spec = enc.str("spec", optional=True, nullable=True)
        enc_class = enc.str("class", optional=True, nullable=True)
        document_fp = enc.str("document_path", optional=True, nullable=True, nonempty=True)
        query_fp = enc.str("query_path", optional=True, nullable=True, nonempty=True)
        document_task = f.str("document_task", nonempty=True)
        query_task = f.str("query_task", nonempty=True)
        f.str("id_hash", choices=(ID_HASH,))
        store_text = f.bool("store_text")
        deleted = f.int_list("deleted_int_ids")
        faiss_file = f.file("faiss_file")
        faiss_sha256 = f.sha256("faiss_sha256")
        faiss_bytes = f.int("faiss_bytes", lo=1)
        hashes = f.obj("content_sha256")
        ids = f.str_list("ids")
        texts = f.list(
            "texts", nullable=True, item=lambda x: isinstance(x, str) or x is None, item_expected="a string or null"
        )
        metas = f.list("metadatas", item=lambda x: isinstance(x, dict), item_expected="a JSON object")
        for name, column in (("ids", ids), ("texts", texts), ("metadatas", metas)):
            if column is not None and len(column) != count:
                raise f.fail(name, f"lists {len(column)} entries but count is {count}")
        if texts is None and store_text:
            raise f.fail("texts", "is null but store_text is true")
        actual = content_hashes(ids, texts, metas)
        for name in ("ids", "texts", "metadatas"):
            expected = hashes.value(name, lambda v: v is None or is_sha256(v), "a sha256 hex digest or null")
            if expected != actual[name]:
                raise SchemaError(
                    f"{source}: the {name} column was edited after the index was saved (its sha256 "
                    f"differs from content_sha256.{name}); rebuild the index, or restore the file"
                )
        if len(set(ids)) != len(ids):
            dup = next(d for i, d in enumerate(ids) if d in ids[:i])
            raise f.fail("ids", f"id {dup!r:.60} is listed twice")
        records = [DocRecord(i, t, m) for i, t, m in zip(ids, texts or [None] * count, metas)]
        header = cls(
            kind=kind,
            dim=dim,
            params=params,
            fingerprint=fingerprint,
            document_task=document_task,
            query_task=query_task,
            records=records,
            faiss_file=faiss_file,
            faiss_sha256=faiss_sha256,
            faiss_bytes=faiss_bytes,
            store_text=store_text,
            encoder_spec=spec,
            encoder_class=enc_class,
            deleted_int_ids=list(deleted),
            document_fingerprint=document_fp,
            query_fingerprint=query_fp,
        )
        sealed = f.value("search_sha256", lambda v: v is None or is_sha256(v), "a sha256 hex digest", optional=True)
        if sealed is not None and sealed != canonical_sha256(header.search_fields()):
            raise SchemaError(
                f"{source}: a field that changes search results (kind, metric, dim, params, encoder, document_task, "
                "query_task, store_text, deleted_int_ids or the faiss file) was edited after the index was saved "
                "(search_sha256 differs); rebuild the index, or restore the file"
            )
        return header

    @classmethod
    def read(cls, directory: str | os.PathLike) -> IndexHeader:
        """index.json of an index directory, fully validated; clear errors for anything else."""
        directory = Path(directory)
        if not directory.exists():
            raise FileNotFoundError(f"index directory {directory} does not exist")
        if not directory.is_dir():
            raise NotADirectoryError(f"{directory} is a file; an index is a directory holding {INDEX_JSON}")
        path = directory / INDEX_JSON
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is not a mote-rag index: no {INDEX_JSON} inside")
        try:
            data = read_json_file(path, "index metadata")
        except SchemaError as exc:
            raise IndexFormatError(str(exc)) from None
        return cls.from_json(data, source=path)


def content_hashes(ids: list, texts: list | None, metadatas: list) -> dict:
    return {
        "ids": canonical_sha256(ids),
        "texts": None if texts is None else canonical_sha256(texts),
        "metadatas": canonical_sha256(metadatas),
    }
