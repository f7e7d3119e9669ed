"""Golden vectors: the first dimensions of each task path of two known models, on two fixed texts, from the torch
model and from the session's ONNX export (no export of its own).

- `mote_model`, the embedded all-MiniLM-L6-v2 upcycled with its experts untouched: its search_query path is the
  published model on "search_query: " + text. DENSE_QUERY was computed with sentence-transformers itself
  (`SentenceTransformer(base).encode("search_query: " + text, normalize_embeddings=True)[:8]`), not with mote-rag.
- `minilm_mote`, the same with its experts nudged apart (seed 11, 0.02 of each weight's std): one vector per path.
  PATHS were computed with mote-rag at the commit that added this file; a change to tokenisation, prefixes, pooling,
  normalisation, expert routing or the export moves them by far more than the tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TEXTS = ["how do I reset my card?", "Vitamin D deficiency is associated with fractures in older adults."]
DIMS = 8
ATOL = 1e-4  # float32 rounding, thread count and ONNX-vs-torch differences stay below 1e-5

DENSE_QUERY = [
    [0.009914, 0.025608, -0.065712, 0.096668, -0.043995, 0.045039, 0.007073, 0.015429],
    [-0.026053, -0.012832, 0.039170, 0.031546, 0.008007, -0.005291, -0.054737, 0.088197],
]

PATHS = {
    "search_query": [
        [0.008866, 0.027674, -0.064778, 0.097026, -0.044501, 0.045431, 0.007218, 0.015186],
        [-0.025788, -0.012431, 0.038872, 0.033414, 0.006386, -0.003759, -0.055691, 0.089320],
    ],
    "search_document": [
        [-0.015112, 0.039331, -0.046126, 0.076944, -0.015269, 0.037066, -0.045613, 0.047049],
        [-0.022982, -0.014348, 0.041171, 0.027414, 0.006712, -0.009168, -0.056819, 0.093227],
    ],
    "classification": [
        [-0.003388, -0.046473, -0.052552, 0.070124, 0.000953, 0.012061, -0.003115, -0.029114],
        [-0.023810, -0.011121, 0.036926, 0.010109, 0.017718, -0.005279, -0.039729, 0.073930],
    ],
    "clustering": [
        [0.039866, -0.051618, -0.050357, 0.084931, -0.007168, 0.007383, -0.016049, -0.013518],
        [-0.005911, -0.029772, 0.036480, 0.027652, 0.026351, 0.011900, -0.049068, 0.047192],
    ],
}


def test_the_upcycled_base_query_path_is_the_published_model(mote_model):
    got = mote_model.encode(TEXTS, task="search_query")[:, :DIMS]
    np.testing.assert_allclose(got, DENSE_QUERY, atol=ATOL)


@pytest.mark.parametrize("task", list(PATHS))
def test_each_task_path_of_the_nudged_model(minilm_mote, task):
    np.testing.assert_allclose(minilm_mote.encode(TEXTS, task=task)[:, :DIMS], PATHS[task], atol=ATOL)


@pytest.mark.parametrize("task", list(PATHS))
def test_each_task_graph_of_the_session_export(minilm_onnx_dir, task):
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    got = OnnxEncoder(minilm_onnx_dir, tasks=[task]).encode(TEXTS, task=task)[:, :DIMS]
    np.testing.assert_allclose(got, PATHS[task], atol=ATOL)


def test_the_paths_differ_by_more_than_the_tolerance():
    """Otherwise a routing mix-up (one path's graph serving another) would pass the checks above."""
    for a in PATHS:
        for b in PATHS:
            if a < b:
                assert np.abs(np.subtract(PATHS[a], PATHS[b])).max() > 100 * ATOL, (a, b)
