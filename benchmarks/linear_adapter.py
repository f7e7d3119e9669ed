"""LlamaIndex's linear query adapter, the baseline of issue 21's comparison: the real `llama-index-finetuning`
(`EmbeddingAdapterFinetuneEngine`, which trains `llama-index-embeddings-adapter`'s `LinearLayer`) driven on the
same (query, passage) pairs, batch size and number of steps as mote-rag's training.

Benchmark-only dependency (not the test suite's):

    .venv/bin/pip install -c constraints.txt -r benchmarks/requirements-bench.txt

How the engine is driven:
- Vectors: the engine embeds every (query, passage) of a batch, one text at a time, through a LlamaIndex
  embedding model. Here that model is `PrecomputedEmbedding`, a BaseEmbedding that looks vectors up: queries from
  the base's search_query path, passages from its search_document path (unchanged: the adapter only moves
  queries), computed once in batches. (`llama_index.embeddings.mote.MoTEEmbedding` over the same model gives the
  same vectors, one forward pass per text per step: minutes instead of seconds.) Vectors are L2-normalised.
- Steps: the engine's DataLoader does not shuffle and takes `relevant_docs[qid][0]` of each query in order, so
  the dataset is built as the exact stream of `steps * batch_size` examples: the pairs in reshuffled epochs
  (seeded), a query or passage text at most once per batch (a repeat would be a false in-batch negative; the
  example waits for the next batch), as mote-rag's sampler draws them. With `epochs=1` the engine then runs
  exactly `steps` batches of `batch_size`, and its own warm-up rule (10% of its steps) is 10% of `steps`, like
  mote-rag's `warmup_ratio` 0.1. `epochs_over_pairs` says how many passes over the pairs that is.
- Loss, optimizer and schedule are the engine's: in-batch multiple-negatives ranking on cosine x 20 (temperature
  0.05), AdamW, linear warm-up and decay, gradient norm clipped at 1, identity start, no bias. `lr` defaults to
  the engine's 2e-5; the identity-started 384x384 layer moves little at that rate in a few hundred steps, so a
  fair comparison should also report a larger one (the smoke run prints what a rate does).

    from benchmarks.linear_adapter import train_linear_adapter
    adapter = train_linear_adapter(pairs, encoder=model, steps=300, batch_size=32, seed=13, lr=1e-3)
    q = adapter(model.encode_query(queries))  # (n, 384) adapted, L2-normalised; documents stay as indexed
    adapter.wall_s, adapter.embed_s, adapter.train_s

Self-check (5 steps on 64 SciFact train pairs; nDCG@10 before/after on 100 SciFact test queries, full corpus):

    .venv/bin/python benchmarks/linear_adapter.py --smoke [--steps 5 --lr 2e-5 --threads 2]
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/linear_adapter.py` from anywhere
    sys.path.insert(0, str(REPO))

ENGINE_DEFAULT_LR = 2e-5  # train_model's optimizer_params default in llama-index-finetuning

VectorsFn = Callable[[list[str]], np.ndarray]


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


@dataclass
class LinearAdapter:
    """The trained adapter: call it on (n, dim) base query vectors to get adapted, L2-normalised ones.

    weight: the LinearLayer's matrix W (the adapted vector is W q); wall_s = embed_s + train_s, where embed_s is
    the time spent computing the pairs' vectors (0 when none were computed here) and train_s the engine's set-up
    and `finetune()`."""

    weight: np.ndarray
    steps: int
    batch_size: int
    lr: float
    seed: int
    pairs: int
    epochs_over_pairs: float
    embed_s: float
    train_s: float
    adapter_dir: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def wall_s(self) -> float:
        return self.embed_s + self.train_s

    def __call__(self, query_vectors: np.ndarray) -> np.ndarray:
        q = np.asarray(query_vectors, dtype=np.float32)
        if q.ndim != 2 or q.shape[1] != self.weight.shape[1]:
            raise ValueError(f"expected (n, {self.weight.shape[1]}) query vectors, got {q.shape}")
        return _normalise(q @ self.weight.T)

    def summary(self) -> dict:
        return {
            "steps": self.steps,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
            "pairs": self.pairs,
            "epochs_over_pairs": round(self.epochs_over_pairs, 3),
            "embed_s": round(self.embed_s, 3),
            "train_s": round(self.train_s, 3),
            "wall_s": round(self.wall_s, 3),
            "weight_change_fro": float(np.linalg.norm(self.weight - np.eye(*self.weight.shape))),
            **self.extra,
        }


def example_stream(pairs: Sequence[tuple[str, str]], steps: int, batch_size: int, seed: int) -> list[tuple[str, str]]:
    """`steps * batch_size` pairs in batch order: reshuffled epochs over `pairs` (seeded); within a batch no query
    and no passage text repeats (a colliding pair is deferred to the next batch, not dropped)."""
    if len(pairs) < batch_size:
        raise ValueError(f"{len(pairs)} pairs cannot fill a batch of {batch_size}")
    rng = random.Random(seed)
    order: list[int] = []
    deferred: deque[int] = deque()
    out: list[tuple[str, str]] = []

    def next_index() -> int:
        if not order:
            order.extend(rng.sample(range(len(pairs)), len(pairs)))
            order.reverse()  # pop() from the end = the permutation's order
        return order.pop()

    for _ in range(steps):
        batch: list[int] = []
        queries: set[str] = set()
        passages: set[str] = set()
        waiting = deque()
        tries = 0
        while len(batch) < batch_size:
            i = deferred.popleft() if deferred else next_index()
            q, p = pairs[i]
            if q in queries or p in passages:
                waiting.append(i)
                tries += 1
                if tries > 4 * len(pairs) + batch_size:
                    raise ValueError(
                        f"cannot fill a batch of {batch_size} without repeating a query or passage: the pairs hold "
                        f"too few distinct texts ({len({q for q, _ in pairs})} queries, "
                        f"{len({p for _, p in pairs})} passages)"
                    )
                continue
            batch.append(i)
            queries.add(q)
            passages.add(p)
        deferred.extend(waiting)
        out.extend(pairs[i] for i in batch)
    return out


def _precomputed_embedding_class():
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr

    class PrecomputedEmbedding(BaseEmbedding):
        """A LlamaIndex embedding model over vectors computed beforehand: queries -> one table, texts -> another.
        An unknown text is an error (it would mean a vector from the wrong path)."""

        _queries: dict = PrivateAttr()
        _texts: dict = PrivateAttr()

        def __init__(self, queries: dict[str, list[float]], texts: dict[str, list[float]], **kwargs):
            super().__init__(model_name="precomputed", **kwargs)
            self._queries, self._texts = queries, texts

        @classmethod
        def class_name(cls) -> str:
            return "PrecomputedEmbedding"

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._queries[query]

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._texts[text]

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._queries[query]

        async def _aget_text_embedding(self, text: str) -> list[float]:
            return self._texts[text]

    return PrecomputedEmbedding


def train_linear_adapter(
    pairs: Sequence[tuple[str, str]],
    query_vectors_fn: VectorsFn | None = None,
    doc_vectors_fn: VectorsFn | None = None,
    *,
    encoder=None,
    steps: int,
    batch_size: int = 32,
    seed: int = 13,
    lr: float = ENGINE_DEFAULT_LR,
    show_progress_bar: bool = False,
    adapter_dir: str | Path | None = None,
) -> LinearAdapter:
    """Train LlamaIndex's linear query adapter on (query, passage) pairs with `EmbeddingAdapterFinetuneEngine`.

    query_vectors_fn / doc_vectors_fn: texts -> (n, dim) vectors of the base's query and document paths; or
    `encoder`, any mote-rag encoder (its encode_query / encode_document). steps, batch_size: as mote-rag's
    training (exactly `steps` batches of `batch_size`). adapter_dir: where the engine saves the layer (default:
    a temporary folder, removed). Returns a `LinearAdapter` (callable on query vectors; wall time inside)."""
    import torch
    from llama_index.finetuning import EmbeddingAdapterFinetuneEngine
    from llama_index.finetuning.embeddings.common import EmbeddingQAFinetuneDataset

    if encoder is not None:
        query_vectors_fn = query_vectors_fn or (lambda t: encoder.encode_query(t, batch_size=64))
        doc_vectors_fn = doc_vectors_fn or (lambda t: encoder.encode_document(t, batch_size=64))
    if query_vectors_fn is None or doc_vectors_fn is None:
        raise ValueError("give query_vectors_fn and doc_vectors_fn, or an encoder")
    if steps < 1 or batch_size < 2:
        raise ValueError(f"steps must be >= 1 and batch_size >= 2, got {steps} and {batch_size}")
    pairs = [(str(q), str(p)) for q, p in pairs]
    stream = example_stream(pairs, steps, batch_size, seed)

    t0 = time.perf_counter()
    queries = list(dict.fromkeys(q for q, _ in pairs))
    passages = list(dict.fromkeys(p for _, p in pairs))
    qv = _normalise(query_vectors_fn(queries))
    dv = _normalise(doc_vectors_fn(passages))
    embed_s = time.perf_counter() - t0
    if qv.shape[0] != len(queries) or dv.shape[0] != len(passages) or qv.shape[1] != dv.shape[1]:
        raise ValueError(f"vector shapes {qv.shape} / {dv.shape} do not match {len(queries)} / {len(passages)} texts")

    t1 = time.perf_counter()
    torch.manual_seed(seed)
    embed_model = _precomputed_embedding_class()(dict(zip(queries, qv.tolist())), dict(zip(passages, dv.tolist())))
    doc_id = {p: f"d{j}" for j, p in enumerate(passages)}
    dataset = EmbeddingQAFinetuneDataset(
        queries={f"q{i}": q for i, (q, _) in enumerate(stream)},
        corpus={doc_id[p]: p for p in passages},
        relevant_docs={f"q{i}": [doc_id[p]] for i, (_, p) in enumerate(stream)},
    )
    with tempfile.TemporaryDirectory(prefix="linear-adapter-") as tmp:
        out_dir = Path(adapter_dir) if adapter_dir else Path(tmp) / "adapter"
        engine = EmbeddingAdapterFinetuneEngine(
            dataset,
            embed_model,
            batch_size=batch_size,
            epochs=1,  # the dataset is already the whole stream of `steps` batches
            dim=qv.shape[1],
            device="cpu",
            model_output_path=str(out_dir),
            verbose=False,
            optimizer_params={"lr": lr},
            show_progress_bar=show_progress_bar,
        )
        if len(engine.loader) != steps:  # the engine's own count must be ours
            raise RuntimeError(f"engine would run {len(engine.loader)} steps, not {steps}")
        engine.finetune()
        weight = engine.model.linear.weight.detach().cpu().numpy().astype(np.float32).copy()
    train_s = time.perf_counter() - t1
    return LinearAdapter(
        weight=weight,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        pairs=len(pairs),
        epochs_over_pairs=steps * batch_size / len(pairs),
        embed_s=embed_s,
        train_s=train_s,
        adapter_dir=str(out_dir) if adapter_dir else None,
        extra={"warmup_steps": engine._warmup_steps},
    )


# ------------------------------------------------------------------------------------------------ the self-check
def _ndcg10(query_vectors: np.ndarray, doc_vectors: np.ndarray, data) -> tuple[float, list[float]]:
    from mote_rag.evaluation.metrics import per_query_metrics
    from mote_rag.evaluation.retrieval import TOP_K, build_run, search

    doc_ids, qids = list(data.corpus), list(data.queries)
    scores, indices = search(query_vectors, doc_vectors, TOP_K)
    per_query = per_query_metrics(data.qrels, build_run(scores, indices, doc_ids, qids, False, TOP_K))
    units = [p["ndcg@10"] for p in per_query]
    return 100 * float(np.mean(units)), units


def smoke(args) -> int:
    import torch

    from mote_rag import MoTEModel
    from mote_rag.evaluation.retrieval import limit_beir
    from mote_rag.readers import default_data_dir, load_beir

    torch.set_num_threads(args.threads)
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # its INFO lines reach the console once imported
    folder = Path(args.data or default_data_dir() / "retrieval/scifact")
    train = load_beir(folder, split="train")
    all_pairs = [
        (train.queries[q], train.corpus[d])
        for q in sorted(train.qrels)
        for d, s in sorted(train.qrels[q].items())
        if s > 0 and q in train.queries
    ]
    pairs = random.Random(args.seed).sample(all_pairs, min(args.pairs, len(all_pairs)))
    test = limit_beir(load_beir(folder, split="test"), args.queries, None, seed=0)

    import llama_index.finetuning  # noqa: F401 - fail now, before the corpus is embedded, if it is not installed

    model = MoTEModel.upcycle(use_prefixes=False)
    doc_vectors, corpus_s = _corpus_vectors(model, test, args.cache)
    base_q = model.encode_query(list(test.queries.values()), batch_size=64)
    before, before_units = _ndcg10(base_q, doc_vectors, test)

    adapter = train_linear_adapter(
        pairs, encoder=model, steps=args.steps, batch_size=args.batch_size, seed=args.seed, lr=args.lr
    )
    after, after_units = _ndcg10(adapter(base_q), doc_vectors, test)
    # the callable is LlamaIndex's own adapted model: check it against AdapterEmbeddingModel on one query
    check = _check_against_llamaindex(adapter, model, next(iter(test.queries.values())))
    diffs = np.array(after_units) - np.array(before_units)
    print(
        f"linear adapter (llama-index-finetuning {_version('llama-index-finetuning')}): {adapter.steps} steps x "
        f"{adapter.batch_size} on {adapter.pairs} SciFact train pairs, lr {adapter.lr:g}, seed {adapter.seed}\n"
        f"  SciFact test, {len(test.queries)} queries over {len(test.corpus)} documents: nDCG@10 before "
        f"{before:.2f}, after {after:.2f} ({after - before:+.2f}; queries changed {int((diffs != 0).sum())})\n"
        f"  adaptation wall time {adapter.wall_s:.2f}s (pair vectors {adapter.embed_s:.2f}s, engine "
        f"{adapter.train_s:.2f}s); corpus embedding (not redone): "
        f"{'cached' if corpus_s is None else f'{corpus_s:.1f}s'} for {len(test.corpus)} docs\n"
        f"  ||W - I||_F = {adapter.summary()['weight_change_fro']:.5f}; max |callable - AdapterEmbeddingModel| "
        f"on one query: {check:.2e}; torch threads {torch.get_num_threads()}"
    )
    if check > 1e-5:
        print("FAIL: the callable does not reproduce AdapterEmbeddingModel", file=sys.stderr)
        return 1
    return 0


def _corpus_vectors(model, data, cache: bool) -> tuple[np.ndarray, float | None]:
    """The base's document vectors of the test corpus, cached in the temp folder by model fingerprint and corpus
    (the document path is what the adapter leaves unchanged); the time is None when they came from the cache."""
    import hashlib

    key = hashlib.sha256("\x00".join([model.fingerprint, *data.corpus]).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"mote-rag-linear-adapter-{data.name}-{key}.npy"
    if cache and path.is_file():
        return np.load(path), None
    t0 = time.perf_counter()
    vectors = model.encode_document(list(data.corpus.values()), batch_size=64, show_progress_bar=True)
    took = time.perf_counter() - t0
    if cache:
        np.save(path, vectors)
    return vectors, took


def _check_against_llamaindex(adapter: LinearAdapter, model, query: str) -> float:
    """Save the adapter as the engine does, open it with AdapterEmbeddingModel over the base's query path, and
    return the largest difference from the callable (after normalising LlamaIndex's unnormalised output)."""
    import torch
    from llama_index.embeddings.adapter import AdapterEmbeddingModel, LinearLayer

    base = _precomputed_embedding_class()({query: model.encode_query([query])[0].tolist()}, {})
    with tempfile.TemporaryDirectory() as tmp:
        layer = LinearLayer(adapter.weight.shape[1], adapter.weight.shape[0])
        with torch.no_grad():
            layer.linear.weight.copy_(torch.from_numpy(adapter.weight))
        layer.save(tmp)
        theirs = np.array([AdapterEmbeddingModel(base, tmp, device="cpu").get_query_embedding(query)], np.float32)
    ours = adapter(model.encode_query([query]))
    return float(np.abs(_normalise(theirs) - ours).max())


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="the self-check on SciFact")
    parser.add_argument("--data", default=None, help="a BEIR folder (default: shared data's retrieval/scifact)")
    parser.add_argument("--pairs", type=int, default=64, help="training pairs sampled (default: 64)")
    parser.add_argument("--queries", type=int, default=100, help="test queries sampled (default: 100)")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=ENGINE_DEFAULT_LR)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--no-cache", dest="cache", action="store_false", help="re-embed the test corpus (default: cached in /tmp)"
    )
    args = parser.parse_args(argv)
    if not args.smoke:
        parser.print_help()
        return 2
    return smoke(args)


if __name__ == "__main__":
    sys.exit(main())
