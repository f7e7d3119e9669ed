"""Reading and writing MoTE model folders (safetensors weights + mote_config.json + tokenizer) and opening dense
transformers checkpoints: the file side of `MoTEModel`, which keeps only what the model computes.

    read_dense(base, ...)           a dense checkpoint -> (backbone, tokenizer, max_seq_length, folder)
    read_pretrained(path)           a saved MoTE folder -> (backbone with its experts, tokenizer, MoTEConfig, folder)
    write_weights_and_config(m, p)  what `read_pretrained` reads: weights, mote_config.json, tokenizer (atomic)
    save_pretrained(m, p, ...)      plus the sentence-transformers files and model card (mote_rag.interop)

Every function takes the model's parts or a MoTEModel-like object; nothing here imports mote_rag.model.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path

from .atomic import atomic_path, write_json_atomic
from .experts import upcycle_layers
from .model_config import CONFIG_NAME, MoTEConfig

WEIGHTS_NAME = "model.safetensors"


@contextmanager
def quiet_transformers():
    """Silence transformers' load report and weight-loading bar (the pooler we drop is expected)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def resolve_dir(name_or_path: str | os.PathLike | None) -> str:
    """A local directory as is; None -> the embedded default; anything else is a hub id."""
    if name_or_path is None:
        from .default_base import embedded_base_path

        return str(embedded_base_path())
    return os.fspath(name_or_path)


def read_max_seq_length(path: str, tokenizer, config) -> int:
    st_config = Path(path) / "sentence_bert_config.json"
    if st_config.is_file():
        value = json.loads(st_config.read_text()).get("max_seq_length")
        if value:
            return int(value)
    limit = getattr(config, "max_position_embeddings", 512)
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        limit -= 2  # positions are offset by padding_idx + 1
    return int(min(tokenizer.model_max_length or limit, limit))


def base_model_name(base) -> str:
    """How a model card names the base: the hub id of the embedded default, else what was passed."""
    if base is None:
        from .default_base import DEFAULT_BASE_HUB_ID

        return DEFAULT_BASE_HUB_ID
    return os.fspath(base)


def read_dense(base, max_seq_length: int | None = None, **from_pretrained_kwargs):
    """(backbone without pooler, tokenizer, max_seq_length, folder) of a dense BERT-family checkpoint (local folder
    or hub id; None = the embedded default). A folder of pickled weights is refused before torch would unpickle it."""
    from transformers import AutoModel, AutoTokenizer

    from .weights import check_safe_weights

    path = resolve_dir(base)
    check_safe_weights(path)
    with quiet_transformers():
        backbone = AutoModel.from_pretrained(path, add_pooling_layer=False, **from_pretrained_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path)
    seq = max_seq_length or read_max_seq_length(path, tokenizer, backbone.config)
    return backbone, tokenizer, seq, path


def read_pretrained(path: str | os.PathLike):
    """(backbone with its experts and weights, tokenizer, MoTEConfig, folder) of a folder `write_weights_and_config`
    wrote (a local directory or a hub id)."""
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    local = Path(path)
    if not local.is_dir():
        if os.path.exists(local):
            raise NotADirectoryError(f"{local} is a file; a MoTE model is a directory")
        from huggingface_hub import snapshot_download

        local = Path(snapshot_download(os.fspath(path)))
    cfg = MoTEConfig.read(local)
    base_cfg = dict(cfg.base_config)
    model_type = base_cfg.pop("model_type")
    config = AutoConfig.for_model(model_type, **base_cfg)
    with quiet_transformers():
        backbone = AutoModel.from_config(config, add_pooling_layer=False)
    upcycle_layers(backbone, cfg.mote_layers, cfg.task_set().experts, rank=cfg.expert_rank)
    state = load_file(str(local / WEIGHTS_NAME))
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise ValueError(
            f"{local / WEIGHTS_NAME} does not match its config: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    backbone.eval()
    with quiet_transformers():  # a portable folder's config.json names its own code: not needed for the tokenizer
        tokenizer = AutoTokenizer.from_pretrained(str(local), trust_remote_code=False)
    return backbone, tokenizer, cfg, local


def write_weights_and_config(model, path: str | os.PathLike) -> None:
    """What `read_pretrained` reads: weights, mote_config.json and the tokenizer (each write atomic)."""
    from safetensors.torch import save_file

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.backbone.state_dict().items()}
    with atomic_path(out / WEIGHTS_NAME) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "mote_fingerprint": model.fingerprint})
    model.tokenizer.save_pretrained(str(out))
    write_json_atomic(out / CONFIG_NAME, model.config().to_json())


def save_pretrained(model, path: str | os.PathLike, evaluation: dict | None = None, portable: bool = False) -> None:
    """`write_weights_and_config`, plus the sentence-transformers files and a README.md model card
    (mote_rag.interop.st_folder); `portable=True` adds the folder's own modeling code (mote_rag.interop.portable)."""
    from .interop.model_card import render
    from .interop.portable import PORTABLE_MODULE, remove_portable_files, write_portable_files
    from .interop.st_folder import MOTE_MODULE, write_st_files

    out = Path(path)
    write_weights_and_config(model, out)
    if portable:
        write_portable_files(model, out)
    else:
        remove_portable_files(out)
    card = render(model, out, evaluation, portable=portable)
    write_st_files(model, out, card, module_type=PORTABLE_MODULE if portable else MOTE_MODULE)
