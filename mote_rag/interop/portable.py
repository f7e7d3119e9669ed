"""A portable MoTE folder: `MoTEModel.save_pretrained(dir, portable=True)` also writes the modeling code the folder
needs, as trust_remote_code repositories (jina-embeddings-v3, nomic-embed) do, so that it opens where mote-rag is
not installed:

    modeling_mote.py     a verbatim copy of mote_rag/interop/portable_modeling.py (imports: torch, transformers
                         and the standard library only): MoTEConfig, MoTEForEmbedding, MoTESentenceTransformer
    config.json          model_type "mote", auto_map {AutoConfig, AutoModel} -> modeling_mote, the base transformer's
                         config and the task paths (tasks, experts, layers, prefixes, pooling, default task)
    modules.json         module 0 is modeling_mote.MoTESentenceTransformer (then Pooling(mean), Normalize)

    AutoModel.from_pretrained(dir), trust_remote_code=True          -> MoTEForEmbedding (forward(..., task=))
    SentenceTransformer(dir, trust_remote_code=True)                -> encode_query / encode_document / task=

The weights, mote_config.json and the tokenizer are the ones `MoTEModel.from_pretrained` reads: one folder opens
all three ways, with the same vectors.
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_bytes_atomic, write_json_atomic

MODELING_FILE = "modeling_mote.py"
SOURCE = Path(__file__).with_name("portable_modeling.py")
PORTABLE_MODULE = "modeling_mote.MoTESentenceTransformer"
AUTO_MAP = {"AutoConfig": "modeling_mote.MoTEConfig", "AutoModel": "modeling_mote.MoTEForEmbedding"}
PORTABLE_FILES = (MODELING_FILE, "config.json")


def portable_config(model) -> dict:
    """config.json of the portable folder of `model` (a MoTEModel)."""
    import transformers

    mote = model.config().to_json()
    return {
        "architectures": ["MoTEForEmbedding"],
        "auto_map": dict(AUTO_MAP),
        "model_type": "mote",
        "base_config": mote["base_config"],
        "tasks": mote["tasks"],
        "experts": mote["experts"],
        "mote_layers": mote["mote_layers"],
        "expert_rank": mote["expert_rank"],
        "use_prefixes": mote["use_prefixes"],
        "normalize": mote["normalize"],
        "max_seq_length": mote["max_seq_length"],
        "default_task": mote["default_task"],
        "hidden_size": model.dim,
        "mote_fingerprint": mote["fingerprint"],
        "mote_base_model": mote["base_model"],
        "transformers_version": transformers.__version__,
    }


def write_portable_files(model, path: str | Path) -> None:
    """Write modeling_mote.py and config.json into `model`'s saved folder `path` (modules.json names the module)."""
    out = Path(path)
    write_bytes_atomic(out / MODELING_FILE, SOURCE.read_bytes())
    write_json_atomic(out / "config.json", portable_config(model))


def remove_portable_files(path: str | Path) -> None:
    """Remove the portable files an earlier `portable=True` save left in `path` (a plain save would otherwise leave
    a config.json describing older weights)."""
    import json

    out = Path(path)
    config = out / "config.json"
    try:
        stale = json.loads(config.read_text(encoding="utf-8")).get("auto_map") == AUTO_MAP
    except (OSError, ValueError, AttributeError):
        stale = False
    if stale:
        for name in PORTABLE_FILES:
            (out / name).unlink(missing_ok=True)
