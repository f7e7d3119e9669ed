"""Torch or onnxruntime for a torch model on this CPU: measured once per CPU family, then remembered.

Which backend is faster depends on the CPU, not on the weights. On an Intel Xeon with AMX and AVX-512 VNNI, torch 2.13
runs MiniLM's fp32 path faster than onnxruntime 1.31 (0.87x-0.94x for ONNX, benchmarks/results/bench_onnx.json); on
the CPU of the README's earlier table, onnxruntime was 1.66x faster. So `backend="auto"` times both on the caller's
own texts the first time it sees a CPU family (model name and SIMD family), library versions, thread count and model
architecture, stores the figures in `$MOTE_RAG_CACHE/backend_choice.json` (default `~/.cache/mote-rag`), and reuses
them after.

The ONNX side is the model's fp32 export, fused ("optimized" variant), kept in `$MOTE_RAG_CACHE/onnx/<fingerprint>`:
the same function (checked against torch at export) and the same fingerprint, so an index built through either
backend is searched through the other. int8 is never chosen here: it changes the vectors (its fingerprint says so).
Where torch is absent, open the export with `OnnxEncoder`: that path needs no choice.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from .atomic import folder_lock, make_folder, write_json_atomic
from .runtime.cpu import cpu_family
from .schema import read_json_file

logger = logging.getLogger(__name__)

__all__ = ["BACKENDS", "CACHE_ENV", "cache_dir", "choice_key", "measure_backends", "onnx_twin", "serving_encoder"]

BACKENDS = ("auto", "torch", "onnx")
CACHE_ENV = "MOTE_RAG_CACHE"
CHOICE_FILE = "backend_choice.json"
SAMPLE_TEXTS = 64  # texts timed per backend and round: two batches of 32, enough to rank them, a few seconds
ROUNDS = 2  # interleaved, so a burst of other work slows both
# onnxruntime is chosen only when it is clearly faster on the sample: 64 texts time to a few per cent, and where it
# wins it wins by far (1.66x on the README's earlier CPU), while a near tie is where noise would pick the slower one
# (here the sample said 0.97x and the whole 1,000-text corpus 0.83x: benchmarks/results/bench_backend.json)
ONNX_MARGIN = 1.05


def cache_dir() -> Path:
    """$MOTE_RAG_CACHE, else ~/.cache/mote-rag (exports and the recorded choices)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mote-rag")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def choice_key(model) -> str:
    """What the speed ranking depends on: CPU family, onnxruntime and torch versions, threads, architecture."""
    config = model.backbone.config
    arch = f"{config.model_type} {config.num_hidden_layers}x{config.hidden_size}"
    return (
        f"{cpu_family()} | onnxruntime {_version('onnxruntime')} | torch {_version('torch')} | "
        f"{_threads()} threads | {arch}"
    )


def onnx_twin(model, show_progress: bool = False):
    """The model's fp32 ONNX export (fused variant) from the cache, exported there first if missing."""
    from .runtime.onnx_encoder import OnnxEncoder

    folder = make_folder(cache_dir() / "onnx", "mote-rag cache folder") / model.fingerprint
    if not (folder / "manifest.json").is_file():
        if show_progress:
            print(f"exporting the model to ONNX once, into {folder}", file=sys.stderr, flush=True)
        model.export_onnx(folder, optimize=True)  # atomic and locked; checked against torch
    twin = OnnxEncoder(folder, threads=_threads())  # its default variant: the fused graphs
    if twin.fingerprint != model.fingerprint:
        raise ValueError(
            f"{folder} holds an export of another model (fingerprint {twin.fingerprint}, wanted {model.fingerprint}); "
            "remove the folder"
        )
    return twin


def _sample(texts: Sequence[str]) -> list[str]:
    """Up to SAMPLE_TEXTS texts spread over the corpus (its lengths, not just its first rows)."""
    step = max(1, len(texts) // SAMPLE_TEXTS)
    return list(texts[::step][:SAMPLE_TEXTS])


def measure_backends(model, twin, texts: Sequence[str], task: str, batch_size: int = 32) -> dict:
    """Texts per second of torch and onnxruntime on the same sample, interleaved rounds after one warm-up batch."""
    sample = _sample(texts)
    if not sample:
        raise ValueError("no texts to time the backends on")
    encoders = {"torch": model, "onnx": twin}
    for encoder in encoders.values():
        encoder.encode(sample[:batch_size], task=task, batch_size=batch_size)
    seconds = dict.fromkeys(encoders, 0.0)
    for r in range(ROUNDS):
        for name in list(encoders)[:: 1 if r % 2 == 0 else -1]:
            start = time.perf_counter()
            encoders[name].encode(sample, task=task, batch_size=batch_size)
            seconds[name] += time.perf_counter() - start
    rate = {name: ROUNDS * len(sample) / s for name, s in seconds.items()}
    return {
        "torch_texts_per_s": round(rate["torch"], 1),
        "onnx_texts_per_s": round(rate["onnx"], 1),
        "onnx_vs_torch": round(rate["onnx"] / rate["torch"], 3),
        "texts": len(sample),
        "rounds": ROUNDS,
        "backend": "onnx" if rate["onnx"] >= ONNX_MARGIN * rate["torch"] else "torch",
    }


def _recorded(path: Path) -> dict:
    return read_json_file(path, "backend choice") if path.is_file() else {}


def serving_encoder(
    model, texts: Sequence[str], task: str, backend: str = "auto", batch_size: int = 32, show_progress: bool = False
):
    """(encoder, record): `model` itself or its ONNX twin, whichever `backend` says ("auto": the faster one here).

    The record says which, why ("measured now", "recorded" or "asked"), and the figures behind an automatic choice.
    Where the cache cannot be written, auto keeps torch and its record says so (the CLI prints it).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if backend == "torch":
        return model, {"backend": "torch", "reason": "asked"}
    if backend == "onnx":
        return onnx_twin(model, show_progress), {"backend": "onnx", "reason": "asked"}
    key = choice_key(model)
    path = cache_dir() / CHOICE_FILE
    entry = _recorded(path).get(key)
    if entry is None:
        try:
            twin = onnx_twin(model, show_progress)
        except OSError as exc:  # a read-only or full cache: torch still embeds, and the record says why
            return model, {"backend": "torch", "reason": f"no ONNX export to time against ({exc})"}
        entry = {**measure_backends(model, twin, texts, task, batch_size), "measured": _now()}
        reason = "measured now"
        try:
            with folder_lock(cache_dir() / f".{CHOICE_FILE}.lock", "backend choice file"):
                choices = _recorded(path)
                choices[key] = entry
                write_json_atomic(path, choices)
        except OSError as exc:
            reason = f"measured now, not recorded ({exc})"
        logger.info("backend choice for %s: %s", key, entry)
        record = {**entry, "reason": reason, "key": key, "file": str(path)}
        return (twin if entry["backend"] == "onnx" else model), record
    if entry.get("backend") not in ("torch", "onnx"):
        raise ValueError(f"{path}: the entry for {key!r} names no backend; remove the file to measure again")
    record = {**entry, "reason": "recorded", "key": key, "file": str(path)}
    return (onnx_twin(model, show_progress) if entry["backend"] == "onnx" else model), record


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
