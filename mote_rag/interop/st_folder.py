"""The sentence-transformers layout of a saved MoTE folder (written without importing sentence-transformers).

    modules.json                       0: MoTETransformer (this folder's root, kwargs ["task"]), 1: Pooling,
                                       2: Normalize
    config_sentence_transformers.json  prompts: every task name and alias -> its prefix ("" when prefixes are off),
                                       so encode_query / encode_document / prompt_name add what mote-rag adds
    1_Pooling/config.json              masked mean, as MoTEModel
    2_Normalize/config.json            L2 normalisation (left out when the model does not normalise)
    README.md                          model card (mote_rag.interop.model_card)

The weights, mote_config.json and the tokenizer stay where `MoTEModel.from_pretrained` reads them, so one folder
opens both ways. `MOTE_MODULE` is the class sentence-transformers imports for module 0.
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_bytes_atomic, write_json_atomic

MOTE_MODULE = "mote_rag.interop.sentence_transformers_module.MoTETransformer"
POOLING = "sentence_transformers.sentence_transformer.modules.pooling.Pooling"
NORMALIZE = "sentence_transformers.base.modules.normalize.Normalize"
ST_FILES = ("modules.json", "config_sentence_transformers.json", "1_Pooling", "2_Normalize", "README.md")


def prompts(model) -> dict[str, str]:
    """Every task name and alias -> the text mote-rag puts in front of it."""
    out = {}
    for task in model.tasks:
        for key in (task.name, *task.aliases):
            out[key] = task.prefix_for(model.use_prefixes)
    return out


def write_st_files(model, path: str | Path, card: str, module_type: str = MOTE_MODULE) -> None:
    """Write the sentence-transformers files of `model` (a MoTEModel) into its saved folder `path`; module 0 is
    `module_type` (mote-rag's class, or the portable folder's own, mote_rag.interop.portable)."""
    out = Path(path)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": module_type, "kwargs": ["task"]},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": POOLING},
    ]
    if model.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": NORMALIZE})
    write_json_atomic(out / "modules.json", modules)
    write_json_atomic(
        out / "config_sentence_transformers.json",
        {
            "model_type": "SentenceTransformer",
            "prompts": prompts(model),
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    )
    (out / "1_Pooling").mkdir(exist_ok=True)
    write_json_atomic(
        out / "1_Pooling" / "config.json",
        {"embedding_dimension": model.dim, "pooling_mode": "mean", "include_prompt": True},
    )
    if model.normalize:
        (out / "2_Normalize").mkdir(exist_ok=True)
        write_json_atomic(
            out / "2_Normalize" / "config.json",
            {"module_input_name": "sentence_embedding", "module_output_name": "sentence_embedding"},
        )
    write_bytes_atomic(out / "README.md", card.encode("utf-8"))
