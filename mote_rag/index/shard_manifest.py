"""shards.json, the manifest of a shard set: one dataclass, read and written only here.

    {"format": "mote-rag-shard-set", "format_version": 1, "num_shards": N, "routing": "int_id(id) % num_shards",
     "count": total, "kind", "dim", "encoder": {fingerprint, spec, class}, "document_task", "query_task",
     "shards": [{"index": i, "path": "<build>/shard-0000i-of-0000N", "count", "faiss_sha256"}, ...],
     "build": {...free-form record of how the set was built}}
Shard paths are relative paths inside the set's folder (no '..', not absolute).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..schema import Fields, SchemaError, check_json_value, read_json_file, relative_path
from .header import IndexFormatError
from .params import KINDS

SHARDS_JSON = "shards.json"
SHARD_SET_FORMAT = "mote-rag-shard-set"
SHARD_SET_VERSION = 1
ROUTING = "int_id(id) % num_shards"


class ShardSetError(IndexFormatError):
    """A shard set that is incomplete or inconsistent: a missing shard, or shards that do not belong together."""


@dataclass(frozen=True)
class ShardEntry:
    index: int
    path: str
    count: int
    faiss_sha256: str


@dataclass(frozen=True)
class ShardManifest:
    kind: str
    dim: int
    fingerprint: str
    document_task: str
    query_task: str
    shards: list[ShardEntry]
    encoder_spec: str | None = None
    encoder_class: str | None = None
    build: dict = field(default_factory=dict)

    @property
    def num_shards(self) -> int:
        return len(self.shards)

    @property
    def count(self) -> int:
        return sum(s.count for s in self.shards)

    @property
    def encoder(self) -> dict:
        return {"fingerprint": self.fingerprint, "spec": self.encoder_spec, "class": self.encoder_class}

    def to_json(self) -> dict:
        check_json_value(self.build, "build")
        return {
            "format": SHARD_SET_FORMAT,
            "format_version": SHARD_SET_VERSION,
            "num_shards": self.num_shards,
            "routing": ROUTING,
            "count": self.count,
            "kind": self.kind,
            "dim": self.dim,
            "encoder": self.encoder,
            "document_task": self.document_task,
            "query_task": self.query_task,
            "shards": [
                {"index": s.index, "path": s.path, "count": s.count, "faiss_sha256": s.faiss_sha256}
                for s in self.shards
            ],
            "build": self.build,
        }

    @classmethod
    def from_json(cls, data: Any, source: str | os.PathLike = SHARDS_JSON) -> ShardManifest:
        try:
            return cls._from_json(data, source)
        except SchemaError as exc:
            raise ShardSetError(str(exc)) from None

    @classmethod
    def _from_json(cls, data: Any, source) -> ShardManifest:
        f = Fields(data, source)
        f.str("format", choices=(SHARD_SET_FORMAT,))
        version = f.value("format_version", lambda _: True, "")
        if version != SHARD_SET_VERSION:
            raise f.fail(
                "format_version", f"unsupported shard-set version {version!r} (this mote-rag reads {SHARD_SET_VERSION})"
            )
        num = f.int("num_shards", lo=1)
        f.str("routing", choices=(ROUTING,))
        count = f.int("count", lo=0)
        kind = f.str("kind", choices=KINDS)
        dim = f.int("dim", lo=1, hi=1 << 16)
        enc = f.obj("encoder")
        fingerprint = enc.str("fingerprint", nonempty=True)
        spec = enc.str("spec", optional=True, nullable=True)
        enc_class = enc.str("class", optional=True, nullable=True)
        document_task = f.str("document_task", nonempty=True)
        query_task = f.str("query_task", nonempty=True)
        raw = f.list("shards")
        if len(raw) != num:
            raise f.fail("shards", f"lists {len(raw)} shards but num_shards={num}")
        shards, seen = [], set()
        for i, item in enumerate(raw):
            s = Fields(item, source, f"shards[{i}]")
            entry = ShardEntry(
                index=s.int("index", lo=0, hi=num - 1),
                path=relative_path(s.value("path", lambda _: True, ""), f"{source} field 'shards[{i}].path'"),
                count=s.int("count", lo=0),
                faiss_sha256=s.sha256("faiss_sha256"),
            )
            if entry.index != i:
                raise s.fail("index", f"is {entry.index} but the entry is number {i}")
            if entry.path in seen:
                raise s.fail("path", f"{entry.path!r} is listed twice")
            seen.add(entry.path)
            shards.append(entry)
        if sum(e.count for e in shards) != count:
            raise f.fail("count", f"is {count} but the shards hold {sum(e.count for e in shards)}")
        build = f.dict("build", optional=True) or {}
        return cls(
            kind=kind,
            dim=dim,
            fingerprint=fingerprint,
            document_task=document_task,
            query_task=query_task,
            shards=shards,
            encoder_spec=spec,
            encoder_class=enc_class,
            build=build,
        )

    @classmethod
    def read(cls, directory: str | os.PathLike) -> ShardManifest:
        """shards.json of a shard set, fully validated; clear errors otherwise."""
        directory = Path(directory)
        if not directory.is_dir():
            raise FileNotFoundError(f"shard-set directory {directory} does not exist")
        path = directory / SHARDS_JSON
        if not path.is_file():
            hint = (
                " (it holds a single index: open it with FaissIndex.load)"
                if (directory / "index.json").is_file()
                else ""
            )
            raise FileNotFoundError(f"{directory} is not a shard set: no {SHARDS_JSON} inside{hint}")
        try:
            data = read_json_file(path, "shard-set manifest")
        except SchemaError as exc:
            raise ShardSetError(str(exc)) from None
        return cls.from_json(data, source=path)
