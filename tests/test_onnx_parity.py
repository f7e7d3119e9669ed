"""Real-model parity of the ONNX export (MiniLM-L6 upcycled, experts made distinct) on 120 real texts.

fp32 vs torch cosine >= 0.99999 per row and int8 >= 0.99 per row on every task path; token ids identical to
the HF tokenizer; SciFact nDCG@10 with int8 within 1 point of fp32 on a subset (the full set is in
benchmarks/bench_onnx.py).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from mote_rag.runtime.onnx_encoder import OnnxEncoder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def real_texts(data_dir):
    """120 real texts, 30 each: claims, intents, news and abstracts (the long ones truncated at 256 tokens)."""
    from mote_rag.readers import corpus_text, read_jsonl

    sources = [
        [r["text"] for r in read_jsonl(data_dir / "retrieval/scifact/queries.jsonl")],
        [r["text"] for r in read_jsonl(data_dir / "classification/banking77/test.jsonl")],
        [r["text"] for r in read_jsonl(data_dir / "clustering/ag_news/test.jsonl")],
        [corpus_text(r) for r in read_jsonl(data_dir / "retrieval/scifact/corpus.jsonl")],
    ]
    rng = random.Random(5)
    return [t for src in sources for t in rng.sample(src, 30)]


@pytest.fixture(scope="session")
def torch_vectors(minilm_mote, real_texts):
    return {task: minilm_mote.encode(real_texts, task=task, batch_size=32) for task in minilm_mote.tasks.names}


def test_token_ids_equal_the_hf_tokenizer(minilm_mote, minilm_onnx_dir, real_texts):
    enc = OnnxEncoder(minilm_onnx_dir)
    assert enc.max_seq_length == minilm_mote.max_seq_length == 256
    for task in ("search_query", "clustering"):
        prepared = minilm_mote.prepare_texts(real_texts, task)
        assert prepared == enc.prepare_texts(real_texts, task)
        hf = minilm_mote.tokenizer(prepared, padding=True, truncation=True, max_length=256, return_tensors="np")
        ours = enc.tokenize(prepared)
        assert ours["input_ids"].shape[1] == 256  # some abstracts are truncated
        for key in ("input_ids", "attention_mask", "token_type_ids"):
            np.testing.assert_array_equal(ours[key], hf[key])


def test_fp32_and_int8_match_torch_on_every_task_path(minilm_mote, minilm_onnx_dir, real_texts, torch_vectors):
    fp32, int8 = OnnxEncoder(minilm_onnx_dir, threads=2), OnnxEncoder(minilm_onnx_dir, variant="int8", threads=2)
    worst = {}
    for task in minilm_mote.tasks.names:
        expected = torch_vectors[task]
        got = fp32.encode(real_texts, task=task, batch_size=24)  # other batch boundaries than torch's 32
        cos = (got * expected).sum(1)
        assert cos.min() >= 0.99999, (task, cos.min())
        quant = (int8.encode(real_texts, task=task, batch_size=32) * expected).sum(1)
        assert quant.min() >= 0.99, (task, quant.min())
        worst[task] = (float(cos.min()), float(quant.min()))
    # the four paths really are different functions, so the per-path parity above is four separate checks
    q, d = torch_vectors["search_query"], torch_vectors["search_document"]
    assert (q * d).sum(1).min() < 0.9999
    print("worst row cosine (fp32, int8) per task:", worst)


def test_scifact_ndcg_int8_within_one_point_of_fp32(minilm_onnx_dir, data_dir):
    from conftest import ranx_scores
    from mote_rag.readers import load_beir

    data = load_beir(data_dir / "retrieval" / "scifact", split="test")
    rng = random.Random(0)
    qids = sorted(rng.sample(sorted(data.queries), 120))
    relevant = sorted({d for q in qids for d in data.qrels[q]})
    others = rng.sample(sorted(set(data.corpus) - set(relevant)), 400 - len(relevant))
    dids = relevant + others
    qrels = {q: data.qrels[q] for q in qids}
    scores = {}
    for variant in ("fp32", "int8"):
        enc = OnnxEncoder(minilm_onnx_dir, variant=variant, threads=2)
        sims = enc.encode_query([data.queries[q] for q in qids]) @ enc.encode_document([data.corpus[d] for d in dids]).T
        top = np.argsort(-sims, axis=1)[:, :10]
        run = {q: {dids[j]: float(sims[i, j]) for j in top[i]} for i, q in enumerate(qids)}
        scores[variant] = 100 * ranx_scores(qrels, run)["ndcg@10"]
    assert scores["fp32"] > 50  # a real retrieval result, not noise
    assert abs(scores["int8"] - scores["fp32"]) <= 1.0, scores


RSS_CHILD = """
import sys
from mote_rag import OnnxEncoder
path, variant, tasks = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
enc = OnnxEncoder(path, variant=variant, tasks=tasks, threads=2)
texts = ["a sentence of moderate length for the memory probe " * 8] * 32
for task in tasks:
    enc.encode(texts, task=task, batch_size=32)
assert "torch" not in sys.modules
# VmHWM: this process's own peak RSS (ru_maxrss would report the forking parent's peak, which survives exec)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_every_path_in_one_process_costs_at_most_a_quarter_more_than_one(minilm_onnx_dir, variant):
    """One trunk in memory: serving all four paths (the all-paths graph) peaks within 1.25x of serving one path
    alone. Four per-path sessions peaked at ~3x (onnxruntime copies every weight into each session)."""
    import subprocess
    import sys

    def peak_kib(tasks: list[str]) -> int:
        out = subprocess.run(
            [sys.executable, "-c", RSS_CHILD, str(minilm_onnx_dir), variant, ",".join(tasks)],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "TOKENIZERS_PARALLELISM": "false"},
        )
        return int(out.stdout.split()[-1])

    tasks = ["search_query", "search_document", "classification", "clustering"]
    one, every = peak_kib(tasks[:1]), peak_kib(tasks)
    assert every <= 1.25 * one, (variant, one // 1024, every // 1024)
