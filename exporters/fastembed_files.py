"""The files fastembed's tokenizer loader reads beside tokenizer.json (fastembed.common.preprocessor_utils):

- tokenizer_config.json: `model_max_length` (fastembed truncates at it, so it is the model's max_seq_length, not
  the base tokenizer's 512), the pad token, padding and truncation sides;
- config.json: `pad_token_id` (fastembed's pad id when tokenizer.json carries no padding settings) and the
  embedding size, for readers that look for it.

With them, every task graph of an export opens with fastembed's `TextEmbedding.add_custom_model` and
`specific_model_path` (see mote_rag.runtime.fastembed_models) and tokenizes exactly as OnnxEncoder does.
"""

from __future__ import annotations

from pathlib import Path

from mote_rag.atomic import write_json_atomic

TOKENIZER_CONFIG = "tokenizer_config.json"
CONFIG = "config.json"


def write_fastembed_files(model, out: Path) -> list[str]:
    """Write the files into the export folder `out`; returns their names (for the manifest's sha256 list)."""
    tok = model.tokenizer
    write_json_atomic(
        out / TOKENIZER_CONFIG,
        {
            "model_max_length": int(model.max_seq_length),
            "pad_token": tok.pad_token,
            "padding_side": tok.padding_side,
            "truncation_side": tok.truncation_side,
            "tokenizer_class": type(tok).__name__,
        },
    )
    write_json_atomic(
        out / CONFIG,
        {
            "pad_token_id": int(tok.pad_token_id),
            "hidden_size": int(model.dim),
            "model_type": model.backbone.config.model_type,
            "mote_rag": "config for fastembed's tokenizer loader; see manifest.json",
        },
    )
    return [TOKENIZER_CONFIG, CONFIG]
