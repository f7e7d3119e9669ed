"""On-disk embedding cache: one .npy per (encoder fingerprint, task path, dataset, texts hash).

The texts hash makes a limited subset, or a changed data file, a different entry instead of a stale hit.
Files are written atomically and read with allow_pickle=False; a file whose shape does not match is ignored.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..atomic import atomic_path


def texts_digest(texts: Sequence[str]) -> str:
    h = hashlib.sha256(str(len(texts)).encode())
    for t in texts:
        h.update(b"\x00")
        h.update(t.encode("utf-8"))
    return h.hexdigest()[:16]


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part) or "_"


class EmbeddingCache:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, fingerprint: str, task: str, dataset: str, texts: Sequence[str]) -> Path:
        return self.root / _safe(fingerprint) / _safe(task) / f"{_safe(dataset)}-{texts_digest(texts)}.npy"

    def get(self, fingerprint: str, task: str, dataset: str, texts: Sequence[str]) -> np.ndarray | None:
        p = self.path(fingerprint, task, dataset, texts)
        if not p.is_file():
            return None
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError):
            return None  # unreadable (e.g. truncated by a foreign writer): recompute and overwrite
        if arr.ndim != 2 or arr.shape[0] != len(texts):
            return None
        return arr

    def put(self, fingerprint: str, task: str, dataset: str, texts: Sequence[str], embeddings: np.ndarray) -> Path:
        p = self.path(fingerprint, task, dataset, texts)
        with atomic_path(p) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, np.ascontiguousarray(embeddings, dtype=np.float32), allow_pickle=False)
        return p
