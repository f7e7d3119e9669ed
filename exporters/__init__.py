"""Exporters: turn a MoTE model into serving artefacts (installed as `mote_rag.exporters`).

`export_onnx` writes one ONNX graph per expert path (tasks sharing an expert share the file; a dense model
has one graph for all tasks), optionally an offline-optimised and an int8 copy of each, per variant one
all-paths graph that stores the shared trunk once and selects a path's experts by a `path_id` input
(exporters.all_paths: what OnnxEncoder serves several paths from), the tokenizer, the
files fastembed's loader reads (exporters.fastembed_files), and manifest.json last, so a folder with a manifest
is always complete. See mote_rag.runtime.manifest.

Replacing an export is all or nothing: everything is written into a new hidden folder beside `out_dir`
(`.<name>.export-<pid>-<random>`), which is swapped in only once its manifest is written
(mote_rag.atomic.swap_in_directory). An export interrupted at any point (Ctrl-C, SIGKILL, a full disk) leaves the
previous export, and every index built on it, loadable; its leftover folder is removed by the next export. One
export per folder at a time: a lock file `.<name>.lock` beside the folder (mote_rag.atomic.folder_lock), removed
when the export ends. A full or read-only file system is a StorageError naming the folder; the new hidden folder
is removed and the previous export is left as it was.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mote_rag.atomic import (
    as_storage_error,
    check_writable_folder,
    folder_lock,
    make_folder,
    storage_error,
    swap_in_directory,
    write_bytes_atomic,
    write_json_atomic,
)
from mote_rag.model_config import MANIFEST_KEYS
from mote_rag.runtime.manifest import MANIFEST_NAME, OnnxManifest
from mote_rag.schema import sha256_file
from mote_rag.tasks import TaskSet

from .fastembed_files import write_fastembed_files

logger = logging.getLogger(__name__)
TOKENIZER_FILE = "tokenizer.json"
ALL_PATHS_STEM = "all_paths"  # one graph for every path, the trunk stored once (exporters.all_paths)


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


def export_onnx(
    model,
    out_dir: str | os.PathLike,
    tasks: Sequence[str] | None = None,
    optimize: bool = False,
    quantize: bool = False,
    opset: int | None = None,
    check: bool = True,
    calibration_texts: Sequence[str] | None = None,
) -> Path:
    """Export `model` (a MoTEModel) to `out_dir`; returns the folder. `check` compares each graph with torch.

    `calibration_texts` (int8 only): texts whose activations set the smoothing scales; default a fixed sample
    shipped with mote-rag (exporters.calibration).
    """
    from . import onnx_graphs

    opset = opset or onnx_graphs.OPSET
    out = Path(out_dir)
    check_writable_folder(out, "export folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise ValueError(f"{out} is a non-empty folder that is not an ONNX export; export into a new or empty folder")
    groups = graph_groups(model, tasks)  # validates task names before anything is touched
    if quantize:
        from .calibration import check_calibration_texts

        calibration_texts = check_calibration_texts(calibration_texts)
    make_folder(out.parent, "the folder of export folder")
    with folder_lock(out.parent / f".{out.name}.lock", f"export folder {out}"):
        for stale in out.parent.glob(f".{out.name}.export-*"):  # left by killed exports (we hold the lock)
            shutil.rmtree(stale, ignore_errors=True)
        try:
            work = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-{os.getpid()}-", dir=out.parent))
        except OSError as exc:
            raise storage_error(exc, out.parent, f"write the export {out.name}") from None
        try:
            _write_export(model, work, groups, optimize, quantize, opset, check, calibration_texts)
            os.chmod(work, 0o777 & ~_umask())
            swap_in_directory(work, out)
        except BaseException as exc:
            shutil.rmtree(work, ignore_errors=True)
            wrapped = as_storage_error(exc, out.parent, f"write the export {out.name}")
            if wrapped is not exc:
                raise wrapped from exc
            raise
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _write_export(
    model,
    out: Path,
    groups: dict[str, list[str]],
    optimize: bool,
    quantize: bool,
    opset: int,
    check: bool,
    calibration_texts,
) -> None:
    """Write every file of the export into the (new, empty) folder `out`, manifest.json last."""
    import onnxruntime
    import onnxscript
    import torch

    from . import onnx_graphs

    graphs: dict[str, dict[str, str]] = {}
    variants: dict[str, dict] = {"fp32": {"fingerprint": model.fingerprint}}
    max_error = 0.0
    onnx_graphs.export_paths(model, {stem: served[0] for stem, served in groups.items()}, out, opset=opset)
    stems = {stem: {"fp32": f"{stem}.onnx"} for stem in groups}
    for stem, served in groups.items():
        if check:
            max_error = max(max_error, onnx_graphs.check_graph(model, served[0], out / stems[stem]["fp32"]))
        if optimize or quantize:  # int8 is quantised from the fused graph (see exporters.quantize)
            from .optimize import optimize_graph

            optimized = out / f"{stem}.optimized.onnx"
            fusions = optimize_graph(out / stems[stem]["fp32"], optimized)
            stems[stem]["optimized"] = optimized.name
            variants["optimized"] = {
                "fingerprint": model.fingerprint,
                "fusions": fusions,
                "method": "onnxscript ort_fusions (Q/K/V unpacked) + onnxruntime offline ORT_ENABLE_EXTENDED",
            }
    if quantize:
        variants["int8"] = {
            "fingerprint": f"{model.fingerprint}-int8",
            "quantization": {
                **_quantize_paths(model, out, groups, stems, calibration_texts),
                "calibration": "default sample"
                if calibration_texts is None
                else f"{len(calibration_texts)} texts given",
            },
        }
    if not optimize and quantize:  # the fused graphs were only the source of int8
        for files in stems.values():
            (out / files.pop("optimized")).unlink(missing_ok=True)
        variants.pop("optimized", None)
    for variant, entry in variants.items():
        shared = _write_all_paths(out, [files[variant] for files in stems.values()], variant)
        if shared:
            entry["all_paths"] = shared
    for stem, served in groups.items():
        for task in served:
            graphs[task] = stems[stem]
    tok = model.tokenizer
    write_bytes_atomic(out / TOKENIZER_FILE, tok.backend_tokenizer.to_str().encode("utf-8"))
    fastembed_files = write_fastembed_files(model, out)
    shared_files = {
        f for v in variants.values() if "all_paths" in v for f in (v["all_paths"]["file"], v["all_paths"]["data"])
    }
    listed = sorted(
        {f for files in graphs.values() for f in files.values()} | shared_files | {TOKENIZER_FILE, *fastembed_files}
    )
    declared = {k: v for k, v in model.get_config_dict().items() if k in MANIFEST_KEYS}  # the model's own
    exported = TaskSet(model.tasks.get(task) for task in graphs)
    declared["default_task"] = exported.default_task(model.default_task)  # one the export has (`--tasks`)
    manifest = OnnxManifest(
        fingerprint=model.fingerprint,
        dim=model.dim,
        opset=opset,
        exporter={
            **onnx_graphs.EXPORTER,
            "torch": torch.__version__,
            "onnxscript": onnxscript.__version__,
            "onnxruntime": onnxruntime.__version__,
            "max_abs_error_vs_torch": max_error if check else None,
        },
        source=str(model.source),
        architecture="mote" if model.mote_layer_ids else "dense",
        **declared,
        inputs=onnx_graphs.input_names(model),
        outputs={"normalized": onnx_graphs.OUTPUT_NORMALIZED, "pooled": onnx_graphs.OUTPUT_POOLED},
        tokenizer={
            "file": TOKENIZER_FILE,
            "pad_id": int(tok.pad_token_id),
            "pad_token": tok.pad_token,
            "pad_type_id": int(getattr(tok, "pad_token_type_id", 0) or 0),
            "padding_side": tok.padding_side,
            "truncation_side": tok.truncation_side,
        },
        fastembed={
            "files": fastembed_files,
            "pooling": "DISABLED",
            "normalization": False,
            "output_name": onnx_graphs.OUTPUT_NORMALIZED,
        },  # pooling and normalisation are in the graph
        variants=variants,
        tasks={
            task.name: {
                **{k: v for k, v in task.to_dict().items() if k != "name"},
                "graphs": graphs[task.name],
                "path_fingerprint": model.path_fingerprint(task.name),
            }
            for task in exported
        },
        files={name: sha256_file(out / name) for name in listed},
    )
    data = manifest.to_json()
    OnnxManifest.from_json(data, source=out / MANIFEST_NAME)  # what the runtime will accept, checked now
    _before_manifest_hook(out)
    write_json_atomic(out / MANIFEST_NAME, data)


def _quantize_paths(model, out: Path, groups: dict, stems: dict, calibration_texts) -> dict:
    """Write each path's int8 graph, smoothed by channel maxima pooled over every path (exporters.quantize)."""
    import onnx

    from . import onnx_graphs
    from .calibration import calibration_feeds
    from .quantize import input_channel_maxima, pooled_maxima, quantize_graph

    config = model.backbone.config
    names = onnx_graphs.input_names(model)
    per_path = []
    for stem, served in groups.items():
        feeds = calibration_feeds(model, served[0], calibration_texts, names)
        per_path.append(input_channel_maxima(onnx.load(str(out / stems[stem]["optimized"])), feeds))
    maxima = pooled_maxima(per_path)
    settings = {}
    for stem in groups:
        stems[stem]["int8"] = f"{stem}.int8.onnx"
        settings = quantize_graph(
            out / stems[stem]["optimized"],
            out / stems[stem]["int8"],
            config.intermediate_size,
            config.hidden_size,
            maxima=maxima,
        )
    return {**settings, "calibration_pooled_over_paths": len(groups)}


def _write_all_paths(out: Path, graph_files: list[str], variant: str) -> dict | None:
    """The variant's all-paths graph (exporters.all_paths), when the export has several path graphs; returns its
    manifest entry, or None (one path, or graphs that are not one graph up to their weights: logged)."""
    import onnx

    from .all_paths import PATH_INPUT, NotMergeable, merge_path_graphs

    if len(graph_files) < 2:
        return None
    suffix = {"fp32": ".onnx", "optimized": ".optimized.onnx", "int8": ".int8.onnx"}[variant]
    name = f"{ALL_PATHS_STEM}{suffix}"
    try:
        merged = merge_path_graphs({f: onnx.load(str(out / f)) for f in graph_files})
    except NotMergeable as exc:
        logger.warning("no all-paths %s graph: %s; each path is served by its own graph", variant, exc)
        return None
    data = f"{name}.data"  # weights beside the graph: onnxruntime then loads them without a second full copy
    onnx.save(merged, str(out / name), save_as_external_data=True, all_tensors_to_one_file=True, location=data)
    return {"file": name, "data": data, "input": PATH_INPUT, "graphs": list(graph_files)}


def _before_manifest_hook(out: Path) -> None:
    """Test seam, a no-op: every file but the manifest is written (tests replace it to interrupt an export at its
    most delicate moment deterministically)."""
