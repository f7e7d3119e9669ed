"""One reader per input format, shared by the CLI, the index builders (single-machine and Ray), training and
evaluation, so the same file reads the same way everywhere. Errors name the file and the line or row.

    JSON Lines (.jsonl, .jsonl.gz)   iter_jsonl / read_jsonl (one JSON object per line, UTF-8)
    a corpus to index                read_corpus: JSON Lines, CSV/TSV with a header, or a folder of .txt files
    BEIR retrieval folder            load_beir (corpus.jsonl, queries.jsonl, qrels/<split>.tsv)
    sentence pairs (STS, pairs)      load_sentence_pairs
    labelled texts                   load_labelled_texts
    a JSON object file (descriptors, recipes, suites, results): mote_rag.schema.read_json_file

Training's example formats (pairs, triplets, labelled) are built on read_jsonl and load_beir in
mote_rag.training.data.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    if p.is_dir():
        raise IsADirectoryError(f"{p} is a directory; a data file is expected here")
    raise FileNotFoundError(f"{p} not found (nor {gz.name})")


def parse_json_line(line: str, where: str) -> dict:
    """One JSON Lines row: a JSON object, else a ValueError naming `where` (file:line)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not valid JSON ({exc.msg}): {line[:80]!r}") from None
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    return row


def iter_jsonl(path: str | os.PathLike) -> Iterator[dict]:
    """The rows of a JSON Lines file (or its .gz twin); blank lines are skipped. Bytes that are not UTF-8 and bad
    JSON are ValueErrors naming the file and line."""
    for _, row in iter_jsonl_lines(path):
        yield row


def iter_jsonl_lines(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """`iter_jsonl` with each row's line number, for errors found after parsing."""
    p = resolve_file(path)
    opener = gzip.open if p.suffix == ".gz" else open
    with opener(p, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(
                    f"{p}:{lineno}: not UTF-8 text (byte {raw[exc.start]:#04x} at column "
                    f"{exc.start + 1}); re-encode the file as UTF-8"
                ) from None
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a UTF-8 byte-order mark, as the "utf-8-sig" codec drops it
            if not line.strip():
                continue
            yield lineno, parse_json_line(line, f"{p}:{lineno}")


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


# --------------------------------------------------------------------------- a corpus to index
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".ndjson", ".json")
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
ID_FIELD_GUESSES = ("id", "_id", "doc_id")


@dataclass
class Corpus:
    ids: list[str]
    texts: list[str]
    metadatas: list[dict]
    source: str
    skipped: list[str] = field(default_factory=list)  # rows left out by skip_empty ("file: row 3 (id 'x')")

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
    raise ValueError(
        f"{p}: unsupported corpus format; expected .jsonl/.jsonl.gz (one JSON object per line), "
        ".csv/.tsv with a header row, or a folder of .txt files"
    )


def split_fields(fields: str | Sequence[str] | None, what: str = "fields") -> list[str] | None:
    """'title,text' or ['title', 'text'] as a list of names; None stays None. An empty name ('', ' ', 'a,,b') is
    refused, naming `what`: it would otherwise fall back to a default field without a word."""
    if fields is None:
        return None
    given = fields
    if isinstance(fields, str):
        fields = fields.split(",")
    names = [f.strip() if isinstance(f, str) else f for f in fields]
    bad = [f for f in names if not isinstance(f, str) or not f]
    if bad or (isinstance(given, str) and not names):
        raise ValueError(f"{what} {given!r} holds an empty field name; name each field, e.g. 'title,text'")
    return names


def check_id_field(id_field: str | None, what: str = "id_field") -> str | None:
    """None (guess the id field) or a non-blank field name, stripped."""
    if id_field is None:
        return None
    if not isinstance(id_field, str) or not id_field.strip():
        raise ValueError(
            f"{what} {id_field!r} is empty; name the id field, or leave it out to use the first of "
            f"{', '.join(ID_FIELD_GUESSES)} (else the row number)"
        )
    return id_field.strip()


EMPTY_TEXT_HINT = "fix or remove those rows, or skip them with --skip-empty (skip_empty=True in Python)"


def rows_to_corpus(
    rows: Iterable[tuple[str, dict]],
    source: str,
    id_field: str | None,
    text_fields: list[str],
    metadata_fields: list[str] | None,
    skip_empty: bool = False,
) -> Corpus:
    """Documents from (where, row) pairs. A row whose text is empty or whitespace-only is refused (ValueError naming
    the rows), or with `skip_empty` left out and counted in `Corpus.skipped`."""
    ids: list[str] = []
    texts: list[str] = []
    metas: list[dict] = []
    seen: dict[str, str] = {}
    empty: list[str] = []
    chosen_id = id_field
    position = 0
    for where, row in rows:
        if chosen_id is None and position == 0:  # guess once, from the first row
            chosen_id = next((f for f in ID_FIELD_GUESSES if f in row), "")
        text = _row_text(row, where, text_fields)
        doc_id = _row_id(row, where, chosen_id, position)
        position += 1
        if not text:
            empty.append(f"{where} (id {doc_id!r:.40})")
            continue
        if doc_id in seen:
            raise ValueError(f"{where}: duplicate id {doc_id!r} (first at {seen[doc_id]})")
        seen[doc_id] = where
        used = {chosen_id, *text_fields}
        keys = metadata_fields if metadata_fields is not None else [k for k in row if k not in used]
        absent = [k for k in keys if k not in row]
        if metadata_fields is not None and absent:
            raise ValueError(f"{where}: no metadata field {absent[0]!r}")
        ids.append(doc_id)
        texts.append(text)
        metas.append({k: row[k] for k in keys})
    if empty and not skip_empty:
        more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
        raise ValueError(
            f"{len(empty)} document(s) have an empty or whitespace-only text (field(s) {', '.join(text_fields)}): "
            f"{'; '.join(empty[:5])}{more}. An empty text has no content to embed and would match queries at "
            f"random: {EMPTY_TEXT_HINT}"
        )
    if not ids:
        raise ValueError(f"{source} holds no documents" + (f" with text ({len(empty)} empty skipped)" if empty else ""))
    return Corpus(ids, texts, metas, source, skipped=empty)


def _row_text(row: dict, where: str, text_fields: list[str]) -> str:
    """The row's non-blank text fields, stripped and joined by a space."""
    missing = [f for f in text_fields if f not in row]
    if missing:
        raise ValueError(
            f"{where}: no text field {missing[0]!r} (fields present: {sorted(row)[:12]}); "
            "choose the text column with --text-field"
        )
    parts = []
    for f in text_fields:
        value = row[f]
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise ValueError(f"{where}: field {f!r} must be a string, got {type(value).__name__}")
        if value.strip():
            parts.append(value.strip())
    return " ".join(parts)


def _row_id(row: dict, where: str, chosen_id: str | None, position: int) -> str:
    """The row's id field, or its position when the corpus has no id field."""
    if chosen_id:
        if chosen_id not in row or row[chosen_id] in (None, ""):
            raise ValueError(f"{where}: no id field {chosen_id!r}")
        return str(row[chosen_id])
    return str(position)


def _csv_rows(path: Path, delimiter: str) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8", newline="") as fh:
        try:
            reader = csv.DictReader(fh, delimiter=delimiter)
            if not reader.fieldnames:
                raise ValueError(f"{path} is empty; expected a header row")
            for lineno, row in enumerate(reader, 2):
                if None in row:
                    raise ValueError(f"{path}:{lineno}: more columns than the header has")
                yield f"{path}:{lineno}", row
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} near row "
                f"{reader.line_num + 1}); re-encode the file as UTF-8"
            ) from None


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


def read_corpus(
    path: str | os.PathLike,
    id_field: str | None = None,
    text_fields: str | Sequence[str] = "text",
    metadata_fields: str | Sequence[str] | None = None,
    skip_empty: bool = False,
) -> Corpus:
    """Read documents. `text_fields` (a list or 'title,text') are joined by a space; the id comes from
    `id_field` (default: the first of id, _id, doc_id present, else the row number); metadata is
    `metadata_fields` or every other field. A .txt folder gives id = path relative to the folder.

    Empty or whitespace-only texts are refused with a ValueError naming the rows; `skip_empty=True` leaves them
    out instead (`Corpus.skipped` lists them; the caller says how many). An empty field name is refused."""
    p = Path(path)
    id_field = check_id_field(id_field)
    fields = split_fields(text_fields, "text_fields") or ["text"]
    meta = split_fields(metadata_fields, "metadata_fields")
    fmt = corpus_format(p)
    if fmt == "txt-folder":
        return rows_to_corpus(
            _txt_rows(p), str(p), "id", ["text"], meta if meta is not None else ["path"], skip_empty=skip_empty
        )
    if fmt == "jsonl":
        rows = ((f"{p}: row {i}", row) for i, row in enumerate(iter_jsonl(p), 1))
    else:
        rows = _csv_rows(p, CSV_SUFFIXES[f".{fmt}"])
    return rows_to_corpus(rows, str(p), id_field, fields, meta, skip_empty=skip_empty)


# ---------------------------------------------------------------------------------------------- training pairs
QUERY_FIELDS = ("anchor", "query", "question")
PASSAGE_FIELDS = ("positive", "passage", "document", "answer")


def load_pairs(source: str | os.PathLike, split: str = "train") -> list[tuple[str, str]]:
    """(query, passage) pairs from a BEIR folder (every judged pair of `split`) or a JSON Lines file with one pair
    a line ({"anchor", "positive"}, or {"query", "passage"} / {"question", "answer"}). Errors name the file and line:
    a row with no query or passage field, a non-string or empty text. What `mote-rag adapt` reads."""
    path = Path(source)
    if path.is_dir():
        beir = load_beir(path, split=split)
        pairs = [
            (beir.queries[q], beir.corpus[d])
            for q in sorted(beir.qrels)
            for d, score in sorted(beir.qrels[q].items())
            if score > 0 and q in beir.queries and d in beir.corpus
        ]
        if not pairs:
            raise ValueError(f"{path}: split {split!r} has no judged (query, passage) pair")
        return pairs
    file = resolve_file(path)
    pairs = []
    for lineno, row in iter_jsonl_lines(file):
        where = f"{file}:{lineno}"
        q_key = next((k for k in QUERY_FIELDS if k in row), None)
        p_key = next((k for k in PASSAGE_FIELDS if k in row), None)
        if q_key is None or p_key is None:
            raise ValueError(
                f"{where}: a pair needs a query field ({' / '.join(QUERY_FIELDS)}) and a passage field "
                f"({' / '.join(PASSAGE_FIELDS)}); this row has {sorted(row)[:6]}"
            )
        query, passage = _text_field(row, q_key, where), _text_field(row, p_key, where)
        for key, text in ((q_key, query), (p_key, passage)):
            if not text.strip():
                raise ValueError(f"{where}: field {key!r} is empty")
        pairs.append((query, passage))
    if not pairs:
        raise ValueError(f"{file} holds no pair (it is empty or blank)")
    return pairs
