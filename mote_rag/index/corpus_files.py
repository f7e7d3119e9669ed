"""Read a corpus to index from JSON Lines, CSV/TSV or a folder of .txt files into ids, texts and metadata.

One reader for the CLI and the library, so the same files index the same way everywhere. Errors name the
file and the row (or file) that is wrong.
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..datasets import iter_jsonl

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".json")
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
ID_FIELD_GUESSES = ("id", "_id", "doc_id")


@dataclass
class Corpus:
    ids: list[str]
    texts: list[str]
    metadatas: list[dict]
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def corpus_format(path: str | os.PathLike) -> str:
    """'jsonl', 'csv', 'tsv' or 'txt-folder' for a path; a clear error for anything else."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"corpus path {p} does not exist")
    if p.is_dir():
        return "txt-folder"
    name = p.name.lower()
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    for suffix in CSV_SUFFIXES:
        if name.endswith(suffix):
            return suffix[1:]
    raise ValueError(f"{p}: unsupported corpus format; expected .jsonl/.jsonl.gz (one JSON object per line), "
                     ".csv/.tsv with a header row, or a folder of .txt files")


def _split_fields(fields: str | Sequence[str] | None) -> list[str] | None:
    if fields is None:
        return None
    if isinstance(fields, str):
        fields = fields.split(",")
    return [f.strip() for f in fields if f.strip()]


def _rows_to_corpus(rows: Iterable[tuple[str, dict]], source: str, id_field: str | None, text_fields: list[str],
                    metadata_fields: list[str] | None) -> Corpus:
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict] = []
    seen: dict[str, str] = {}
    chosen_id = id_field
    for where, row in rows:
        if chosen_id is None and not ids:  # guess once, from the first row
            chosen_id = next((f for f in ID_FIELD_GUESSES if f in row), "")
        missing = [f for f in text_fields if f not in row]
        if missing:
            raise ValueError(f"{where}: no text field {missing[0]!r} (fields present: {sorted(row)[:12]}); "
                             "choose the text column with --text-field")
        parts = []
        for f in text_fields:
            value = row[f]
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise ValueError(f"{where}: field {f!r} must be a string, got {type(value).__name__}")
            if value.strip():
                parts.append(value.strip())
        if chosen_id:
            if chosen_id not in row or row[chosen_id] in (None, ""):
                raise ValueError(f"{where}: no id field {chosen_id!r}")
            doc_id = str(row[chosen_id])
        else:
            doc_id = str(len(ids))
        if doc_id in seen:
            raise ValueError(f"{where}: duplicate id {doc_id!r} (first at {seen[doc_id]})")
        seen[doc_id] = where
        used = {chosen_id, *text_fields}
        keys = metadata_fields if metadata_fields is not None else [k for k in row if k not in used]
        absent = [k for k in keys if k not in row]
        if metadata_fields is not None and absent:
            raise ValueError(f"{where}: no metadata field {absent[0]!r}")
        ids.append(doc_id)
        texts.append(" ".join(parts))
        metas.append({k: row[k] for k in keys})
    if not ids:
        raise ValueError(f"{source} holds no documents")
    return Corpus(ids, texts, metas, source)


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        if not reader.fieldnames:
            raise ValueError(f"{path} is empty; expected a header row")
        for lineno, row in enumerate(reader, 2):
            if None in row:
                raise ValueError(f"{path}:{lineno}: more columns than the header has")
            yield f"{path}:{lineno}", row


def _txt_rows(folder: Path) -> Iterator[tuple[str, dict]]:
    files = sorted(p for p in folder.rglob("*.txt") if p.is_file())
    if not files:
        raise ValueError(f"{folder} holds no .txt files")
    for p in files:
        rel = p.relative_to(folder).as_posix()
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{p} is not UTF-8 text") from None
        yield str(p), {"id": rel, "text": text, "path": rel}


def read_corpus(path: str | os.PathLike, id_field: str | None = None,
                text_fields: str | Sequence[str] = "text",
                metadata_fields: str | Sequence[str] | None = None) -> Corpus:
    """Read documents. `text_fields` (a list or 'title,text') are joined by a space; the id comes from
    `id_field` (default: the first of id, _id, doc_id present, else the row number); metadata is
    `metadata_fields` or every other field. A .txt folder gives id = path relative to the folder."""
    p = Path(path)
    fmt = corpus_format(p)
    fields = _split_fields(text_fields) or ["text"]
    meta = _split_fields(metadata_fields)
    if fmt == "txt-folder":
        return _rows_to_corpus(_txt_rows(p), str(p), "id", ["text"], meta if meta is not None else ["path"])
    if fmt == "jsonl":
        rows = ((f"{p}: row {i}", row) for i, row in enumerate(iter_jsonl(p), 1))
    else:
        rows = _csv_rows(p, CSV_SUFFIXES[f".{fmt}"])
    return _rows_to_corpus(rows, str(p), id_field, fields, meta)
