"""Input checks and length-sorted batching shared by the torch and ONNX encoders (no torch here).

Sorting by length before batching keeps padding small (the sentence-transformers trick); the caller
gets rows back in the original order.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np


def validate_texts(texts) -> tuple[list[str], bool]:
    """Return (texts as a list, whether a single string was given); reject None and non-strings."""
    if texts is None:
        raise TypeError("texts must be a string or a list of strings, got None")
    if isinstance(texts, str):
        return [texts], True
    if isinstance(texts, (bytes, bytearray)):
        raise TypeError("texts must be str, not bytes: decode them first")
    try:
        items = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a string or a list of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise TypeError(f"texts[{i}] must be a string, got {type(t).__name__}: {t!r:.60}")
    return items, False


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return int(batch_size)


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
