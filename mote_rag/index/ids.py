"""Document ids and records: the stable 63-bit FAISS id of a string id, id checks, and the stored record.

User ids are strings. Each maps to a stable non-negative int64 `int_id(id)` (blake2b of the UTF-8 string), so the
same document has the same FAISS id in every process and shard, and a `faiss.IndexShards(successive_ids=False)`
over several indexes returns ids that any shard's record table resolves.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..schema import check_json_value, check_str

ID_HASH = "blake2b-64 & (2**63 - 1)"  # recorded in index.json: how int_id is computed


def int_id(doc_id: str) -> int:
    """The stable non-negative int64 FAISS id of a string id (same in every process and shard)."""
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class DocRecord:
    """What an index stores per document besides its vector: the user id, the text (None when not stored) and
    the metadata (a strict-JSON dict)."""

    id: str
    text: str | None = None
    metadata: dict = field(default_factory=dict)


def new_id() -> str:
    """A new document id (uuid4 hex): the one place ids are generated (the vector stores fill None ids with it)."""
    return uuid.uuid4().hex


def check_new_ids(ids: Any, n: int, known: Callable[[int], str | None]) -> list[str]:
    """Validate ids for `n` new rows (uuid4 hex when None); `known(int_id)` gives the id already stored there.

    Refused, naming the row: a non-list, a wrong count, a non-str or empty id, a lone surrogate, a repeated id,
    an id already in the index, and two ids whose 63-bit hashes collide."""
    if ids is None:
        return [new_id() for _ in range(n)]
    if isinstance(ids, (str, bytes, dict)):
        raise TypeError(f"ids must be a list of strings, not a {type(ids).__name__}")
    try:
        ids = list(ids)
    except TypeError:
        raise TypeError(f"ids must be a list of strings, got {type(ids).__name__}") from None
    if len(ids) != n:
        raise ValueError(f"got {n} texts/vectors but {len(ids)} ids")
    first: dict[str, int] = {}
    for i, doc_id in enumerate(ids):
        if not isinstance(doc_id, str) or not doc_id:
            raise TypeError(f"ids[{i}] must be a non-empty string, got {doc_id!r:.60}")
        check_str(doc_id, f"ids[{i}]")
        j = first.setdefault(doc_id, i)
        if j != i:
            raise ValueError(f"duplicate id: ids[{i}] {doc_id!r:.60} repeats ids[{j}]")
    for i, doc_id in enumerate(ids):
        stored = known(int_id(doc_id))
        if stored == doc_id:
            raise ValueError(f"ids[{i}] {doc_id!r:.60} is already in the index (delete it first to replace it)")
        if stored is not None:
            raise ValueError(
                f"ids[{i}] {doc_id!r:.60} collides with the stored id {stored!r:.60} (same 63-bit hash); rename it"
            )
    return ids


def check_delete_ids(ids: Any) -> list[str]:
    """The ids `delete` was given, as a de-duplicated list of str (one str is one id)."""
    if isinstance(ids, str):
        return [ids]
    if ids is None or isinstance(ids, (bytes, dict)):
        raise TypeError(f"delete expects an id or a list of ids, got {type(ids).__name__ if ids is not None else None}")
    try:
        ids = list(ids)
    except TypeError:
        raise TypeError(f"delete expects an id or a list of ids, got {type(ids).__name__}") from None
    for i, doc_id in enumerate(ids):
        if not isinstance(doc_id, str):
            raise TypeError(f"ids[{i}] must be a string, got {doc_id!r:.60}")
    return list(dict.fromkeys(ids))


def check_metadatas(metadatas: Any, n: int) -> list[dict]:
    """One dict per row (None -> {}), each of which must round-trip through strict JSON; errors name the row."""
    if metadatas is None:
        return [{} for _ in range(n)]
    if isinstance(metadatas, (str, bytes, dict)):
        raise TypeError(f"metadatas must be a list of dicts (one per row), not a {type(metadatas).__name__}")
    metadatas = list(metadatas)
    if len(metadatas) != n:
        raise ValueError(f"got {n} texts/vectors but {len(metadatas)} metadata entries")
    out = []
    for i, meta in enumerate(metadatas):
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise TypeError(f"metadatas[{i}] must be a dict, got {type(meta).__name__}")
        check_json_value(meta, f"metadatas[{i}]")
        out.append(dict(meta))
    return out


def records(ids: Sequence[str], texts: Sequence[str | None] | None, metadatas: Sequence[dict]) -> list[DocRecord]:
    texts = texts if texts is not None else [None] * len(ids)
    return [DocRecord(i, t, m) for i, t, m in zip(ids, texts, metadatas)]
