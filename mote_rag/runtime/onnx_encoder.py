"""OnnxEncoder: serve an exported MoTE model with onnxruntime + tokenizers only (never imports torch).

The folder is what `MoTEModel.export_onnx` / `mote-rag export` writes (manifest.json, one graph per task path,
an all-paths graph per variant, tokenizer.json). Graphs load lazily: a graph file is sha256-checked and opened on
the first encode that needs it (`load(task)` loads ahead of time, `preload=True` loads every task's graph).

Serving several paths, the encoder opens the export's all-paths graph (exporters.all_paths: the trunk stored
once, a `path_id` input picks the experts; bit-identical to each path's own graph up to float summation order)
instead of one graph per path: onnxruntime copies every weight into each session and gives each its own arena, so
four per-path sessions of MiniLM peak at about 3x the memory of one. `shared_trunk=False` opens per-path graphs
(one path's graph alone is the smallest footprint for a process that serves one task).

The default variant is "optimized" where the export has it (the same function and fingerprint as "fp32", with
attention, LayerNorm and GELU fused offline: faster on every CPU measured), else "fp32". `encode`, `encode_query` and
`encode_document` come from mote_rag.encoders.EncoderBase, so inputs, tasks, prefixes, batching and errors are
the torch model's; this class only tokenizes and runs a session per batch.

`fingerprint` equals the torch model's for the "fp32" and "optimized" variants (the same function up to float
rounding, so an index built with the torch model can be queried through them) and is "<fingerprint>-int8" for
"int8", so an index refuses mixing them. Each graph outputs `sentence_embedding` (masked mean pooled, L2
normalised inside the graph) and `pooled_embedding` (the same before normalisation, for
`normalize_embeddings=False`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

import numpy as np

from ..encoders import EncoderBase
from ..tasks import Task, TaskSet
from .manifest import Manifest

logger = logging.getLogger(__name__)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


class OnnxEncoder(EncoderBase):
    """Torch-free encoder over an exported folder: one onnxruntime session per task graph, opened on demand."""

    def __init__(
        self,
        path: str | os.PathLike,
        tasks: Sequence[str] | None = None,
        variant: str | None = None,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        preload: bool = False,
        shared_trunk: bool | None = None,
    ):
        self.manifest = Manifest.read(path)
        self.path = self.manifest.root
        self.source = str(self.path)
        self.variant = self.manifest.check_variant(variant or self.manifest.default_variant())
        self._check_int8_cpu()
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
            self.tasks = TaskSet(t for t in full if t.name in names)
        for task in self.tasks.names:  # fail now, not at the first encode, if a variant lacks a task graph
            self.manifest.graph_name(task, self.variant)
        data = self.manifest.data
        self.dim = int(data["dim"])
        self.max_seq_length = int(data["max_seq_length"])
        self.use_prefixes = bool(data.get("use_prefixes", True))
        self.normalize = bool(data.get("normalize", True))
        self.default_task = self.manifest.spec.default_task  # None (older exports): TaskSet.default_task's rule
        self.fingerprint = self.manifest.variant_fingerprint(self.variant)
        self.input_names = list(data["inputs"])
        self._outputs = data["outputs"]
        self.tokenizer = self._load_tokenizer()
        self._sessions: dict[str, object] = {}
        self._lock = threading.Lock()
        self._all_paths = self.manifest.all_paths(self.variant, self.tasks.names, shared_trunk)
        if preload:
            for task in self.tasks.names:
                self.load(task)

    # ------------------------------------------------------------------ loading
    def _load_tokenizer(self):
        from tokenizers import Tokenizer

        spec = self.manifest.data["tokenizer"]
        raw = self.manifest.read_verified(spec["file"])
        try:
            tok = Tokenizer.from_str(raw.decode("utf-8"))
        except Exception as exc:  # tokenizers raises a bare Exception ("expected value at line 1 column 1")
            raise ValueError(
                f"{self.path / spec['file']} is not a tokenizer file that the tokenizers library can read "
                f"({_first_line(exc)}); the export is damaged or was assembled by hand: re-export the model"
            ) from None
        # the torch model's HF tokenizer: truncate at max_seq_length, pad right to the longest in the batch
        tok.enable_truncation(max_length=self.max_seq_length, direction=spec.get("truncation_side", "right"))
        tok.enable_padding(
            pad_id=int(spec["pad_id"]),
            pad_token=spec["pad_token"],
            pad_type_id=int(spec.get("pad_type_id", 0)),
            direction=spec.get("padding_side", "right"),
        )
        return tok

    def _session_options(self):
        import onnxruntime as ort

        options = ort.SessionOptions()
        # The memory pattern pre-plans one block per input shape; with the all-paths graph's branches it raised
        # the peak by ~100 MB (MiniLM, fp32) and saved no time on length-sorted batches (0.99x, measured).
        options.enable_mem_pattern = False
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
        return options

    @property
    def shared_trunk(self) -> bool:
        """True when every path is served by the one all-paths graph."""
        return self._all_paths is not None

    def load(self, task: str):
        """Open (once) the graph serving `task` for this variant, after checking its sha256; returns the session."""
        graph = self.manifest.graph_name(self._task_name(task), self.variant)
        if self._all_paths is not None:
            graph = self._all_paths["file"]
        session = self._sessions.get(graph)
        if session is None:
            with self._lock:
                session = self._sessions.get(graph)
                if session is None:
                    import onnxruntime as ort

                    file = self.manifest.verified_path(graph)  # by path: bytes would be held twice while loading
                    if self._all_paths is not None:
                        self.manifest.verified_path(self._all_paths["data"])  # its weights, beside it
                    try:
                        session = ort.InferenceSession(str(file), self._session_options(), providers=self.providers)
                    except Exception as exc:  # onnxruntime's InvalidProtobuf, Fail, InvalidGraph ...
                        raise ValueError(
                            f"{self.path / graph} is not an ONNX graph that onnxruntime can open "
                            f"({_first_line(exc)}); the export is damaged or was assembled by hand: re-export "
                            "the model"
                        ) from None
                    self._sessions[graph] = session
                    logger.debug("opened %s (%s, providers %s)", graph, self.variant, self.providers)
        return session

    @property
    def loaded_graphs(self) -> list[str]:
        """Graph files opened so far (graphs load lazily, on the first encode of one of their tasks)."""
        return sorted(self._sessions)

    def _check_int8_cpu(self) -> None:
        """An int8 export with 8-bit weights (made on a VNNI CPU) saturates on a CPU without VNNI: say so."""
        from .cpu import has_vnni

        settings = self.manifest.data["variants"].get(self.variant, {}).get("quantization") or {}
        if self.variant == "int8" and settings.get("reduce_range") is False and not has_vnni():
            logger.warning(
                "%s: the int8 graphs have 8-bit weights (exported on a VNNI CPU) and this CPU has no VNNI, where "
                "onnxruntime's int8 kernels can saturate; re-export here (7-bit weights) or use variant='fp32'",
                self.path,
            )

    def path_fingerprint(self, task) -> str:
        """The torch model's fingerprint of `task`'s path, recorded at export (sealed in the manifest); like
        `fingerprint`, "-int8" marks the int8 variant. Exports made before per-path fingerprints fall back to the
        whole-model rule (EncoderBase.path_fingerprint)."""
        t = task if isinstance(task, Task) else self.tasks.get(task)
        recorded = self.manifest.data["tasks"][t.name].get("path_fingerprint")
        if not recorded:
            return super().path_fingerprint(t)
        return f"{recorded}-int8" if self.variant == "int8" else recorded

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

    # ------------------------------------------------------------------ EncoderBase hooks
    def _batch_group(self, task: Task) -> str:
        return self.manifest.graph_name(task.name, self.variant)  # one session per batch

    def _embed_batch(self, texts: list[str], tasks: list[Task], normalize: bool) -> np.ndarray:
        session = self.load(tasks[0].name)
        feeds = self.tokenize(texts)
        if self._all_paths is not None:
            graph = self.manifest.graph_name(tasks[0].name, self.variant)
            feeds[self._all_paths["input"]] = np.array(self._all_paths["graphs"].index(graph), dtype=np.int64)
        (emb,) = session.run([self._outputs["normalized" if normalize else "pooled"]], feeds)
        return emb

    def __repr__(self) -> str:
        return (
            f"OnnxEncoder(path={str(self.path)!r}, variant={self.variant!r}, tasks={self.tasks.names}, "
            f"dim={self.dim}, shared_trunk={self.shared_trunk}, loaded={self.loaded_graphs})"
        )
