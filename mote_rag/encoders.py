"""The encoder: one protocol that every consumer relies on, and one base class that owns everything around the
forward pass.

    texts -> checks (mote_rag.inputs) -> task (mote_rag.tasks: prefix + expert) -> length-sorted batches
          -> backend batch step (torch MoTEModel, OnnxEncoder, SentenceTransformerEncoder) -> rows in input order

`Encoder` is the protocol indexes, evaluation, the LangChain/LlamaIndex classes, Ray and the CLI use (`MEMBERS`).
`EncoderBase` implements the three encode methods once; a backend supplies `_embed_batch` (and, when its batches
cannot mix tasks, `_batch_group`). Opening an encoder from a folder is mote_rag.loading; what the framework
integrations share on top of an encoder is mote_rag.interop.frameworks.TaskEmbedder. This module imports no backend.
"""

from __future__ import annotations

import hashlib
import importlib
import threading
import warnings
import weakref
from collections.abc import Hashable, Sequence
from contextlib import nullcontext
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .inputs import check_batch_size, length_sorted_batches, progress, validate_texts
from .tasks import DEFAULT_TASK, Task, TaskSet

__all__ = ["Encoder", "EncoderBase", "MEMBERS", "DEFAULT_TASK", "check_encoder"]

MEMBERS = ("tasks", "dim", "fingerprint", "max_seq_length", "source", "encode", "encode_query", "encode_document")


@runtime_checkable
class Encoder(Protocol):
    """What every mote-rag encoder offers; `isinstance(obj, Encoder)` checks that the members exist."""

    tasks: TaskSet
    dim: int
    fingerprint: str
    max_seq_length: int
    source: str  # where it came from (a folder, or a class name), for reprs, index headers and result names

    def encode(
        self,
        texts,
        task=None,
        batch_size: int = 32,
        show_progress_bar: bool = False,
        normalize_embeddings: bool | None = None,
        convert_to_numpy: bool = True,
        prompt_name: str | None = None,
    ) -> np.ndarray: ...

    def encode_query(self, texts, **kwargs) -> np.ndarray: ...

    def encode_document(self, texts, **kwargs) -> np.ndarray: ...


def check_encoder(encoder: Any, what: str = "encoder") -> Encoder:
    """`encoder` itself when it has the protocol's members; a TypeError naming the missing ones otherwise."""
    missing = [m for m in MEMBERS if not hasattr(encoder, m)]
    if missing:
        raise TypeError(
            f"{what} must be a mote-rag encoder (MoTEModel, OnnxEncoder, an EncoderBase subclass); "
            f"{type(encoder).__name__} lacks {', '.join(missing)}"
        )
    if not isinstance(encoder.tasks, TaskSet):
        raise TypeError(f"{what}.tasks must be a mote_rag.tasks.TaskSet, got {type(encoder.tasks).__name__}")
    return encoder


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # encoder -> its encode lock (see EncoderBase)
_LOCKS_GUARD = threading.Lock()


def encode_lock(encoder: Any) -> threading.RLock:
    """The one lock an encoder's `encode` runs under. Kept beside the encoder rather than on it, so a model can
    still be deep-copied or pickled (merging, Ray) and every subclass gets it without calling an __init__."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(encoder)
        if lock is None:
            lock = _LOCKS[encoder] = threading.RLock()
        return lock


class EncoderBase:
    """Input checks, task resolution, prefixes, length-sorted batching, progress, output shape and the encode
    lock, written once.

    A backend sets `tasks` (TaskSet), `dim`, `fingerprint`, `max_seq_length`, `source`, `use_prefixes` and
    `normalize` (and may set `default_task`, else mote_rag.tasks.TaskSet.default_task decides), and implements
    `_embed_batch(texts, tasks, normalize) -> float32 (len(texts), dim)`: `texts` already carry their task's prefix,
    and the rows are L2-normalised iff `normalize` (each backend normalises where it is exact: torch in the forward,
    ONNX inside the graph). Rows are batched within groups of `_batch_group(task)` (default: one group, so
    a batch may mix tasks), longest first, and come back in input order.

    One `encode` runs at a time on an encoder (a re-entrant lock, `encode_lock`): two forwards on the same cores
    only oversubscribe them, and a tokenizer need not be thread-safe (HF fast tokenizers raise "Already borrowed"
    when shared). Indexes and the framework integrations rely on this lock and take none of their own.
    """

    tasks: TaskSet
    use_prefixes: bool = True
    normalize: bool = True
    default_task: str | None = None  # None: TaskSet.default_task's rule

    # ------------------------------------------------------------------ backend hooks
    def _embed_batch(self, texts: list[str], tasks: list[Task], normalize: bool) -> np.ndarray:
        raise NotImplementedError

    def _batch_group(self, task: Task) -> Hashable:  # noqa: ARG002 - hook overridden by backends
        return None

    def _encoding(self):
        """Context around one `encode` call (torch: inference mode, eval())."""
        return nullcontext()

    def _as_tensor(self, out: np.ndarray):  # noqa: ARG002 - hook overridden by torch backends
        raise ValueError(
            f"{type(self).__name__} returns numpy arrays only; convert_to_numpy=False needs a torch backend (MoTEModel)"
        )

    # ------------------------------------------------------------------ shared steps
    def prefix(self, task: str | Task) -> str:
        """The instruction prefix `task` puts before each text ("" when prefixes are off)."""
        return (task if isinstance(task, Task) else self.tasks.get(task)).prefix_for(self.use_prefixes)

    def prepare_texts(self, texts: Sequence[str], task) -> list[str]:
        """`texts` as the tokenizer sees them: each with its task's instruction prefix, if any. `task`: one task
        (name, alias or Task) for every text, or one per text (the one place a prefix is put before a text)."""
        if isinstance(task, (str, Task)):
            prefix = self.prefix(task)
            return [prefix + t for t in texts] if prefix else list(texts)
        return [self.prefix(k) + t for k, t in zip(task, texts, strict=True)]

    def resolve_tasks(self, task, count: int) -> list[Task]:
        """One Task per row from a task name/alias/Task (None = the default task) or a list of one per row."""
        if task is None:
            task = self.tasks.default_task(self.default_task)
        if isinstance(task, Task):
            return [task] * count
        if isinstance(task, str):
            return [self.tasks.get(task)] * count
        if isinstance(task, (list, tuple)):
            if len(task) != count:
                raise ValueError(f"got {count} texts but {len(task)} tasks")
            out = []
            for i, name in enumerate(task):
                if isinstance(name, Task):
                    out.append(name)
                    continue
                try:
                    out.append(self.tasks.get(name))
                except (TypeError, ValueError) as exc:
                    raise type(exc)(f"task[{i}]: {exc}") from None
            return out
        raise TypeError(
            f"task must be a task name or a list of task names, got {type(task).__name__}: {task!r:.40}; "
            f"valid tasks: {', '.join(self.tasks.names)}"
        )

    def encode(
        self,
        texts,
        task=None,
        batch_size: int = 32,
        show_progress_bar: bool = False,
        normalize_embeddings: bool | None = None,
        convert_to_numpy: bool = True,
        prompt_name: str | None = None,
    ) -> np.ndarray:
        """Embed texts on `task`'s path (a name or alias; None = `default_task`; or one task per text).

        float32 (n, dim), L2-normalised unless `normalize_embeddings=False`; one str gives (dim,), [] gives (0, dim).
        `prompt_name` is sentence-transformers' name for `task`. Unknown keyword arguments are a TypeError.
        """
        if prompt_name is not None:
            if task is not None:
                raise TypeError("pass task or prompt_name (its sentence-transformers name), not both")
            task = prompt_name
        items, single = validate_texts(texts)
        batch_size = check_batch_size(batch_size)
        tasks = self.resolve_tasks(task, len(items))
        if normalize_embeddings is not None and not isinstance(normalize_embeddings, (bool, np.bool_)):
            raise TypeError(f"normalize_embeddings must be True, False or None, got {normalize_embeddings!r}")
        normalize = self.normalize if normalize_embeddings is None else bool(normalize_embeddings)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        groups: dict[Hashable, list[int]] = {}
        for i, t in enumerate(tasks):
            groups.setdefault(self._batch_group(t), []).append(i)
        with encode_lock(self), self._encoding(), progress(len(items), show_progress_bar, "encode") as bar:
            for rows in groups.values():
                for idx in length_sorted_batches([items[i] for i in rows], batch_size):
                    batch = [rows[j] for j in idx]
                    rows_tasks = [tasks[i] for i in batch]
                    prepared = self.prepare_texts([items[i] for i in batch], rows_tasks)
                    out[batch] = self._embed_batch(prepared, rows_tasks, normalize)
                    bar.update(len(batch))
        if single:
            out = out[0]
        return out if convert_to_numpy else self._as_tensor(out)

    def encode_query(self, texts, **kwargs) -> np.ndarray:
        """`encode` on the search_query path."""
        return self.encode(texts, task="search_query", **kwargs)

    def encode_document(self, texts, **kwargs) -> np.ndarray:
        """`encode` on the search_document path."""
        return self.encode(texts, task="search_document", **kwargs)

    def path_fingerprint(self, task: str | Task) -> str:
        """A fingerprint of what `task`'s path computes. This default, for backends that cannot hash one path,
        derives it from the whole model's fingerprint, the expert and the prefix: stricter than needed (any
        change to the model changes every path), never looser. MoTEModel and OnnxEncoder hash the path itself."""
        t = task if isinstance(task, Task) else self.tasks.get(task)
        key = f"{self.fingerprint}|{t.expert}|{t.prefix_for(self.use_prefixes)}"
        return hashlib.sha256(key.encode()).hexdigest()[:32]

    def get_sentence_embedding_dimension(self) -> int:
        return int(self.dim)


# ---------------------------------------------------------------------------------------------- moved names
_MOVED = {
    "EMBEDDED": "mote_rag.loading",
    "MODEL_ENV": "mote_rag.loading",
    "encoder_kind": "mote_rag.loading",
    "load_encoder": "mote_rag.loading",
    "open_encoder": "mote_rag.loading",
    "TaskEmbedder": "mote_rag.interop.frameworks",
}


def __getattr__(name: str):
    """Names that lived here before the loading module and the framework module took them: still importable from
    here (with a DeprecationWarning), looked up at run time so this module imports no backend."""
    if name in _MOVED:
        warnings.warn(f"mote_rag.encoders.{name} moved to {_MOVED[name]}.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'mote_rag.encoders' has no attribute {name!r}")
