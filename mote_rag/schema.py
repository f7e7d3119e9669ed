"""The small validation kit every on-disk descriptor uses (mote_config.json, manifest.json, index.json, shards.json).

Each format is a dataclass next to its owner with one `from_json(data, source=path)` and one `to_json()`:
    mote_rag/model_config.py        MoTEConfig      mote_config.json of a saved torch model
    mote_rag/runtime/manifest.py    OnnxManifest    manifest.json of an ONNX export
    mote_rag/index/header.py        IndexHeader     index.json of an index directory
    mote_rag/index/shard_manifest.py ShardManifest  shards.json of a shard set
`from_json` reads fields only through a `Fields` view, so every error names the file and the field, e.g.
"index.json field 'dim': expected an integer >= 1, got 'abc'". Also here: `sha256_file` (the one copy),
`plain_name` (file names in a descriptor stay inside its folder) and `check_json_value` (strict JSON round trip).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any


class SchemaError(ValueError):
    """A descriptor file whose field is missing, of the wrong type, out of range or inconsistent."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def canonical_sha256(value: Any) -> str:
    """sha256 of the canonical JSON of a value (sorted keys, no spaces): a content hash of a JSON table."""
    return sha256_bytes(
        json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
            "utf-8", "surrogatepass"
        )
    )


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def check_str(value: Any, where: str) -> str:
    """A str that UTF-8 can encode (lone surrogates, e.g. from a bad decode, cannot be written to JSON files)."""
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a string, got {_type_name(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{where} holds a lone surrogate {value[exc.start]!r} at character {exc.start}: not valid "
            "Unicode (was it decoded with errors='surrogateescape'?)"
        ) from None
    return value


def check_json_value(value: Any, where: str) -> None:
    """Refuse what strict JSON cannot round-trip: non-str keys, tuples/sets, NaN/inf, bytes, objects, surrogates."""
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where} is {value!r}: JSON has no NaN or infinity")
        return
    if isinstance(value, str):
        check_str(value, where)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_json_value(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"{where} has key {key!r} of type {type(key).__name__}: JSON keys are strings "
                    f"(it would come back as {json.dumps(str(key))})"
                )
            check_str(key, f"{where} key {key!r:.40}")
            check_json_value(item, f"{where}[{key!r}]")
        return
    hint = " (use a list: JSON turns tuples into lists)" if isinstance(value, tuple) else ""
    raise TypeError(f"{where} is a {type(value).__name__}, which JSON cannot store as is{hint}")


def plain_name(name: Any, where: str) -> str:
    """A file name inside the descriptor's folder: no separators, no '..', not absolute, not empty."""
    if (
        not isinstance(name, str)
        or not name
        or "/" in name
        or "\\" in name
        or name in (".", "..")
        or "\x00" in name
        or os.path.isabs(name)
    ):
        raise SchemaError(f"{where}: {name!r} is not a plain file name inside the folder (no paths, no '..')")
    return name


def relative_path(name: Any, where: str) -> str:
    """A relative path below the descriptor's folder (shard sets name sub-folders): no '..', not absolute."""
    if not isinstance(name, str) or not name or name.startswith(("/", "\\")) or "\\" in name or "\x00" in name:
        raise SchemaError(f"{where}: {name!r} is not a relative path inside the folder")
    parts = name.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise SchemaError(f"{where}: {name!r} is not a relative path inside the folder (no '..', no empty parts)")
    return name


def read_json_file(path: str | os.PathLike, what: str) -> dict:
    """The JSON object in `path`, the one JSON reader of the package (descriptors, recipes, suites, results); every
    error names the file: missing, a folder, not UTF-8, not JSON (NaN included), or not an object."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} file {path} is a directory; give the JSON file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} file {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path} is not UTF-8 ({exc.reason} at byte {exc.start}); the {what} is damaged") from None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path} is not valid JSON ({exc.msg}, line {exc.lineno}); the {what} is damaged") from None
    except ValueError as exc:
        raise SchemaError(f"{path} is not valid JSON ({exc}); the {what} is damaged") from None
    if not isinstance(data, dict):
        raise SchemaError(f"{path} must hold a JSON object, got {_type_name(data)}")
    return data


def _no_constant(name: str):
    raise ValueError(f"{name} is not JSON")


class Fields:
    """Typed access to one JSON object; every error names the file and the dotted field."""

    def __init__(self, data: Any, source: str | os.PathLike, prefix: str = ""):
        self.source = str(source)
        self.prefix = prefix
        if not isinstance(data, dict):
            raise SchemaError(
                f"{self.source}{' field ' + repr(prefix) if prefix else ''}: expected a JSON object, "
                f"got {_type_name(data)}"
            )
        self.data = data

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def fail(self, key: str, problem: str) -> SchemaError:
        return SchemaError(f"{self.source} field {self.name(key)!r}: {problem}")

    def _get(self, key: str, optional: bool, default: Any) -> tuple[bool, Any]:
        if key not in self.data:
            if optional:
                return False, default
            raise self.fail(key, "missing")
        return True, self.data[key]

    def value(
        self,
        key: str,
        check: Callable[[Any], bool],
        expected: str,
        *,
        optional: bool = False,
        default: Any = None,
        nullable: bool = False,
    ) -> Any:
        present, v = self._get(key, optional, default)
        if not present or (v is None and nullable):
            return v
        if not check(v):
            raise self.fail(key, f"expected {expected}, got {v!r:.80}")
        return v

    def str(
        self,
        key: str,
        *,
        optional: bool = False,
        default: Any = None,
        nullable: bool = False,
        nonempty: bool = False,
        choices: tuple | None = None,
    ) -> Any:
        expected = f"one of {list(choices)}" if choices else ("a non-empty string" if nonempty else "a string")
        v = self.value(
            key,
            lambda x: isinstance(x, str) and (bool(x) or not nonempty) and (choices is None or x in choices),
            expected,
            optional=optional,
            default=default,
            nullable=nullable,
        )
        if isinstance(v, str):
            try:
                check_str(v, self.name(key))
            except ValueError as exc:
                raise self.fail(key, str(exc)) from None
        return v

    def int(
        self,
        key: str,
        *,
        lo: int | None = None,
        hi: int | None = None,
        optional: bool = False,
        default: Any = None,
        nullable: bool = False,
    ) -> Any:
        rng = (f" >= {lo}" if lo is not None else "") + (f" and <= {hi}" if hi is not None else "")
        return self.value(
            key,
            lambda x: (
                isinstance(x, int) and not isinstance(x, bool) and (lo is None or x >= lo) and (hi is None or x <= hi)
            ),
            f"an integer{rng}",
            optional=optional,
            default=default,
            nullable=nullable,
        )

    def float(
        self, key: str, *, optional: bool = False, default: Any = None, nullable: bool = False, positive: bool = False
    ) -> Any:
        v = self.value(
            key,
            lambda x: (
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and (x > 0 or not positive)
            ),
            "a positive number" if positive else "a finite number",
            optional=optional,
            default=default,
            nullable=nullable,
        )
        return float(v) if v is not None else v

    def bool(self, key: str, *, optional: bool = False, default: Any = None) -> Any:
        return self.value(key, lambda x: isinstance(x, bool), "true or false", optional=optional, default=default)

    def list(
        self,
        key: str,
        *,
        optional: bool = False,
        default: Any = None,
        nullable: bool = False,
        item: Callable[[Any], bool] | None = None,
        item_expected: str = "",
    ) -> Any:
        v = self.value(
            key, lambda x: isinstance(x, list), "a list", optional=optional, default=default, nullable=nullable
        )
        if isinstance(v, list) and item is not None:
            for i, x in enumerate(v):
                if not item(x):
                    raise SchemaError(
                        f"{self.source} field {self.name(key)}[{i}]: expected {item_expected}, got {x!r:.80}"
                    )
        return v

    def str_list(self, key: str, **kwargs) -> Any:
        return self.list(key, item=lambda x: isinstance(x, str), item_expected="a string", **kwargs)

    def int_list(self, key: str, **kwargs) -> Any:
        return self.list(
            key, item=lambda x: isinstance(x, int) and not isinstance(x, bool), item_expected="an integer", **kwargs
        )

    def obj(self, key: str, *, optional: bool = False, nullable: bool = False) -> Fields | None:
        present, v = self._get(key, optional, None)
        if not present or (v is None and nullable):
            return None
        if not isinstance(v, dict):
            raise self.fail(key, f"expected a JSON object, got {_type_name(v)}")
        return Fields(v, self.source, self.name(key))

    def dict(self, key: str, **kwargs) -> dict | None:
        f = self.obj(key, **kwargs)
        return None if f is None else f.data

    def file(self, key: str, *, optional: bool = False) -> Any:
        present, v = self._get(key, optional, None)
        if not present:
            return None
        return plain_name(v, f"{self.source} field {self.name(key)!r}")

    def sha256(self, key: str, *, optional: bool = False) -> Any:
        return self.value(key, is_sha256, "a sha256 hex digest (64 hex characters)", optional=optional)


def is_sha256(x: Any) -> bool:
    return isinstance(x, str) and len(x) == 64 and all(c in "0123456789abcdef" for c in x)
