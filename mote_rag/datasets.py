"""Readers for the local dataset formats (BEIR retrieval folders, STS/pair/labelled JSON Lines).

Both evaluation and training read through here, so a user's own folders in the same formats work
everywhere. Errors name the file and the row that is wrong.
"""
from __future__ import annotations

import csv
import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

DATA_ENV = "MOTE_RAG_DATA"


def default_data_dir() -> Path:
    """Where the shared datasets are: $MOTE_RAG_DATA, else `shared/data` beside the current or repo folder."""
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    repo = Path(__file__).resolve().parents[1]
    for candidate in (Path.cwd() / "../shared/data", Path.cwd() / "shared/data", repo.parent / "shared/data"):
        if (candidate / "README.md").is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"no dataset folder found: set {DATA_ENV} or run beside a `shared/data` folder (tried ../shared/data, "
        f"./shared/data, {repo.parent / 'shared/data'})"
    )


def resolve_file(path: str | os.PathLike) -> Path:
    """`path` itself, or its `.gz` twin (files over 10 MB are stored gzipped)."""
    p = Path(path)
    if p.is_file():
        return p
    gz = p.with_name(p.name + ".gz")
    if gz.is_file():
        return gz
    raise FileNotFoundError(f"{p} not found (nor {gz.name})")


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    p = resolve_file(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{p}:{lineno}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{p}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield row


def read_jsonl(path: str | os.PathLike, required: tuple[str, ...] = ()) -> list[dict]:
    rows = []
    for i, row in enumerate(iter_jsonl(path), 1):
        missing = [k for k in required if k not in row]
        if missing:
            raise ValueError(f"{resolve_file(path)}: row {i} lacks field(s) {missing}")
        rows.append(row)
    if not rows:
        raise ValueError(f"{resolve_file(path)} is empty")
    return rows


@dataclass
class BeirDataset:
    """A BEIR folder: corpus {id: title + text}, queries {id: text}, qrels {query id: {doc id: score}}."""

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)
    split: str = "test"


def corpus_text(row: dict) -> str:
    """BEIR's convention (and MTEB's): title and text joined by a space when there is a title."""
    title = (row.get("title") or "").strip()
    text = row.get("text") or ""
    return f"{title} {text}".strip() if title else text


def read_qrels(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"qrels file {p} not found")
    qrels: dict[str, dict[str, int]] = {}
    with open(p, encoding="utf-8") as fh:
        reader = csv.reader(fh, delimiter="\t")
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{p} is empty")
        if header[:2] != ["query-id", "corpus-id"]:
            raise ValueError(f"{p}: expected header 'query-id<TAB>corpus-id<TAB>score', got {header}")
        for lineno, row in enumerate(reader, 2):
            if len(row) < 3:
                raise ValueError(f"{p}:{lineno}: expected 3 columns, got {len(row)}")
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    if not qrels:
        raise ValueError(f"{p} holds no judgments")
    return qrels


def load_beir(folder: str | os.PathLike, split: str = "test", check_ids: bool = True) -> BeirDataset:
    """Load a BEIR folder; keep only the split's queries; every qrels id must exist in corpus/queries."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"retrieval folder {folder} not found")
    corpus_file = resolve_file(folder / "corpus.jsonl")
    corpus = {str(r["_id"]): corpus_text(r) for r in read_jsonl(corpus_file, ("_id", "text"))}
    all_queries = {str(r["_id"]): r["text"] for r in read_jsonl(folder / "queries.jsonl", ("_id", "text"))}
    qrels_file = folder / "qrels" / f"{split}.tsv"
    qrels = read_qrels(qrels_file)
    if check_ids:
        missing_q = [q for q in qrels if q not in all_queries]
        if missing_q:
            raise ValueError(f"{qrels_file}: query id(s) {missing_q[:5]} have no entry in queries.jsonl")
        missing_d = sorted({d for docs in qrels.values() for d in docs if d not in corpus})
        if missing_d:
            raise ValueError(f"{qrels_file}: corpus id(s) {missing_d[:5]} have no entry in {corpus_file.name}")
    queries = {q: all_queries[q] for q in qrels if q in all_queries}
    return BeirDataset(folder.name, corpus, queries, qrels, split)


# --------------------------------------------------------------------------- evaluation formats
@dataclass
class SentencePairs:
    """Sentence pairs with a value each: an STS score (float) or a pair-classification label (0/1)."""

    name: str
    sentences1: list[str]
    sentences2: list[str]
    values: list[float]


@dataclass
class LabelledTexts:
    """Texts with a label each (classification / clustering); labels kept as strings."""

    name: str
    texts: list[str]
    labels: list[str]


def _text_field(row: dict, key: str, where: str) -> str:
    value = row[key]
    if not isinstance(value, str):
        raise ValueError(f"{where}: field {key!r} must be a string, got {type(value).__name__}")
    return value


def _number_field(row: dict, key: str, where: str) -> float:
    value = row[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: field {key!r} must be a number, got {value!r:.40}") from None
    return float(value)


def load_sentence_pairs(path: str | os.PathLike, value_field: str = "score") -> SentencePairs:
    """Rows {"sentence1", "sentence2", <value_field>} (STS: "score"; pair classification: "label")."""
    p = resolve_file(path)
    rows = read_jsonl(p, ("sentence1", "sentence2", value_field))
    s1, s2, values = [], [], []
    for i, row in enumerate(rows, 1):
        where = f"{p}: row {i}"
        s1.append(_text_field(row, "sentence1", where))
        s2.append(_text_field(row, "sentence2", where))
        values.append(_number_field(row, value_field, where))
    return SentencePairs(p.parent.name if p.stem in ("test", "dev", "train", "all") else p.stem, s1, s2, values)


def load_labelled_texts(path: str | os.PathLike) -> LabelledTexts:
    """Rows {"text", "label"}; the label may be a string or an integer (kept as its string)."""
    p = resolve_file(path)
    rows = read_jsonl(p, ("text", "label"))
    texts, labels = [], []
    for i, row in enumerate(rows, 1):
        where = f"{p}: row {i}"
        texts.append(_text_field(row, "text", where))
        label = row["label"]
        if not isinstance(label, (str, int)) or isinstance(label, bool):
            raise ValueError(f"{where}: field 'label' must be a string or integer, got {label!r:.40}")
        labels.append(str(label))
    return LabelledTexts(p.parent.name, texts, labels)


def read_json_file(path: str | os.PathLike, kind: str) -> object:
    """Parse a JSON file; a missing file or bad JSON is an error naming the file (`kind` says what it is)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{kind} file {p} not found")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not valid JSON ({exc.msg})") from None
