"""OnnxEncoder: serve an exported MoTE model with onnxruntime + tokenizers only (never imports torch).

API (what evaluation, FAISS index, LangChain/LlamaIndex and Ray code can rely on):

    from mote_rag import OnnxEncoder          # imports no torch
    enc = OnnxEncoder(path, tasks=None, variant="fp32", threads=None, providers=None, verify=True)
      path      directory written by `MoTEModel.export_onnx` / `mote-rag export` (holds manifest.json)
      tasks     None = every task in the manifest; or a list of task names/aliases this encoder may serve.
                Graphs load lazily: a graph file is read, sha256-checked and opened on the first encode that
                needs it (`enc.load(task)` loads ahead of time).
      variant   "fp32" (exported graph), "optimized" (onnxruntime offline-optimised fp32 graph) or
                "int8" (dynamic int8 quantised); only variants present in the manifest can be chosen.
      threads   onnxruntime intra_op_num_threads (None = onnxruntime's default).
    enc.encode(texts, task="search_document", batch_size=32, show_progress_bar=False,
               normalize_embeddings=True) -> np.float32 (n, dim); a single str -> (dim,); [] -> (0, dim)
      `task` may be a list, one task per text (mixed batch), as with MoTEModel.encode.
    enc.encode_query(texts, **kw) / enc.encode_document(texts, **kw)
    enc.tasks            mote_rag.tasks.TaskSet rebuilt from the manifest (restricted to `tasks` if given)
    enc.dim, enc.max_seq_length, enc.variant
    enc.fingerprint      equals the torch model's `model.fingerprint` for "fp32" and "optimized" (same
                         function up to float rounding, so an index built with the torch model can be queried
                         through them); "<fingerprint>-int8" for "int8", so an index refuses mixing them.

Each graph has inputs input_ids, attention_mask (and token_type_ids when the base uses them), int64, shape
(batch, sequence), both axes dynamic; outputs `sentence_embedding` (batch, dim), masked mean pooled and L2
normalised inside the graph, and `pooled_embedding` (batch, dim), the same vector before normalisation, which
`normalize_embeddings=False` returns. Errors: missing graph file -> FileNotFoundError; sha256 mismatch or
unknown manifest format version -> ValueError; unknown task -> ValueError; None/non-string texts -> TypeError
(the same checks as MoTEModel, from mote_rag.inputs).
"""
from __future__ import annotations

import os
import threading
from typing import Sequence

import numpy as np

from ..inputs import check_batch_size, length_sorted_batches, progress, validate_texts
from .manifest import Manifest


class OnnxEncoder:
    """Torch-free encoder over an exported folder: one onnxruntime session per task graph, opened on demand."""

    def __init__(
        self,
        path: str | os.PathLike,
        tasks: Sequence[str] | None = None,
        variant: str = "fp32",
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        preload: bool = False,
    ):
        self.manifest = Manifest.read(path)
        self.path = self.manifest.root
        self.variant = self.manifest.check_variant(variant)
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        self.threads = threads
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]
        full = self.manifest.task_set()
        if tasks is None:
            self.tasks = full
        else:
            if isinstance(tasks, str):
                tasks = [tasks]
            names = list(dict.fromkeys(full.get(t).name for t in tasks))
            if not names:
                raise ValueError("tasks is empty: pass None for every task, or at least one task name")
            from ..tasks import TaskSet

            self.tasks = TaskSet(t for t in full if t.name in names)
        for task in self.tasks.names:  # fail now, not at the first encode, if a variant lacks a task graph
            self.manifest.graph_name(task, self.variant)
        data = self.manifest.data
        self.dim = int(data["dim"])
        self.max_seq_length = int(data["max_seq_length"])
        self.use_prefixes = bool(data.get("use_prefixes", True))
        self.normalize = bool(data.get("normalize", True))
        self.fingerprint = self.manifest.variant_fingerprint(self.variant)
        self.input_names = list(data["inputs"])
        self._outputs = data["outputs"]
        self.tokenizer = self._load_tokenizer()
        self._sessions: dict[str, object] = {}
        self._lock = threading.Lock()
        if preload:
            for task in self.tasks.names:
                self.load(task)

    # ------------------------------------------------------------------ loading
    def _load_tokenizer(self):
        from tokenizers import Tokenizer

        spec = self.manifest.data["tokenizer"]
        raw = self.manifest.read_verified(spec["file"])
        tok = Tokenizer.from_str(raw.decode("utf-8"))
        # the torch model's HF tokenizer: truncate at max_seq_length, pad right to the longest in the batch
        tok.enable_truncation(max_length=self.max_seq_length, direction=spec.get("truncation_side", "right"))
        tok.enable_padding(pad_id=int(spec["pad_id"]), pad_token=spec["pad_token"],
                           pad_type_id=int(spec.get("pad_type_id", 0)), direction=spec.get("padding_side", "right"))
        return tok

    def _session_options(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        return options

    def load(self, task: str):
        """Open (once) the graph of `task` for this variant, after checking its sha256; returns the session."""
        graph = self.manifest.graph_name(self._task_name(task), self.variant)
        session = self._sessions.get(graph)
        if session is None:
            with self._lock:
                session = self._sessions.get(graph)
                if session is None:
                    import onnxruntime as ort

                    model_bytes = self.manifest.read_verified(graph)
                    session = ort.InferenceSession(model_bytes, self._session_options(), providers=self.providers)
                    del model_bytes
                    self._sessions[graph] = session
        return session

    @property
    def loaded_graphs(self) -> list[str]:
        """Graph files opened so far (graphs load lazily, on the first encode of one of their tasks)."""
        return sorted(self._sessions)

    def _task_name(self, task: str) -> str:
        name = self.tasks.get(task).name  # ValueError naming the valid tasks
        return name

    # ------------------------------------------------------------------ encode API
    def tokenize(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Token ids exactly as the torch model's tokenizer gives them (already prefixed texts)."""
        encodings = self.tokenizer.encode_batch(list(texts))
        features = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }
        if "token_type_ids" in self.input_names:
            features["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        return features

    def prepare_texts(self, texts: Sequence[str], task: str) -> list[str]:
        prefix = self.tasks.get(task).prefix if self.use_prefixes else ""
        return [prefix + t for t in texts] if prefix else list(texts)

    def encode(
        self,
        texts: str | Sequence[str],
        task: str | Sequence[str] = "search_document",
        batch_size: int = 32,
        show_progress_bar: bool = False,
        normalize_embeddings: bool | None = None,
        prompt_name: str | None = None,
        **_ignored,
    ) -> np.ndarray:
        """Embed texts with a task path (or one task per text); float32 (n, dim), a single str -> (dim,)."""
        if prompt_name is not None:
            task = prompt_name
        items, single = validate_texts(texts)
        batch_size = check_batch_size(batch_size)
        if isinstance(task, str):
            names = [self._task_name(task)] * len(items)
        else:
            if task is None:
                raise TypeError("task must be a task name or a list of task names, got None")
            names = [self._task_name(t) for t in task]
            if len(names) != len(items):
                raise ValueError(f"got {len(items)} texts but {len(names)} tasks")
        normalize = self.normalize if normalize_embeddings is None else bool(normalize_embeddings)
        output = self._outputs["normalized" if normalize else "pooled"]
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        by_graph: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            by_graph.setdefault(self.manifest.graph_name(name, self.variant), []).append(i)
        with progress(len(items), show_progress_bar, "encode") as bar:
            for rows in by_graph.values():
                session = self.load(names[rows[0]])
                prepared = [self.prepare_texts([items[i]], names[i])[0] for i in rows]
                for idx in length_sorted_batches(prepared, batch_size):
                    features = self.tokenize([prepared[j] for j in idx])
                    (emb,) = session.run([output], features)
                    out[np.asarray(rows)[idx]] = emb
                    bar.update(len(idx))
        return out[0] if single else out

    def encode_query(self, texts, **kwargs) -> np.ndarray:
        """Embed search queries with the search_query graph."""
        return self.encode(texts, task="search_query", **kwargs)

    def encode_document(self, texts, **kwargs) -> np.ndarray:
        """Embed documents/passages with the search_document graph."""
        return self.encode(texts, task="search_document", **kwargs)

    def get_sentence_embedding_dimension(self) -> int:
        return self.dim

    def __repr__(self) -> str:
        return (f"OnnxEncoder(path={str(self.path)!r}, variant={self.variant!r}, tasks={self.tasks.names}, "
                f"dim={self.dim}, loaded={self.loaded_graphs})")
