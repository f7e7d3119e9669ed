"""manifest.json of an exported ONNX folder: what each task path's graph is, and the sha256 of every file.

The manifest is the only entry point of an export: the runtime trusts no file it does not list, checks each
file's sha256 before using it, and refuses a format version it does not know. No torch here.

Layout (format_version 1):
    {"format": "mote-rag-onnx", "format_version": 1,
     "fingerprint": <torch model fingerprint>, "dim": 384, "max_seq_length": 256, "opset": 18,
     "exporter": {...}, "pooling": "mean", "normalize": true, "use_prefixes": true,
     "inputs": ["input_ids", "attention_mask", "token_type_ids"],
     "outputs": {"normalized": "sentence_embedding", "pooled": "pooled_embedding"},
     "tokenizer": {"file": "tokenizer.json", "pad_id": 0, "pad_token": "[PAD]", "pad_type_id": 0},
     "fastembed": {"files": ["tokenizer_config.json", "config.json"], "pooling": "DISABLED", ...},  (newer exports)
     "variants": {"fp32": {"fingerprint": ...}, "optimized": {...}, "int8": {"fingerprint": "...-int8", ...}},
     "tasks": {"search_query": {"prefix": ..., "expert": ..., "temperature": ..., "aliases": [...],
                                "graphs": {"fp32": "search_query.onnx", "int8": "search_query.int8.onnx"}}, ...},
     "files": {"search_query.onnx": "<sha256>", "tokenizer.json": "<sha256>", ...}}
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..tasks import Task, TaskSet

MANIFEST_NAME = "manifest.json"
FORMAT = "mote-rag-onnx"
FORMAT_VERSION = 1
VARIANTS = ("fp32", "optimized", "int8")
REQUIRED_KEYS = ("fingerprint", "dim", "max_seq_length", "opset", "inputs", "outputs", "tokenizer",
                 "variants", "tasks", "files")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _check_name(name: object, where: str) -> str:
    """File names in a manifest are plain names inside the export folder (no paths, no '..')."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"{where}: {name!r} is not a plain file name inside the export folder")
    return name


@dataclass
class Manifest:
    """A validated manifest and the folder it describes."""

    root: Path
    data: dict

    # ------------------------------------------------------------------ reading
    @classmethod
    def read(cls, root: str | os.PathLike) -> "Manifest":
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"ONNX export folder {root} does not exist")
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is a file; an ONNX export is a folder holding {MANIFEST_NAME}")
        path = root / MANIFEST_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: {root} is not an ONNX export (run `mote-rag export`)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else None
            raise ValueError(f"{path} is not a mote-rag ONNX manifest (format {found!r})")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"{path}: unknown format_version {version!r}; this mote-rag reads version "
                             f"{FORMAT_VERSION} (re-export the model with this version, or upgrade mote-rag)")
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise ValueError(f"{path} lacks required keys {missing}")
        manifest = cls(root, data)
        manifest._validate(path)
        return manifest

    def _validate(self, path: Path) -> None:
        files = self.data["files"]
        if not isinstance(files, dict):
            raise ValueError(f"{path}: 'files' must map file names to sha256")
        for name in files:
            _check_name(name, f"{path} files")
        tok = _check_name(self.data["tokenizer"].get("file"), f"{path} tokenizer")
        if tok not in files:
            raise ValueError(f"{path}: tokenizer file {tok} has no sha256 in 'files'")
        if not self.data["tasks"]:
            raise ValueError(f"{path} lists no task")
        for task, entry in self.data["tasks"].items():
            for variant, graph in entry.get("graphs", {}).items():
                _check_name(graph, f"{path} task {task} variant {variant}")
                if graph not in files:
                    raise ValueError(f"{path}: graph {graph} of task {task} has no sha256 in 'files'")
        self.task_set()  # raises on malformed task entries

    # ------------------------------------------------------------------ views
    @property
    def fingerprint(self) -> str:
        return self.data["fingerprint"]

    @property
    def variants(self) -> list[str]:
        return list(self.data["variants"])

    def variant_fingerprint(self, variant: str) -> str:
        self.check_variant(variant)
        return self.data["variants"][variant]["fingerprint"]

    def check_variant(self, variant: str) -> str:
        if variant not in self.data["variants"]:
            raise ValueError(f"variant {variant!r} is not in {self.root / MANIFEST_NAME}; available: "
                             f"{', '.join(self.variants)} (export with optimize=/quantize= to add more)")
        return variant

    def task_set(self) -> TaskSet:
        tasks = []
        for name, entry in self.data["tasks"].items():
            tasks.append(Task(name=name, prefix=entry.get("prefix", ""),
                              temperature=float(entry.get("temperature", 0.05)),
                              expert=entry.get("expert", name), aliases=tuple(entry.get("aliases", ()))))
        return TaskSet(tasks)

    def graph_name(self, task: str, variant: str) -> str:
        graphs = self.data["tasks"][task]["graphs"]
        if variant not in graphs:
            raise ValueError(f"task {task!r} has no {variant!r} graph in {self.root / MANIFEST_NAME}")
        return graphs[variant]

    def read_verified(self, name: str) -> bytes:
        """The bytes of a listed file, after checking its sha256 (what is hashed is exactly what is loaded)."""
        expected = self.data["files"].get(name)
        if expected is None:
            raise ValueError(f"{name} is not listed in {self.root / MANIFEST_NAME}")
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the export in {self.root} is incomplete")
        data = path.read_bytes()
        actual = sha256_bytes(data)
        if actual != expected:
            raise ValueError(f"{path} failed its integrity check: sha256 {actual[:16]}... but the manifest says "
                             f"{expected[:16]}... (the file was modified or corrupted; re-export)")
        return data
