"""`mote-rag info PATH`: what a model directory, an exported ONNX directory, an index or a shard set holds.

Reads only the JSON descriptors, through their declared schemas (no torch, no graph or index load), so it is
instant and refuses a malformed descriptor with the file and field named; `--verify` also checks the sha256 of
every file a descriptor names.
"""

from __future__ import annotations

import json
from pathlib import Path

from .main import BadInput

DESCRIPTORS = {
    "mote_config.json": "MoTE model (torch)",
    "manifest.json": "exported ONNX model",
    "index.json": "FAISS index",
    "shards.json": "FAISS shard set",
}


def register(sub) -> None:
    p = sub.add_parser(
        "info",
        help="describe a model dir, ONNX export, index or shard set",
        description="Describe what a MoTE model directory, an exported ONNX directory or a FAISS "
        "index directory (or shard set) holds: tasks, experts, dimensions, fingerprint, files.",
    )
    p.add_argument("path", help="a directory written by train/upcycle, export or index")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--verify", action="store_true", help="check the sha256 of every file the descriptor names")
    p.set_defaults(func=run)


def describe(path: Path, verify: bool = False) -> dict:
    if not path.exists():
        raise BadInput(f"{path} does not exist")
    if not path.is_dir():
        raise BadInput(f"{path} is a file; info expects a model, ONNX, index or shard-set directory")
    found = [name for name in DESCRIPTORS if (path / name).is_file()]
    if not found:
        raise BadInput(f"{path} holds none of {', '.join(DESCRIPTORS)}: not a mote-rag directory")
    name = found[0]
    summary = {"path": str(path), "kind": DESCRIPTORS[name]}
    describe_one = {
        "mote_config.json": _model,
        "manifest.json": _export,
        "index.json": _index,
        "shards.json": _shard_set,
    }[name]
    summary.update(describe_one(path, verify))
    return summary


def _model(path: Path, _verify: bool) -> dict:  # no checksums to verify: a model folder has no manifest
    from mote_rag.model_config import MoTEConfig

    cfg = MoTEConfig.read(path)
    out = {
        "fingerprint": cfg.fingerprint,
        "base_type": cfg.model_type,
        "layers": cfg.num_layers,
        "dim": cfg.dim,
        "mote_layers": cfg.mote_layers,
        "experts": list(cfg.task_set().experts),
        "tasks": {
            t.name: {"prefix": t.prefix, "temperature": t.temperature, "expert": t.expert} for t in cfg.task_set()
        },
        "use_prefixes": cfg.use_prefixes,
        "max_seq_length": cfg.max_seq_length,
        "expert_rank": cfg.expert_rank,
        "default_task": cfg.default_task,
        "base_model": cfg.base_model,
    }
    if (path / "train_log.json").is_file():
        out["training_log"] = str(path / "train_log.json")
    return out


def _export(path: Path, verify: bool) -> dict:
    from mote_rag.runtime.manifest import FORMAT_VERSION, Manifest

    manifest = Manifest.read(path)
    spec = manifest.spec
    out = {
        "format_version": FORMAT_VERSION,
        "fingerprint": spec.fingerprint,
        "dim": spec.dim,
        "max_seq_length": spec.max_seq_length,
        "opset": spec.opset,
        "architecture": spec.architecture,
        "use_prefixes": spec.use_prefixes,
        "normalize": spec.normalize,
        "variants": {v: e["fingerprint"] for v, e in spec.variants.items()},
        "tasks": {
            t: {"prefix": e.get("prefix", ""), "expert": e.get("expert", t), "graphs": e["graphs"]}
            for t, e in spec.tasks.items()
        },
        "files": {f: _file_entry(path / f, digest) for f, digest in spec.files.items()},
    }
    if verify:
        out["verified"] = manifest.verify_files()
    return out


def _file_entry(path: Path, digest: str) -> dict:
    return {"bytes": path.stat().st_size if path.is_file() else None, "sha256": digest}


def _index(path: Path, verify: bool) -> dict:
    from mote_rag.index.header import FORMAT_VERSION, IndexHeader

    h = IndexHeader.read(path)
    out = {
        "format_version": FORMAT_VERSION,
        "index_kind": h.kind,
        "metric": "inner_product",
        "dim": h.dim,
        "count": h.count,
        "document_task": h.document_task,
        "query_task": h.query_task,
        "params": h.params,
        "encoder": h.encoder,
        "store_text": h.store_text,
        "deleted": len(h.deleted_int_ids),
        "files": {h.faiss_file: {"bytes": h.faiss_bytes, "sha256": h.faiss_sha256}},
    }
    if verify:
        out["verified"] = _verify(path, {h.faiss_file: h.faiss_sha256})
    return out


def _shard_set(path: Path, verify: bool) -> dict:
    from mote_rag.index.shard_manifest import SHARD_SET_VERSION, ShardManifest

    m = ShardManifest.read(path)
    out = {
        "format_version": SHARD_SET_VERSION,
        "index_kind": m.kind,
        "dim": m.dim,
        "count": m.count,
        "num_shards": m.num_shards,
        "document_task": m.document_task,
        "query_task": m.query_task,
        "encoder": m.encoder,
        "shards": {s.path: {"count": s.count, "faiss_sha256": s.faiss_sha256} for s in m.shards},
        "build": m.build,
    }
    if verify:
        out["verified"] = {s.path: _verify_shard(path, s) for s in m.shards}
    return out


def _verify_shard(root: Path, entry) -> str:
    from mote_rag.index.header import IndexHeader

    try:
        h = IndexHeader.read(root / entry.path)
    except (OSError, ValueError) as exc:
        return f"UNREADABLE ({exc})"
    if h.faiss_sha256 != entry.faiss_sha256 or h.count != entry.count:
        return "DIFFERS FROM shards.json"
    return _verify(root / entry.path, {h.faiss_file: h.faiss_sha256})[h.faiss_file]


def _verify(folder: Path, files: dict) -> dict:
    from mote_rag.schema import sha256_file

    out = {}
    for rel, expected in files.items():
        f = folder / rel
        if not f.is_file():
            out[rel] = "MISSING"
            continue
        out[rel] = "ok" if sha256_file(f) == expected else "SHA256 MISMATCH"
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
