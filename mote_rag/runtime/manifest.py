"""manifest.json of an exported ONNX folder: one dataclass (OnnxManifest), read and written only here.

The manifest is the only entry point of an export: the runtime trusts no file it does not list, checks each
file's sha256 before using it, and refuses a format version it does not know. No torch here.

Layout (format_version 1):
    {"format": "mote-rag-onnx", "format_version": 1,
     "fingerprint": <torch model fingerprint>, "dim": 384, "max_seq_length": 256, "opset": 18,
     "exporter": {...}, "source": ..., "architecture": "mote"|"dense", "mote_layers": [...],
     "pooling": "mean", "normalize": true, "use_prefixes": true, "default_task": "search_document",
     "inputs": ["input_ids", "attention_mask", "token_type_ids"],
     "outputs": {"normalized": "sentence_embedding", "pooled": "pooled_embedding"},
     "tokenizer": {"file": "tokenizer.json", "pad_id": 0, "pad_token": "[PAD]", "pad_type_id": 0,
                   "padding_side": "right", "truncation_side": "right"},
     "fastembed": {"files": ["tokenizer_config.json", "config.json"], "pooling": "DISABLED", ...},
     "variants": {"fp32": {"fingerprint": ..., "all_paths": {"file": "all_paths.onnx", "data": "all_paths.onnx.data",
                                                          "input": "path_id", "graphs": ["search_query.onnx", ...]}},
                  "optimized": {...}, "int8": {"fingerprint": "...-int8", ...}},
     "tasks": {"search_query": {"prefix": ..., "expert": ..., "temperature": ..., "aliases": [...],
                                "graphs": {"fp32": "search_query.onnx", "int8": "search_query.int8.onnx"}}, ...},
     "covered": {"use_prefixes": "<sha256[:16]>", "max_seq_length": ..., ...},
     "files": {"search_query.onnx": "<sha256>", "tokenizer.json": "<sha256>", ...}}

The fingerprint is computed from the torch model, which the runtime does not have. Every field that changes
the encoder's output (COVERED) is therefore sealed at export in `covered` (a digest per field) and checked on
load: a hand-edited `use_prefixes` or `max_seq_length` is refused, naming the field, instead of silently
producing vectors the fingerprint does not describe. File names are plain names inside the export folder.

The model's settings in the manifest are the torch model's own (mote_rag.model_config.MANIFEST_KEYS, the same
declaration mote_config.json and the fingerprint use), and each task entry is `Task.to_dict()` plus its graphs.
`default_task` is the task a plain `encode(texts)` uses: the model's, or, when the export leaves it out
(`--tasks`), the exported set's own (TaskSet.default_task); absent in exports made before it was recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..schema import (
    Fields,
    SchemaError,
    canonical_sha256,
    is_sha256,
    plain_name,
    read_json_file,
    sha256_bytes,
    sha256_file,
)
from ..tasks import Task, TaskSet

__all__ = [
    "Manifest",
    "OnnxManifest",
    "MANIFEST_NAME",
    "FORMAT",
    "FORMAT_VERSION",
    "VARIANTS",
    "COVERED",
    "sha256_bytes",
    "sha256_file",
]

MANIFEST_NAME = "manifest.json"
FORMAT = "mote-rag-onnx"
FORMAT_VERSION = 1
VARIANTS = ("fp32", "optimized", "int8")
REQUIRED_KEYS = (
    "fingerprint",
    "dim",
    "max_seq_length",
    "opset",
    "inputs",
    "outputs",
    "tokenizer",
    "variants",
    "tasks",
    "files",
    "covered",
)
COVERED = (
    "dim",
    "max_seq_length",
    "pooling",
    "normalize",
    "use_prefixes",
    "inputs",
    "outputs",
    "tokenizer",
    "tasks",
    "variants",
    "mote_layers",
)  # the fields the fingerprint stands for at runtime
SIDES = ("left", "right")


@dataclass(frozen=True)
class OnnxManifest:
    """The declared content of manifest.json (free-form records such as `exporter` are kept as dicts)."""

    fingerprint: str
    dim: int
    max_seq_length: int
    opset: int
    inputs: list[str]
    outputs: dict[str, str]
    tokenizer: dict
    variants: dict[str, dict]
    tasks: dict[str, dict]
    files: dict[str, str]
    pooling: str = "mean"
    normalize: bool = True
    use_prefixes: bool = True
    architecture: str = "mote"
    mote_layers: list[int] = field(default_factory=list)
    source: str = ""
    exporter: dict = field(default_factory=dict)
    fastembed: dict | None = None
    default_task: str | None = None  # None: TaskSet.default_task's rule (exports made before it was recorded)

    def __post_init__(self) -> None:
        defaults = {"pad_type_id": 0, "padding_side": "right", "truncation_side": "right"}
        object.__setattr__(self, "tokenizer", {**defaults, **self.tokenizer})

    def covered(self) -> dict[str, str]:
        values = self._values()
        return {k: canonical_sha256(values[k])[:16] for k in COVERED}

    def _values(self) -> dict:
        out = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "dim": self.dim,
            "max_seq_length": self.max_seq_length,
            "opset": self.opset,
            "exporter": self.exporter,
            "source": self.source,
            "architecture": self.architecture,
            "mote_layers": list(self.mote_layers),
            "pooling": self.pooling,
            "normalize": self.normalize,
            "use_prefixes": self.use_prefixes,
            **({"default_task": self.default_task} if self.default_task is not None else {}),
            "inputs": list(self.inputs),
            "outputs": dict(self.outputs),
            "tokenizer": dict(self.tokenizer),
        }
        if self.fastembed is not None:
            out["fastembed"] = self.fastembed
        out.update(variants=self.variants, tasks=self.tasks)
        return out

    def to_json(self) -> dict:
        return {**self._values(), "covered": self.covered(), "files": dict(self.files)}

    @classmethod
    def from_json(cls, data: Any, source: str | os.PathLike = MANIFEST_NAME) -> OnnxManifest:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise SchemaError(f"{source} is not a mote-rag ONNX manifest (format {found!r})")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise SchemaError(
                f"{source}: unknown format_version {version!r}; this mote-rag reads version "
                f"{FORMAT_VERSION} (re-export the model with this version, or upgrade mote-rag)"
            )
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise SchemaError(
                f"{source} lacks required keys {missing}"
                + (" (exported by an older mote-rag: export it again)" if missing == ["covered"] else "")
            )
        f = Fields(data, source)
        files = cls._files(f)
        tok = f.obj("tokenizer")
        tokenizer = {
            "file": tok.file("file"),
            "pad_id": tok.int("pad_id", lo=0),
            "pad_token": tok.str("pad_token"),
            "pad_type_id": tok.int("pad_type_id", lo=0, optional=True, default=0),
            "padding_side": tok.str("padding_side", choices=SIDES, optional=True, default="right"),
            "truncation_side": tok.str("truncation_side", choices=SIDES, optional=True, default="right"),
        }
        if tokenizer["file"] not in files:
            raise tok.fail("file", f"tokenizer file {tokenizer['file']} has no sha256 in 'files'")
        out = f.obj("outputs")
        outputs = {"normalized": out.str("normalized", nonempty=True), "pooled": out.str("pooled", nonempty=True)}
        variants = cls._variants(f, files)
        manifest = cls(
            fingerprint=f.str("fingerprint", nonempty=True),
            dim=f.int("dim", lo=1, hi=1 << 16),
            max_seq_length=f.int("max_seq_length", lo=1, hi=1 << 20),
            opset=f.int("opset", lo=1, hi=1000),
            inputs=cls._inputs(f),
            outputs=outputs,
            tokenizer=tokenizer,
            variants=variants,
            tasks=cls._tasks(f, variants, files),
            files=files,
            pooling=f.str("pooling", choices=("mean",), optional=True, default="mean"),
            normalize=f.bool("normalize", optional=True, default=True),
            use_prefixes=f.bool("use_prefixes", optional=True, default=True),
            architecture=f.str("architecture", choices=("mote", "dense"), optional=True, default="mote"),
            mote_layers=f.int_list("mote_layers", optional=True, default=[]),
            source=f.str("source", optional=True, default=""),
            exporter=f.dict("exporter", optional=True) or {},
            fastembed=cls._fastembed(f, files),
            default_task=f.str("default_task", optional=True, default=None, nonempty=True),
        )
        if manifest.default_task is not None and manifest.default_task not in manifest.tasks:
            raise f.fail("default_task", f"{manifest.default_task!r} is not one of the tasks {list(manifest.tasks)}")
        sealed = f.obj("covered")
        for key, digest in manifest.covered().items():
            if sealed.value(key, lambda v: isinstance(v, str), "a digest") != digest:
                raise SchemaError(
                    f"{source} field {key!r} was edited after export: the fingerprint "
                    f"{manifest.fingerprint} no longer describes the model it configures (covered."
                    f"{key} differs); export the model again instead of editing the manifest"
                )
        return manifest

    @staticmethod
    def _files(f: Fields) -> dict[str, str]:
        files = f.dict("files")
        for name, digest in files.items():
            plain_name(name, f"{f.source} files")
            if not is_sha256(digest):
                raise f.fail("files", f"{name}: expected a sha256 hex digest, got {digest!r:.80}")
        return dict(files)

    @staticmethod
    def _inputs(f: Fields) -> list[str]:
        inputs = f.str_list("inputs")
        allowed = ("input_ids", "attention_mask", "token_type_ids")
        if not inputs or any(i not in allowed for i in inputs) or len(set(inputs)) != len(inputs):
            raise f.fail("inputs", f"expected distinct names among {list(allowed)}, got {inputs!r:.120}")
        return inputs

    @staticmethod
    def _variants(f: Fields, files: dict) -> dict[str, dict]:
        variants = f.obj("variants")
        if not variants.data:
            raise f.fail("variants", "lists no variant")
        for name in variants.data:
            if name not in VARIANTS:
                raise variants.fail(name, f"unknown variant (known: {', '.join(VARIANTS)})")
            entry = variants.obj(name)
            entry.str("fingerprint", nonempty=True)
            shared = entry.obj("all_paths", optional=True)  # exporters.all_paths; absent in older exports
            if shared is not None:
                shared.str("input", nonempty=True)
                for listed in [shared.file("file"), shared.file("data"), *shared.str_list("graphs")]:
                    plain_name(listed, f"{f.source} variant {name} all_paths")
                    if listed not in files:
                        raise shared.fail("graphs", f"{listed} has no sha256 in 'files'")
        return dict(variants.data)

    @staticmethod
    def _tasks(f: Fields, variants: dict, files: dict) -> dict[str, dict]:
        tasks = f.obj("tasks")
        if not tasks.data:
            raise f.fail("tasks", "lists no task")
        for name in tasks.data:
            t = tasks.obj(name)
            t.str("prefix", optional=True)
            t.str("expert", optional=True, nonempty=True)
            t.float("temperature", optional=True, positive=True)
            t.str_list("aliases", optional=True)
            t.str("path_fingerprint", optional=True, nonempty=True)  # absent in exports made before per-path
            graphs = t.obj("graphs")
            for variant, graph in graphs.data.items():
                plain_name(graph, f"{f.source} task {name} variant {variant}")
                if variant not in variants:
                    raise graphs.fail(variant, "names a variant that 'variants' does not list")
                if graph not in files:
                    raise graphs.fail(variant, f"graph {graph} of task {name} has no sha256 in 'files'")
        return dict(tasks.data)

    @staticmethod
    def _fastembed(f: Fields, files: dict) -> dict | None:
        fe = f.obj("fastembed", optional=True)
        if fe is None:
            return None
        for i, name in enumerate(fe.str_list("files")):
            plain_name(name, f"{f.source} field 'fastembed.files[{i}]'")
            if name not in files:
                raise fe.fail("files", f"{name} has no sha256 in 'files'")
        fe.str("output_name", optional=True, nonempty=True)
        return dict(fe.data)


@dataclass
class Manifest:
    """A validated manifest (`spec`) and the folder it describes; `data` is its JSON (for older callers)."""

    root: Path
    spec: OnnxManifest

    @property
    def data(self) -> dict:
        return self.spec.to_json()

    # ------------------------------------------------------------------ reading
    @classmethod
    def read(cls, root: str | os.PathLike) -> Manifest:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"ONNX export folder {root} does not exist")
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is a file; an ONNX export is a folder holding {MANIFEST_NAME}")
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {root} is not an ONNX export (run `mote-rag export`)")
        manifest = cls(root, OnnxManifest.from_json(read_json_file(path, "ONNX manifest"), source=path))
        manifest.task_set()  # raises on malformed task entries
        return manifest

    # ------------------------------------------------------------------ views
    @property
    def fingerprint(self) -> str:
        return self.spec.fingerprint

    @property
    def variants(self) -> list[str]:
        return list(self.spec.variants)

    def variant_fingerprint(self, variant: str) -> str:
        self.check_variant(variant)
        return self.spec.variants[variant]["fingerprint"]

    def check_variant(self, variant: str) -> str:
        if variant not in self.spec.variants:
            raise ValueError(
                f"variant {variant!r} is not in {self.root / MANIFEST_NAME}; available: "
                f"{', '.join(self.variants)} (export with optimize=/quantize= to add more)"
            )
        return variant

    def default_variant(self) -> str:
        """ "optimized" where the export has it (the same function and fingerprint as "fp32", fused), else "fp32"."""
        return "optimized" if "optimized" in self.spec.variants else "fp32"

    def all_paths(self, variant: str, tasks: list[str], shared_trunk: bool | None = None) -> dict | None:
        """The variant's all-paths entry when serving `tasks` goes through it: asked for (True), or automatically
        (None) when the tasks span several path graphs and the export has one; None for per-path graphs."""
        if shared_trunk is not None and not isinstance(shared_trunk, bool):
            raise ValueError(f"shared_trunk must be True, False or None (automatic), got {shared_trunk!r}")
        entry = self.spec.variants[self.check_variant(variant)].get("all_paths")
        if shared_trunk is True and entry is None:
            raise ValueError(
                f"shared_trunk=True, but {self.root / MANIFEST_NAME} has no all-paths graph for variant "
                f"{variant!r} (an export with one path graph, or made before mote-rag wrote them)"
            )
        several = len({self.graph_name(t, variant) for t in tasks}) > 1
        return entry if entry is not None and (shared_trunk or (shared_trunk is None and several)) else None

    def serving_files(self, variant: str, tasks: list[str], shared_trunk: bool | None = None) -> list[str]:
        """The files an encoder of `tasks` on `variant` reads: the tokenizer and the graphs (and their data)."""
        entry = self.all_paths(variant, tasks, shared_trunk)
        graphs = [entry["file"], entry["data"]] if entry else sorted({self.graph_name(t, variant) for t in tasks})
        return [self.spec.tokenizer["file"], *graphs]

    def task_set(self) -> TaskSet:
        return TaskSet(Task.from_dict({**entry, "name": name}) for name, entry in self.spec.tasks.items())

    @property
    def default_task(self) -> str:
        """The task a plain `encode(texts)` uses (see the module docstring)."""
        return self.task_set().default_task(self.spec.default_task)

    def graph_name(self, task: str, variant: str) -> str:
        graphs = self.spec.tasks[task]["graphs"]
        if variant not in graphs:
            raise ValueError(f"task {task!r} has no {variant!r} graph in {self.root / MANIFEST_NAME}")
        return graphs[variant]

    def read_verified(self, name: str) -> bytes:
        """The bytes of a listed file, after checking its sha256 (what is hashed is exactly what is loaded)."""
        path = self._listed(name)
        data = path.read_bytes()
        self._check_digest(name, path, sha256_bytes(data))
        return data

    def verified_path(self, name: str) -> Path:
        """The path of a listed file, after checking its sha256 (streamed, for files opened by path: graphs)."""
        path = self._listed(name)
        self._check_digest(name, path, sha256_file(path))
        return path

    def _listed(self, name: str) -> Path:
        """The path of `name`, which the manifest must list and the folder must hold."""
        if name not in self.spec.files:
            raise ValueError(f"{name} is not listed in {self.root / MANIFEST_NAME}")
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the export in {self.root} is incomplete")
        return path

    def _check_digest(self, name: str, path: Path, actual: str) -> None:
        expected = self.spec.files[name]
        if actual != expected:
            raise ValueError(
                f"{path} failed its integrity check: sha256 {actual[:16]}... but the manifest says "
                f"{expected[:16]}... (the file was modified or corrupted; re-export)"
            )

    def verify_files(self, names: list[str] | None = None) -> dict[str, str]:
        """file -> "ok" / "MISSING" / "SHA256 MISMATCH" for every listed file, or each of `names` (streamed,
        nothing loaded)."""
        out = {}
        for name in self.spec.files if names is None else names:
            expected = self.spec.files[name]
            path = self.root / name
            if not path.is_file():
                out[name] = "MISSING"
            else:
                out[name] = "ok" if sha256_file(path) == expected else "SHA256 MISMATCH"
        return out

    def check_files(self, names: list[str] | None = None) -> None:
        """Raise, naming the first bad file, unless every listed file (or each of `names`) is present and
        intact."""
        for name, status in self.verify_files(names).items():
            if status != "ok":
                raise ValueError(
                    f"{self.root / name} failed its integrity check ({status}): the export in "
                    f"{self.root} was modified or is incomplete; export it again"
                )
