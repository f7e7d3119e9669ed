"""FaissIndex kinds on 100k x 384 vectors: HNSW and IVF-PQ recall@10 and speed against exact flat search.

Vectors: real all-MiniLM-L6-v2 embeddings (the embedded base, through mote_rag's encode API) of the short
texts in the shared data (Quora questions, MedQuAD and SciFact queries; --real of them, 15k by
default, as 2 shared CPU cores embed ~30 texts/s); 1,000 more, embedded with
the query path, are the queries; the rest, embedded with the document path, are the base set, grown to 100k
with noisy copies (x + N(0, sigma^2 I), renormalised; cosine to the original ~0.95) so the neighbourhoods stay
those of real text. Embeddings are cached under ~/.cache/mote-rag/bench_index (float32 .npy, no pickle).

Reference: exact flat inner-product search, measured in the same run. QPS is measured one query per call
(RAG serving) and in one batch of 1,000, all with the same FAISS thread count. The HNSW efSearch reported is
the smallest in the sweep that reaches recall@10 >= 0.98. Memory is the size of the serialized index.
On a shared machine absolute QPS move with the load; the ratios compare runs made minutes apart.

    python benchmarks/bench_index.py [--n 100000] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

from mote_rag.index.faiss_index import FaissIndex
from mote_rag.readers import default_data_dir, iter_jsonl, resolve_file

N_QUERIES = 1000
NOISE_NORM = 0.33
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200  # the library defaults: M=32, ef_construction=200
EF_SWEEP = (32, 64, 128, 192, 256, 384)
NPROBE_SWEEP = (16, 32, 64)
RECALL_TARGET, QPS_TARGET = 0.98, 10.0


def short_texts() -> list[str]:
    data = default_data_dir()
    texts = [r["text"] for r in iter_jsonl(resolve_file(data / "retrieval/quora_dup/corpus.jsonl"))]
    texts += [r["text"] for r in iter_jsonl(resolve_file(data / "retrieval/medquad/queries.jsonl"))]
    texts += [r["text"] for r in iter_jsonl(resolve_file(data / "retrieval/scifact/queries.jsonl"))]
    return list(dict.fromkeys(t for t in texts if t.strip()))


def real_embeddings(n_real: int) -> tuple[np.ndarray, np.ndarray, dict]:
    from mote_rag.atomic import atomic_path
    from mote_rag.loading import load_encoder

    encoder = load_encoder("base")
    texts = short_texts()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    queries = [texts[i] for i in order[:N_QUERIES]]
    docs = [texts[i] for i in order[N_QUERIES : N_QUERIES + n_real]]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mote-rag" / "bench_index"
    stem = f"{encoder.fingerprint}-{len(texts)}"
    arrays = []
    for name, items, task in (("queries", queries, "search_query"), (f"docs{len(docs)}", docs, "search_document")):
        path = cache / f"{stem}-{name}.npy"
        if path.is_file():
            arrays.append(np.load(path, allow_pickle=False))
            continue
        start = time.perf_counter()
        arr = encoder.encode(items, task=task, batch_size=64, show_progress_bar=True)
        print(f"embedded {len(items)} {name} in {time.perf_counter() - start:.0f}s")
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
        arrays.append(arr)
    q, d = arrays
    source = {
        "encoder": "all-MiniLM-L6-v2 (embedded base, dense, prefixes on)",
        "fingerprint": encoder.fingerprint,
        "texts": "Quora corpus questions + MedQuAD queries + SciFact queries (deduplicated, shuffled)",
        "real_docs": int(len(d)),
        "queries": int(len(q)),
    }
    return q.astype(np.float32), d.astype(np.float32), source


def grow(docs: np.ndarray, n: int, rng) -> np.ndarray:
    """Pad real vectors to n with noisy copies of random real ones (renormalised)."""
    if n <= len(docs):
        return docs[:n]
    extra = n - len(docs)
    base = docs[rng.integers(0, len(docs), size=extra)]
    noise = rng.standard_normal(base.shape).astype(np.float32) * (NOISE_NORM / np.sqrt(docs.shape[1]))
    grown = base + noise
    grown /= np.linalg.norm(grown, axis=1, keepdims=True)
    return np.concatenate([docs, grown]).astype(np.float32)


def recall_at_k(truth: list[list[str]], got: list[list[str]], k: int = 10) -> float:
    return float(np.mean([len(set(t[:k]) & set(g[:k])) / k for t, g in zip(truth, got)]))


def ids_of(results) -> list[list[str]]:
    return [[h.id for h in row] for row in results]


def qps_single(index: FaissIndex, q: np.ndarray, limit_s: float = 6.0, **kw) -> float:
    """Queries per second, one query per call (at least 20 queries, at most ~limit_s seconds)."""
    start = time.perf_counter()
    done = 0
    for row in q:
        index.search_vectors(row, 10, **kw)
        done += 1
        if done >= 20 and time.perf_counter() - start > limit_s:
            break
    return done / (time.perf_counter() - start)


def qps_batch(index: FaissIndex, q: np.ndarray, **kw) -> float:
    start = time.perf_counter()
    index.search_vectors(q, 10, **kw)
    return len(q) / (time.perf_counter() - start)


def serialized_bytes(index: FaissIndex) -> int:
    import faiss

    return int(faiss.serialize_index(index.faiss_index).nbytes)


def sweep_hnsw(hnsw: FaissIndex, q: np.ndarray, truth, flat_single: float, flat_batch: float) -> list[dict]:
    """Recall@10 and QPS (one-at-a-time and batched, also as a ratio to flat) at each ef_search."""
    sweep = []
    for ef in EF_SWEEP:
        rec = recall_at_k(truth, ids_of(hnsw.search_vectors(q, 10, ef_search=ef)))
        single = qps_single(hnsw, q, ef_search=ef)
        batch = qps_batch(hnsw, q, ef_search=ef)
        row = {
            "ef_search": ef,
            "recall_at_10": round(rec, 4),
            "qps_single": round(single, 1),
            "qps_batch": round(batch, 1),
            "qps_ratio_single": round(single / flat_single, 2),
            "qps_ratio_batch": round(batch / flat_batch, 2),
        }
        sweep.append(row)
        print(
            f"hnsw M={HNSW_M} ef={ef}: recall@10 {rec:.4f}, {single:.0f} QPS single ({single / flat_single:.1f}x "
            f"flat), {batch:.0f} QPS batched ({batch / flat_batch:.1f}x)"
        )
    return sweep


def sweep_ivfpq(ivf: FaissIndex, q: np.ndarray, truth, flat_single: float) -> list[dict]:
    """Recall@10 and one-at-a-time QPS (also as a ratio to flat) at each nprobe."""
    ivf_sweep = []
    for nprobe in NPROBE_SWEEP:
        rec = recall_at_k(truth, ids_of(ivf.search_vectors(q, 10, nprobe=nprobe)))
        single = qps_single(ivf, q, nprobe=nprobe)
        ivf_sweep.append(
            {
                "nprobe": nprobe,
                "recall_at_10": round(rec, 4),
                "qps_single": round(single, 1),
                "qps_ratio_single": round(single / flat_single, 2),
            }
        )
        print(f"ivfpq {ivf.params} nprobe={nprobe}: recall@10 {rec:.4f}, {single:.0f} QPS single")
    return ivf_sweep


def main() -> int:
    import faiss

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="base vectors (default 100000)")
    ap.add_argument(
        "--real",
        type=int,
        default=15_000,
        help="real embedded texts in the base set (default 15000; the rest are noisy copies)",
    )
    ap.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads for search (default 1)")
    args = ap.parse_args()

    q, real_docs, source = real_embeddings(args.real)
    rng = np.random.default_rng(1)
    docs = grow(real_docs, args.n, rng)
    ids = [f"d{i}" for i in range(len(docs))]
    dim = docs.shape[1]
    print(f"{len(docs)} x {dim} base vectors ({source['real_docs']} real), {len(q)} queries")

    def build(kind, **params):
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        start = time.perf_counter()
        index = FaissIndex(dim=dim, kind=kind, fingerprint=source["fingerprint"], **params)
        index.add_embeddings(docs, ids)
        took = time.perf_counter() - start
        faiss.omp_set_num_threads(args.threads)
        print(f"built {kind} in {took:.1f}s")
        return index, took

    flat, flat_build = build("flat")
    truth = ids_of(flat.search_vectors(q, 10))
    flat_single = qps_single(flat, q)
    flat_batch = qps_batch(flat, q)
    flat_bytes = serialized_bytes(flat)
    print(f"flat: {flat_single:.0f} QPS one-at-a-time, {flat_batch:.0f} QPS batched, {flat_bytes / 2**20:.1f} MiB")

    hnsw, hnsw_build = build("hnsw", M=HNSW_M, ef_construction=HNSW_EF_CONSTRUCTION)
    sweep = sweep_hnsw(hnsw, q, truth, flat_single, flat_batch)
    chosen = next((r for r in sweep if r["recall_at_10"] >= RECALL_TARGET), None)
    hnsw_bytes = serialized_bytes(hnsw)
    del hnsw

    ivf, ivf_build = build("ivfpq")
    ivf_sweep = sweep_ivfpq(ivf, q, truth, flat_single)
    ivf_bytes = serialized_bytes(ivf)

    passed = bool(chosen and chosen["qps_ratio_single"] >= QPS_TARGET)
    payload = {
        "vectors": {
            "n": len(docs),
            "dim": dim,
            "kind": "real MiniLM embeddings grown with noisy copies",
            "noise_norm": NOISE_NORM,
            **source,
        },
        "reference": "exact flat inner-product search (IndexFlatIP), same run",
        "faiss": faiss.__version__,
        "search_threads": args.threads,
        "flat": {
            "qps_single": round(flat_single, 1),
            "qps_batch": round(flat_batch, 1),
            "bytes": flat_bytes,
            "build_s": round(flat_build, 2),
        },
        "hnsw": {
            "M": HNSW_M,
            "ef_construction": HNSW_EF_CONSTRUCTION,
            "build_s": round(hnsw_build, 1),
            "bytes": hnsw_bytes,
            "bytes_ratio_vs_flat": round(hnsw_bytes / flat_bytes, 3),
            "sweep": sweep,
            "chosen": chosen,
        },
        "ivfpq": {
            "params": ivf.params,
            "build_s": round(ivf_build, 1),
            "bytes": ivf_bytes,
            "bytes_ratio_vs_flat": round(ivf_bytes / flat_bytes, 4),
            "sweep": ivf_sweep,
        },
        "acceptance": {
            "target": f"HNSW recall@10 >= {RECALL_TARGET} at >= {QPS_TARGET}x flat QPS (one query per call)",
            "passed": passed,
        },
    }
    write_result("bench_index", payload)
    if chosen:
        print(
            f"chosen HNSW: M={HNSW_M}, efSearch={chosen['ef_search']}: recall@10 {chosen['recall_at_10']}, "
            f"{chosen['qps_ratio_single']}x flat QPS one-at-a-time ({chosen['qps_ratio_batch']}x batched)"
        )
    recalls = ", ".join(f"nprobe {r['nprobe']}: {r['recall_at_10']}" for r in ivf_sweep)
    print(f"IVF-PQ: {ivf_bytes / 2**20:.1f} MiB = {ivf_bytes / flat_bytes:.3f} of flat; recall@10 {recalls}")
    print("acceptance:", "PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
