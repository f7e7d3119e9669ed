"""Exporters: turn a MoTE model into serving artefacts (installed as `mote_rag.exporters`).

`export_onnx` writes one ONNX graph per expert path (tasks sharing an expert share the file; a dense model
has one graph for all tasks), optionally an offline-optimised and an int8 copy of each, the tokenizer, the
files fastembed's loader reads (exporters.fastembed_files), and manifest.json last, so a folder with a manifest
is always complete. See mote_rag.runtime.manifest.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from mote_rag.atomic import write_bytes_atomic, write_json_atomic
from mote_rag.runtime.manifest import FORMAT, FORMAT_VERSION, MANIFEST_NAME, sha256_file

from .fastembed_files import write_fastembed_files

TOKENIZER_FILE = "tokenizer.json"


def graph_groups(model, tasks: Sequence[str] | None = None) -> dict[str, list[str]]:
    """Graph stem -> task names it serves: one per expert, or 'dense' when the model has no MoTE layer."""
    names = [model.tasks.get(t).name for t in tasks] if tasks else model.tasks.names
    if not names:
        raise ValueError("tasks is empty: pass None to export every task")
    groups: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        stem = model.tasks.get(name).expert if model.mote_layer_ids else "dense"
        groups.setdefault(stem, []).append(name)
    return groups


def export_onnx(model, out_dir: str | os.PathLike, tasks: Sequence[str] | None = None, optimize: bool = False,
                quantize: bool = False, opset: int | None = None, check: bool = True,
                calibration_texts: Sequence[str] | None = None) -> Path:
    """Export `model` (a MoTEModel) to `out_dir`; returns the folder. `check` compares each graph with torch.

    `calibration_texts` (int8 only): texts whose activations set the smoothing scales; default a fixed sample
    shipped with mote-rag (exporters.calibration).
    """
    import onnxruntime
    import onnxscript
    import torch

    from . import onnx_graphs

    opset = opset or onnx_graphs.OPSET
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file; export_onnx writes a folder")
    out.mkdir(parents=True, exist_ok=True)
    groups = graph_groups(model, tasks)  # validates task names before anything is touched
    if quantize:
        from .calibration import check_calibration_texts

        calibration_texts = check_calibration_texts(calibration_texts)
    # an old manifest would vouch for files this export is about to replace: withdraw it first
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    config = model.backbone.config
    graphs: dict[str, dict[str, str]] = {}
    variants: dict[str, dict] = {"fp32": {"fingerprint": model.fingerprint}}
    max_error = 0.0
    onnx_graphs.export_paths(model, {stem: served[0] for stem, served in groups.items()}, out, opset=opset)
    for stem, served in groups.items():
        files = {"fp32": f"{stem}.onnx"}
        if check:
            max_error = max(max_error, onnx_graphs.check_graph(model, served[0], out / files["fp32"]))
        if optimize or quantize:  # int8 is quantised from the fused graph (see exporters.quantize)
            from .optimize import optimize_graph

            optimized = out / (f"{stem}.optimized.onnx" if optimize else f"{stem}.optimized.tmp.onnx")
            fusions = optimize_graph(out / files["fp32"], optimized)
            if optimize:
                files["optimized"] = optimized.name
                variants["optimized"] = {"fingerprint": model.fingerprint, "fusions": fusions,
                                         "method": "onnxscript ort_fusions (Q/K/V unpacked) + onnxruntime offline "
                                                   "ORT_ENABLE_EXTENDED"}
        if quantize:
            from .calibration import calibration_feeds
            from .quantize import quantize_graph

            files["int8"] = f"{stem}.int8.onnx"
            feeds = calibration_feeds(model, served[0], calibration_texts, onnx_graphs.input_names(model))
            try:
                settings = quantize_graph(optimized, out / files["int8"], config.intermediate_size,
                                          config.hidden_size, feeds)
            finally:
                if not optimize:
                    optimized.unlink(missing_ok=True)
            variants["int8"] = {"fingerprint": f"{model.fingerprint}-int8", "quantization": {
                **settings, "calibration": "default sample" if calibration_texts is None
                else f"{len(calibration_texts)} texts given"}}
        for task in served:
            graphs[task] = files
    tok = model.tokenizer
    write_bytes_atomic(out / TOKENIZER_FILE, tok.backend_tokenizer.to_str().encode("utf-8"))
    fastembed_files = write_fastembed_files(model, out)
    listed = sorted({f for files in graphs.values() for f in files.values()} | {TOKENIZER_FILE, *fastembed_files})
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fingerprint": model.fingerprint,
        "dim": model.dim,
        "max_seq_length": model.max_seq_length,
        "opset": opset,
        "exporter": {**onnx_graphs.EXPORTER, "torch": torch.__version__, "onnxscript": onnxscript.__version__,
                     "onnxruntime": onnxruntime.__version__, "max_abs_error_vs_torch": max_error if check else None},
        "source": str(model.source),
        "architecture": "mote" if model.mote_layer_ids else "dense",
        "mote_layers": list(model.mote_layer_ids),
        "pooling": "mean",
        "normalize": bool(model.normalize),
        "use_prefixes": bool(model.use_prefixes),
        "inputs": onnx_graphs.input_names(model),
        "outputs": {"normalized": onnx_graphs.OUTPUT_NORMALIZED, "pooled": onnx_graphs.OUTPUT_POOLED},
        "tokenizer": {"file": TOKENIZER_FILE, "pad_id": int(tok.pad_token_id), "pad_token": tok.pad_token,
                      "pad_type_id": int(getattr(tok, "pad_token_type_id", 0) or 0),
                      "padding_side": tok.padding_side, "truncation_side": tok.truncation_side},
        "fastembed": {"files": fastembed_files, "pooling": "DISABLED", "normalization": False,
                      "output_name": onnx_graphs.OUTPUT_NORMALIZED},  # pooling and normalisation are in the graph
        "variants": variants,
        "tasks": {task: {**_task_entry(model.tasks.get(task)), "graphs": graphs[task]} for task in graphs},
        "files": {name: sha256_file(out / name) for name in listed},
    }
    write_json_atomic(out / MANIFEST_NAME, manifest)
    return out


def _task_entry(task) -> dict:
    return {"prefix": task.prefix, "expert": task.expert, "temperature": task.temperature,
            "aliases": list(task.aliases)}
