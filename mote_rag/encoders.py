"""The encoder: one protocol that every consumer relies on, one base class that owns everything around the
forward pass, and one way to open an encoder from a folder.

    texts -> checks (mote_rag.inputs) -> task (mote_rag.tasks: prefix + expert) -> length-sorted batches
          -> backend batch step (torch MoTEModel, OnnxEncoder, SentenceTransformerEncoder) -> rows in input order

`Encoder` is the protocol indexes, evaluation, the LangChain/LlamaIndex classes, Ray and the CLI use (`MEMBERS`).
`EncoderBase` implements the three encode methods once; a backend supplies `_embed_batch` (and, when its batches
cannot mix tasks, `_batch_group`). `TaskEmbedder` is what the two framework integrations share on top of that.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Hashable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .inputs import check_batch_size, check_text, check_text_list, length_sorted_batches, progress, validate_texts
from .tasks import Task, TaskSet

logger = logging.getLogger(__name__)

EMBEDDED = ("base", "embedded", "default")
MODEL_ENV = "MOTE_RAG_MODEL"
DEFAULT_TASK = "search_document"
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


class EncoderBase:
    """Input checks, task resolution, prefixes, length-sorted batching, progress and output shape, written once.

    A backend sets `tasks` (TaskSet), `dim`, `fingerprint`, `max_seq_length`, `source`, `use_prefixes` and
    `normalize`, and implements `_embed_batch(texts, tasks, normalize) -> float32 (len(texts), dim)`: `texts`
    already carry their task's prefix, and the rows are L2-normalised iff `normalize` (each backend normalises
    where it is exact: torch in the forward, ONNX inside the graph). Rows are batched within groups of
    `_batch_group(task)` (default: one group, so a batch may mix tasks), longest first, and come back in input
    order.
    """

    tasks: TaskSet
    use_prefixes: bool = True
    normalize: bool = True
    default_task: str = DEFAULT_TASK

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

    def prepare_texts(self, texts: Sequence[str], task: str | Task) -> list[str]:
        """`texts` as the tokenizer sees them on `task`'s path: with the task's instruction prefix, if any."""
        prefix = self.prefix(task)
        return [prefix + t for t in texts] if prefix else list(texts)

    def resolve_tasks(self, task, count: int) -> list[Task]:
        """One Task per row from a task name/alias (None = `default_task`) or a list of one name per row."""
        if task is None:
            task = self.default_task
        if isinstance(task, str):
            return [self.tasks.get(task)] * count
        if isinstance(task, (list, tuple)):
            if len(task) != count:
                raise ValueError(f"got {count} texts but {len(task)} tasks")
            out = []
            for i, name in enumerate(task):
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
        with self._encoding(), progress(len(items), show_progress_bar, "encode") as bar:
            for rows in groups.values():
                for idx in length_sorted_batches([items[i] for i in rows], batch_size):
                    batch = [rows[j] for j in idx]
                    prepared = [self.prefix(tasks[i]) + items[i] for i in batch]
                    out[batch] = self._embed_batch(prepared, [tasks[i] for i in batch], normalize)
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


# ---------------------------------------------------------------------------------------------- opening
def encoder_kind(path: str | os.PathLike) -> str:
    """'mote' (saved MoTEModel), 'onnx' (exported graphs) or 'dense' (a transformers checkpoint)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"model path {p} does not exist")
    if not p.is_dir():
        raise NotADirectoryError(f"model path {p} is a file; expected a model directory")
    if (p / "mote_config.json").is_file():
        return "mote"
    if (p / "manifest.json").is_file():
        return "onnx"
    if (p / "config.json").is_file():
        from .weights import check_safe_weights

        check_safe_weights(p)  # pickled weights are refused before transformers or torch open them
        return "dense"
    raise ValueError(f"{p} is not a model directory: no mote_config.json, manifest.json or config.json inside")


def load_encoder(spec: str | os.PathLike | None = None, *, use_prefixes: bool = True, **kwargs) -> Encoder:
    """Open an encoder. None/'base' -> the embedded dense base; a directory -> by what it holds.

    A dense checkpoint is wrapped as `MoTEModel.dense` (same API, no experts) so it can be compared
    task-for-task; pass `use_prefixes=False` for the plain base as published.
    """
    if spec is None or (isinstance(spec, str) and spec in EMBEDDED):
        from .model import MoTEModel

        return MoTEModel.dense(None, use_prefixes=use_prefixes)
    if not isinstance(spec, (str, os.PathLike)):
        raise TypeError(f"model must be a folder path, got {type(spec).__name__}")
    kind = encoder_kind(spec)
    logger.debug("opening %s as a %s encoder", spec, kind)
    if kind == "onnx":
        from .runtime.onnx_encoder import OnnxEncoder

        return OnnxEncoder(spec, **kwargs)
    from .model import MoTEModel

    if kind == "mote":
        return MoTEModel.from_pretrained(spec, **kwargs)
    return MoTEModel.dense(spec, use_prefixes=use_prefixes, **kwargs)


def open_encoder(model: Any, *, owner: str = "mote-rag") -> Encoder:
    """An encoder from a folder path, an encoder object, or $MOTE_RAG_MODEL; a clear error otherwise.

    What the LangChain and LlamaIndex classes accept as `model`.
    """
    if model is None:
        model = os.environ.get(MODEL_ENV)
        if not model:
            raise ValueError(
                f"{owner} needs a model: pass model=<exported ONNX folder, saved MoTE folder, or an "
                f"encoder object>, or set ${MODEL_ENV} to a model folder"
            )
    if isinstance(model, (str, os.PathLike)):
        return load_encoder(model)
    try:
        return check_encoder(model, f"{owner} model")
    except TypeError as exc:
        raise TypeError(
            f"model must be a model folder path or a mote-rag encoder, got {type(model).__name__} ({exc})"
        ) from None


# ---------------------------------------------------------------------------------------------- integrations
class TaskEmbedder:
    """What the LangChain and LlamaIndex classes share: an opened encoder whose task for each role (query,
    document) was checked when it was opened, one encode at a time, and plain float lists out.

    The lock serialises encodes on one instance: two forwards on the same cores only oversubscribe them,
    and an encoder object need not be thread-safe (HF fast tokenizers raise "Already borrowed" when shared).
    """

    def __init__(self, model: Any, roles: dict[str, str], owner: str):
        """`roles`: field name -> task name (e.g. {"query_task": "search_query"}), validated now."""
        self.encoder = open_encoder(model, owner=owner)
        # the folder as the caller wrote it (or $MOTE_RAG_MODEL), else where the encoder object came from
        given = model if model is not None else os.environ.get(MODEL_ENV)
        self.description = os.fspath(given if isinstance(given, (str, os.PathLike)) else self.encoder.source)
        for role, task in roles.items():
            self.check_task(task, role)
        self._lock = threading.Lock()

    def check_task(self, task: str, role: str) -> str:
        """Canonical task name of `task` (a name or alias), or an error that names the role."""
        try:
            return self.encoder.tasks.get(task).name
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{role}: {exc}") from None

    @property
    def dim(self) -> int:
        return int(self.encoder.dim)

    @property
    def fingerprint(self) -> str:
        return str(self.encoder.fingerprint)

    def embed(self, texts: Sequence[str], task: str, batch_size: int, show_progress: bool = False) -> list[list[float]]:
        """Vectors of `texts` (a list: one str is refused, not split into characters) on `task`'s path."""
        texts = check_text_list(texts)
        batch_size = check_batch_size(batch_size)
        if not texts:
            return []
        with self._lock:
            vectors = self.encoder.encode(texts, task=task, batch_size=batch_size, show_progress_bar=show_progress)
        return vectors.tolist()  # float32 -> Python floats, exactly

    def embed_one(self, text: str, task: str, batch_size: int) -> list[float]:
        """The vector of one text (a query); anything but one str is a TypeError."""
        return self.embed([check_text(text)], task, batch_size)[0]

    async def aembed(
        self, texts: Sequence[str], task: str, batch_size: int, show_progress: bool = False
    ) -> list[list[float]]:
        """`embed` in a worker thread, so the event loop keeps running while the model computes."""
        texts = check_text_list(texts)  # fail in the caller's frame, not the worker's
        return await asyncio.to_thread(self.embed, texts, task, batch_size, show_progress)

    async def aembed_one(self, text: str, task: str, batch_size: int) -> list[float]:
        return (await self.aembed([check_text(text)], task, batch_size))[0]
