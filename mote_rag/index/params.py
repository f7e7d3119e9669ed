"""Per-kind index options: their defaults, their valid ranges (checked before any work), and the FAISS index each
kind builds.

    flat   IndexIDMap2(IndexFlatIP): exact
    hnsw   IndexIDMap2(IndexHNSWFlat, inner product): M=32, ef_construction=200, ef_search=256 (on 100k x 384
           MiniLM-based vectors, benchmarks/bench_index.py: ef 128 -> recall@10 0.984 at 29x flat's one-query QPS;
           ef 256 -> 0.992 at 26x)
    ivfpq  IndexIVFPQ (inner product), its own ids: nlist (auto ~4*sqrt(n)), pq_m (auto, a divisor of dim near
           dim/8), nbits (auto, 8 when there are >= 9,984 training vectors), nprobe=16 (about 1/20 of flat's
           bytes; recall@10 ~0.7 on the same vectors)

Ranges (FAISS aborts, segfaults or exhausts memory outside them): M 2..512, ef_construction / ef_search / nprobe
1..65536, nlist 1..1,048,576, pq_m 1..dim and a divisor of dim, nbits 1..16; bools and floats are refused.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

KINDS = ("flat", "hnsw", "ivfpq")
METRIC = "inner_product"  # of L2-normalised vectors, i.e. cosine
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "flat": {},
    "hnsw": {"M": 32, "ef_construction": 200, "ef_search": 256},
    "ivfpq": {"nlist": None, "pq_m": None, "nbits": None, "nprobe": 16},
}
RANGES = {
    "M": (2, 512),
    "ef_construction": (1, 65536),
    "ef_search": (1, 65536),
    "nprobe": (1, 65536),
    "nlist": (1, 1 << 20),
    "pq_m": (1, 1 << 16),
    "nbits": (1, 16),
}
AUTO = ("nlist", "pq_m", "nbits")  # None: sized from the training set


def is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    """A plain integer in [lo, hi]; a clear ValueError/TypeError naming the option otherwise."""
    if not is_int(value):
        raise TypeError(f"{name} must be an integer, got {value!r:.60} ({type(value).__name__})")
    if value < lo or (hi is not None and value > hi):
        bound = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown index kind {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def check_kind_params(kind: str, params: dict, dim: int | None = None) -> dict:
    """The full option dict of a `kind` index: defaults filled in, unknown names and bad values refused."""
    check_kind(kind)
    unknown = set(params) - set(DEFAULT_PARAMS[kind])
    if unknown:
        raise ValueError(
            f"unknown option(s) {sorted(unknown)} for a {kind} index; valid: {sorted(DEFAULT_PARAMS[kind]) or 'none'}"
        )
    out = {**DEFAULT_PARAMS[kind], **params}
    for name, value in out.items():
        if value is None and name in AUTO:
            continue
        lo, hi = RANGES[name]
        out[name] = check_int(name, value, lo, hi)
    if dim is not None and out.get("pq_m") is not None and (out["pq_m"] > dim or dim % out["pq_m"]):
        raise ValueError(f"pq_m={out['pq_m']} must divide the dimension {dim}")
    return out


def check_search_overrides(ef_search: Any, nprobe: Any) -> None:
    if ef_search is not None:
        check_int("ef_search", ef_search, *RANGES["ef_search"])
    if nprobe is not None:
        check_int("nprobe", nprobe, *RANGES["nprobe"])


def check_k(k: Any, live: int) -> int:
    """k as an int >= 1, capped at the number of live documents (never less than 1)."""
    k = check_int("k", k, 1)
    return max(1, min(k, live))


def auto_pq_m(dim: int) -> int:
    """A divisor of dim close to dim/8 (8-dim sub-vectors), e.g. 48 for 384."""
    target = max(1, dim // 8)
    divisors = [m for m in range(1, dim + 1) if dim % m == 0]
    return min(divisors, key=lambda m: (abs(m - target), m))


def new_faiss_index(kind: str, dim: int, params: dict, n_train: int | None = None):
    """A fresh FAISS index of `kind`; for IVF-PQ the automatic sizes are resolved from `n_train` and written back
    into `params` (so they are saved)."""
    import faiss

    p = params
    if kind == "flat":
        return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    if kind == "hnsw":
        hnsw = faiss.IndexHNSWFlat(dim, int(p["M"]), faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = int(p["ef_construction"])
        hnsw.hnsw.efSearch = int(p["ef_search"])
        return faiss.IndexIDMap2(hnsw)
    n = int(n_train or 0)
    nbits = int(p["nbits"]) if p["nbits"] else next((b for b in (8, 7, 6, 5, 4) if n >= 39 * 2**b), 4)
    if n < 2**nbits:
        raise ValueError(
            f"an IVF-PQ index with nbits={nbits} needs at least {2**nbits} vectors to train its "
            f"codebooks (got {n}); use kind='flat' for small collections"
        )
    nlist = int(p["nlist"] or max(1, min(int(4 * math.sqrt(n)), n // 39)))
    pq_m = int(p["pq_m"] or auto_pq_m(dim))
    if dim % pq_m:
        raise ValueError(f"pq_m={pq_m} must divide the dimension {dim}")
    if n < nlist:
        raise ValueError(f"nlist={nlist} needs at least as many training vectors (got {n})")
    p.update(nlist=nlist, pq_m=pq_m, nbits=nbits)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
    index.nprobe = int(p["nprobe"])
    return index
