"""Calibration texts for int8 smoothing: which channels of each activation run large.

The scales only need the shape of each channel's range, which is a property of the model more than of the
domain, so a small fixed sample serves: `mote_rag/data/calibration.jsonl`, 64 short questions then 64 long
answers taken from the MedQuAD sample (CC BY 4.0; source and changes in mote_rag/data/quickstart/README.md).
Pass your own texts to `export_onnx(..., calibration_texts=...)` to calibrate on your corpus.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

import mote_rag.data
from mote_rag.inputs import check_text_list

CALIBRATION_FILE = Path(mote_rag.data.__file__).resolve().parent / "calibration.jsonl"
DEFAULT_COUNT = 64
BATCH_SIZE = 16


def default_calibration_texts(count: int = DEFAULT_COUNT) -> list[str]:
    """`count` short questions, then `count` long answers, from the shipped calibration sample."""
    from mote_rag.readers import read_jsonl

    rows = read_jsonl(CALIBRATION_FILE, ("kind", "text"))
    texts = [r["text"] for r in rows if r["kind"] == "question"][:count]
    texts += [r["text"] for r in rows if r["kind"] == "answer"][:count]
    return check_text_list(texts, str(CALIBRATION_FILE))


def check_calibration_texts(texts: Sequence[str] | None) -> list[str] | None:
    """None (use the default sample) or a non-empty list of strings; anything else is a ValueError."""
    if texts is None:
        return None
    try:
        texts = check_text_list(texts, "calibration_texts")
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    if not texts:
        raise ValueError("calibration_texts must be a non-empty list of strings")
    return texts


def calibration_feeds(
    model, task: str, texts: Sequence[str] | None = None, input_names: Sequence[str] = ("input_ids", "attention_mask")
) -> Iterator[dict]:
    """Graph inputs for `texts` on `task`'s path: its prefix applied, the model's tokenizer and max length."""
    texts = model.prepare_texts(check_calibration_texts(texts) or default_calibration_texts(), task)
    for start in range(0, len(texts), BATCH_SIZE):
        batch = model.tokenizer(
            texts[start : start + BATCH_SIZE],
            padding=True,
            truncation=True,
            max_length=model.max_seq_length,
            return_tensors="np",
        )
        yield {name: np.asarray(batch[name], dtype=np.int64) for name in input_names}
