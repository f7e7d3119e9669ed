"""Calibration texts for int8 smoothing: which channels of each activation run large.

The scales only need the shape of each channel's range, which is a property of the model more than of the
domain, so a small fixed sample serves: by default 64 questions and 64 answers of the MedQuAD sample shipped
for the quickstart (CC BY 4.0, see mote_rag/data/quickstart/README.md). Pass your own texts to
`export_onnx(..., calibration_texts=...)` to calibrate on your corpus.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

DEFAULT_COUNT = 64
BATCH_SIZE = 16


def default_calibration_texts(count: int = DEFAULT_COUNT) -> list[str]:
    """`count` short questions and `count` long answers from the shipped quickstart sample."""
    from mote_rag.datasets import corpus_text, read_jsonl
    from mote_rag.quickstart import SAMPLE_DIR

    questions = [r["text"] for r in read_jsonl(SAMPLE_DIR / "classification" / "train.jsonl", ("text",))]
    answers = [corpus_text(r) for r in read_jsonl(SAMPLE_DIR / "retrieval" / "corpus.jsonl")]
    return questions[:count] + answers[:count]


def check_calibration_texts(texts: Sequence[str] | None) -> list[str] | None:
    """None (use the default sample) or a non-empty list of strings; anything else is a ValueError."""
    if texts is None:
        return None
    if isinstance(texts, str):
        raise ValueError("calibration_texts must be a list of strings, not one string")
    texts = list(texts)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("calibration_texts must be a non-empty list of strings")
    return texts


def calibration_feeds(model, task: str, texts: Sequence[str] | None = None,
                      input_names: Sequence[str] = ("input_ids", "attention_mask")) -> Iterator[dict]:
    """Graph inputs for `texts` on `task`'s path: its prefix applied, the model's tokenizer and max length."""
    texts = check_calibration_texts(texts) or default_calibration_texts()
    prefix = model.tasks.get(task).prefix if model.use_prefixes else ""
    for start in range(0, len(texts), BATCH_SIZE):
        batch = model.tokenizer([prefix + t for t in texts[start:start + BATCH_SIZE]], padding=True,
                                truncation=True, max_length=model.max_seq_length, return_tensors="np")
        yield {name: np.asarray(batch[name], dtype=np.int64) for name in input_names}
