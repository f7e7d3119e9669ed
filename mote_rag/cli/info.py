"""`mote-rag info PATH`: what a model directory, an exported ONNX directory or an index holds.

Reads only the JSON descriptors (no torch, no graph or index load), so it is instant; `--verify` also checks
the sha256 of every file an ONNX manifest or an index names.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .main import BadInput

DESCRIPTORS = {"mote_config.json": "MoTE model (torch)", "manifest.json": "exported ONNX model",
               "index.json": "FAISS index"}


def register(sub) -> None:
    p = sub.add_parser("info", help="describe a model dir, ONNX export or index",
                       description="Describe what a MoTE model directory, an exported ONNX directory or a FAISS "
                       "index directory holds: tasks, experts, dimensions, fingerprint, files.")
    p.add_argument("path", help="a directory written by train/upcycle, export or index")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--verify", action="store_true", help="check the sha256 of every file the descriptor names")
    p.set_defaults(func=run)


def describe(path: Path, verify: bool = False) -> dict:
    if not path.exists():
        raise BadInput(f"{path} does not exist")
    if not path.is_dir():
        raise BadInput(f"{path} is a file; info expects a model, ONNX or index directory")
    found = [name for name in DESCRIPTORS if (path / name).is_file()]
    if not found:
        raise BadInput(f"{path} holds none of {', '.join(DESCRIPTORS)}: not a mote-rag directory")
    name = found[0]
    try:
        data = json.loads((path / name).read_text())
    except json.JSONDecodeError as exc:
        raise BadInput(f"{path / name} is not valid JSON ({exc.msg})") from None
    summary = {"path": str(path), "kind": DESCRIPTORS[name]}
    if name == "mote_config.json":
        base = data.get("base_config", {})
        summary.update({
            "fingerprint": data.get("fingerprint"), "base_type": base.get("model_type"),
            "layers": base.get("num_hidden_layers"), "dim": base.get("hidden_size"),
            "mote_layers": data.get("mote_layers"), "experts": data.get("experts"),
            "tasks": {t["name"]: {"prefix": t["prefix"], "temperature": t["temperature"], "expert": t["expert"]}
                      for t in data.get("tasks", [])},
            "use_prefixes": data.get("use_prefixes"), "max_seq_length": data.get("max_seq_length"),
        })
        if (path / "train_log.json").is_file():
            summary["training_log"] = str(path / "train_log.json")
    elif name == "manifest.json":
        summary.update({k: data.get(k) for k in ("format_version", "fingerprint", "dim", "max_seq_length", "opset")})
        summary["tasks"] = data.get("tasks")
        summary["files"] = {f: meta.get("bytes") if isinstance(meta, dict) else None
                            for f, meta in (data.get("files") or {}).items()}
        if verify:
            summary["verified"] = _verify(path, {f: (m.get("sha256") if isinstance(m, dict) else m)
                                                 for f, m in (data.get("files") or {}).items()})
    else:
        summary.update({k: data.get(k) for k in ("format_version", "kind", "metric", "dim", "count",
                                                 "document_task", "query_task", "params")})
        summary["encoder"] = data.get("encoder")
        summary["deleted"] = len(data.get("deleted_int_ids") or [])
        if verify:
            summary["verified"] = _verify(path, {data["faiss_file"]: data.get("faiss_sha256")})
    return summary


def _verify(folder: Path, files: dict) -> dict:
    out = {}
    for rel, expected in files.items():
        f = folder / rel
        if not f.is_file():
            out[rel] = "MISSING"
            continue
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        out[rel] = "ok" if digest == expected else "SHA256 MISMATCH"
    return out


def run(args) -> int:
    summary = describe(Path(args.path), verify=args.verify)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for key, value in summary.items():
            if isinstance(value, dict):
                print(f"{key}:")
                for k, v in value.items():
                    print(f"  {k}: {v}")
            else:
                print(f"{key}: {value}")
    bad = [v for v in (summary.get("verified") or {}).values() if v != "ok"]
    return 1 if bad else 0
