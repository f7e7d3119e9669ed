"""Input checks and length-sorted batching (no torch here): every encoder, index and integration calls these, so
the same bad input gets the same error from Python, LangChain, LlamaIndex and the CLI.

Each error names the row and the problem. Sorting by length before batching keeps padding small (the
sentence-transformers trick); the caller gets rows back in the original order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Set

import numpy as np


def _surrogate_error(items: Sequence[str], what: str) -> ValueError | None:
    """A ValueError naming the first row with a lone surrogate (not encodable as UTF-8), or None."""
    for i, t in enumerate(items):
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as exc:
            return ValueError(
                f"{what}[{i}] holds a lone surrogate character U+{ord(t[exc.start]):04X} at position "
                f"{exc.start}: not valid Unicode text (decode the source with errors='replace' or "
                "fix it)"
            )
    return None


def check_text_list(texts, what: str = "texts") -> list[str]:
    """`texts` as a list of str. One str, a dict, a set, bytes, None or a non-str row is a TypeError and a lone
    surrogate a ValueError, each naming the row (`what[i]`) and the problem."""
    if texts is None:
        raise TypeError(f"{what} must be a list of strings, got None")
    if isinstance(texts, str):
        raise TypeError(
            f"{what} must be a list of strings, got one string ({texts[:40]!r}); wrap it in a list, "
            "or use the single-text method"
        )
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError(f"{what} must be str, not bytes: decode them first")
    if isinstance(texts, Mapping):
        raise TypeError(
            f"{what} must be a list of strings, got {type(texts).__name__} (a mapping would embed its "
            "keys); pass list(d.values()) or the texts themselves"
        )
    if isinstance(texts, Set):
        raise TypeError(
            f"{what} must be an ordered list of strings, got {type(texts).__name__} (rows would come "
            "back in no defined order)"
        )
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"{what} must be a list of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"{what}[{i}] must be a string, got {type(t).__name__}: {t!r:.60}")
    try:
        "".join(items).encode("utf-8")  # one pass over every text; row-by-row only to name a bad one
    except UnicodeEncodeError:
        raise _surrogate_error(items, what) from None
    return items


def validate_texts(texts) -> tuple[list[str], bool]:
    """(texts as a list, whether one string was given): `encode`'s rule, where one str is one text."""
    if isinstance(texts, str):
        return check_text_list([texts]), True
    return check_text_list(texts), False


def check_text(text, what: str = "text") -> str:
    """One text (a query): a str without lone surrogates, else the error `check_text_list` gives."""
    if not isinstance(text, str):
        raise TypeError(f"{what} must be one string, got {type(text).__name__}: {text!r:.60}")
    check_text_list([text], what)
    return text


def blank_rows(texts: Sequence[str]) -> list[int]:
    """Rows whose text is empty or whitespace-only."""
    return [i for i, t in enumerate(texts) if not t.strip()]


def blank_texts_error(rows: Sequence[int], total: int, what: str = "texts", hint: str = "") -> ValueError:
    """The error for empty or whitespace-only documents, naming the first rows and the count."""
    named = ", ".join(f"{what}[{i}]" for i in rows[:5]) + (f" and {len(rows) - 5} more" if len(rows) > 5 else "")
    return ValueError(
        f"{named} ({len(rows)} of {total}) are empty or whitespace-only: an empty document has no content to "
        f"embed and would match queries at random. Remove them{hint}"
    )


def check_batch_size(batch_size) -> int:
    """A positive int (numpy ints too; bool is not a number here), else a ValueError naming the value."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(f"batch_size must be a positive integer, got {type(batch_size).__name__} {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def check_vectors(vectors, what: str = "vectors") -> np.ndarray:
    """`vectors` as a float32 array, or a TypeError naming `what`: strings, None, objects, ragged rows, booleans and
    complex numbers are not vectors (numpy would give "could not convert string to float" or cast silently)."""
    if isinstance(vectors, (str, bytes, bytearray)) or vectors is None or isinstance(vectors, (Mapping, Set)):
        raise TypeError(f"{what} must be a numeric array of shape (dim,) or (n, dim), got {type(vectors).__name__}")
    try:
        arr = np.asarray(vectors)
    except (ValueError, TypeError):
        raise TypeError(
            f"{what} must be a numeric array of shape (dim,) or (n, dim); the rows given have different lengths "
            "or are not numbers"
        ) from None
    if arr.dtype.kind not in "fiu":
        got = {"U": "strings", "S": "bytes", "O": "Python objects", "b": "booleans", "c": "complex numbers"}.get(
            arr.dtype.kind, f"dtype {arr.dtype}"
        )
        raise TypeError(f"{what} must be a numeric array of shape (dim,) or (n, dim), got an array of {got}")
    return arr.astype(np.float32, copy=False)


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> Iterator[np.ndarray]:
    """Yield index arrays of batches, longest texts first."""
    order = np.argsort([-len(t) for t in texts], kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class _NoProgress:
    """What `progress` gives when no bar is shown: a disabled tqdm costs ~0.3 ms a call, a single query ~20 ms."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def update(self, n: int = 1) -> None:
        pass


def progress(total: int, show: bool, desc: str):
    if not show:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="text")
