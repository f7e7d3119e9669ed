"""Soak test of one index folder under concurrent writers: threads and processes mixing add, upsert, delete, search
and save for a bounded time, with a checker after every save.

    python benchmarks/soak_index.py                      # 5 minutes, 2 processes x 8 threads
    python benchmarks/soak_index.py --seconds 120 --processes 2 --threads 8

What runs:
- The index folder starts with `--initial` documents per process (flat, inner product, `--dim` dims).
- Each process holds the index in memory and runs `--threads` threads. Each thread owns its own ids (so the test
  knows, for every id, the last operation that was acknowledged) and loops over: add a new id, upsert one of its
  live ids with a new vector, delete one of its live ids (a deleted id is never used again), search with a random
  vector, and save.
- A save is a transaction on the shared folder: under a lock file shared by the processes it loads the folder
  (which holds what the other process saved), applies this process's operations since its last save, and saves
  with FaissIndex.save. When that returns, those operations are acknowledged.
- After every save the checker reloads the folder and verifies:
  1. every acknowledged add or upsert of this process is present, with the vector of its last acknowledged write;
  2. no id whose delete was acknowledged is present, or returned by a search (in memory or after the reload);
  3. the top-k of random queries on the reloaded index equal a fresh exact search (numpy, over the stored vectors):
     same ids, scores within 1e-5.
  Searches on the in-memory index also check 2 for every delete completed before the search started.
- At the end the parent reloads the folder once more and checks every process's acknowledged state together.

It reports operations per second (all processes) and the violations, which should be 0, and writes JSON to
benchmarks/results/soak_index.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TXN_LOCK = ".soak-transaction.lock"
OPS = ("add", "upsert", "delete", "search", "save")
WEIGHTS = (30, 20, 12, 33, 5)
K = 10


class State:
    """One process: its in-memory index, its journal since the last save, and what has been acknowledged."""

    def __init__(self, folder: Path, proc: int, dim: int, seed: int):
        from mote_rag.index.faiss_index import FaissIndex

        self.folder, self.proc, self.dim = folder, proc, dim
        self.live = FaissIndex.load(folder)
        self.rng = np.random.default_rng(seed)
        self.journal: list[tuple] = []  # (op, id, vector or None), in the order they were applied in memory
        self.journal_lock = threading.Lock()
        self.save_lock = threading.Lock()  # one transaction at a time from this process
        self.acked: dict[str, np.ndarray | None] = {  # id -> vector of its last acknowledged write, None: deleted
            d: v for d, v in zip(self.live.ids, self.live.vectors(self.live.ids)) if d.startswith(f"p{proc}-")
        }
        self.deleted_done: set[str] = set()  # deletes applied in memory (never re-added): no search may return them
        self.deleted_lock = threading.Lock()
        self.counts = dict.fromkeys(OPS, 0)
        self.checks = 0
        self.violations: list[str] = []
        self.counts_lock = threading.Lock()

    def violation(self, message: str) -> None:
        with self.counts_lock:
            self.violations.append(message)

    def vector(self, rng: np.random.Generator) -> np.ndarray:
        v = rng.standard_normal(self.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    # ------------------------------------------------------------------ the operations
    def add(self, doc_id: str, vec: np.ndarray) -> None:
        with self.journal_lock:  # journal order = memory order for this id (its owner thread is the only writer)
            self.live.add_embeddings(vec[None, :], [doc_id])
            self.journal.append(("add", doc_id, vec))

    def upsert(self, doc_id: str, vec: np.ndarray) -> None:
        with self.journal_lock:
            self.live.upsert_embeddings(vec[None, :], [doc_id])
            self.journal.append(("upsert", doc_id, vec))

    def delete(self, doc_id: str) -> None:
        with self.journal_lock:
            self.live.delete([doc_id])
            self.journal.append(("delete", doc_id, None))
        with self.deleted_lock:
            self.deleted_done.add(doc_id)

    def search(self, rng: np.random.Generator) -> None:
        with self.deleted_lock:
            banned = set(self.deleted_done)  # deletes completed before this search started
        hits = self.live.search_vectors(self.vector(rng), k=K)
        for h in hits:
            if h.id in banned:
                self.violation(f"in-memory search returned {h.id}, deleted before the search started")

    def save(self) -> None:
        """Load the folder under the shared lock, apply this process's journal, save; then check the folder."""
        from mote_rag.atomic import folder_lock
        from mote_rag.index.faiss_index import FaissIndex

        with self.save_lock, folder_lock(self.folder / TXN_LOCK, "soak transaction", timeout=120):
            disk = FaissIndex.load(self.folder)
            with self.journal_lock:
                ops, self.journal = self.journal, []
            for op, doc_id, vec in ops:
                if op == "add":
                    disk.add_embeddings(vec[None, :], [doc_id])
                elif op == "upsert":
                    disk.upsert_embeddings(vec[None, :], [doc_id])
                else:
                    disk.delete([doc_id])
            disk.save(self.folder)
            for _, doc_id, vec in ops:  # acknowledged: the save returned
                self.acked[doc_id] = vec
            self.check()

    # ------------------------------------------------------------------ the checker
    def check(self) -> None:
        found = check_folder(self.folder, self.acked, self.rng, f"process {self.proc}")
        with self.counts_lock:
            self.violations.extend(found)
            self.checks += 1


def check_folder(folder: Path, acked: dict, rng: np.random.Generator, who: str, queries: int = 5) -> list[str]:
    """The three invariants on a fresh load of `folder`, for the ids in `acked` (id -> vector, None = deleted)."""
    from mote_rag.index.faiss_index import FaissIndex

    out = []
    index = FaissIndex.load(folder)
    present = set(index.ids)
    live = [d for d, v in acked.items() if v is not None]
    missing = [d for d in live if d not in present]
    if missing:
        out.append(f"{who}: {len(missing)} acknowledged id(s) missing after reload, e.g. {missing[:3]}")
    kept = [d for d in live if d in present]
    if kept:
        stored = index.vectors(kept)
        wanted = np.stack([acked[d] for d in kept])
        wrong = np.flatnonzero(np.abs(stored - wanted).max(axis=1) > 1e-6)
        if len(wrong):
            out.append(f"{who}: {len(wrong)} id(s) hold another vector than their last acknowledged write")
    deleted = {d for d, v in acked.items() if v is None}
    back = deleted & present
    if back:
        out.append(f"{who}: {len(back)} deleted id(s) present after reload, e.g. {sorted(back)[:3]}")
    if len(index):
        all_ids = index.ids
        matrix = index.vectors(all_ids)
        for _ in range(queries):
            q = rng.standard_normal(index.dim).astype(np.float32)
            q /= np.linalg.norm(q)
            hits = index.search_vectors(q, k=K)
            if any(h.id in deleted for h in hits):
                out.append(f"{who}: a search after reload returned a deleted id")
            exact = matrix @ q
            top = np.argsort(-exact, kind="stable")[: len(hits)]
            got = np.array([h.score for h in hits], dtype=np.float32)
            if not np.allclose(got, exact[top], atol=1e-5):
                out.append(
                    f"{who}: search scores differ from a fresh exact search (max {np.abs(got - exact[top]).max()})"
                )
            elif {h.id for h in hits} != {all_ids[i] for i in top} and not _ties(exact, len(hits)):
                out.append(f"{who}: search ids differ from a fresh exact search")
    return out


def _ties(scores: np.ndarray, k: int) -> bool:
    """Whether the k-th best score is tied with the next one (then either id is a correct answer)."""
    ordered = np.sort(scores)[::-1]
    return len(ordered) > k and abs(ordered[k - 1] - ordered[k]) < 1e-6


# ---------------------------------------------------------------------------------------------- a worker process
def thread_loop(state: State, thread: int, deadline: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    prefix = f"p{state.proc}-t{thread}-"
    mine = [d for d in state.live.ids if d.startswith(prefix)]
    serial = 0
    while time.monotonic() < deadline:
        op = pick.choices(OPS, WEIGHTS)[0]
        try:
            if op == "add" or (op in ("upsert", "delete") and not mine):
                op = "add"
                doc_id = f"{prefix}{serial}"
                serial += 1
                state.add(doc_id, state.vector(rng))
                mine.append(doc_id)
            elif op == "upsert":
                state.upsert(pick.choice(mine), state.vector(rng))
            elif op == "delete":
                doc_id = mine.pop(pick.randrange(len(mine)))
                state.delete(doc_id)
            elif op == "search":
                state.search(rng)
            else:
                state.save()
        except Exception as exc:  # any error is a violation, reported with the operation
            state.violation(f"{op} raised {type(exc).__name__}: {exc}")
        with state.counts_lock:
            state.counts[op] += 1


def worker(folder: str, proc: int, threads: int, seconds: float, dim: int, seed: int, results) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    state = State(Path(folder), proc, dim, seed)
    deadline = time.monotonic() + seconds
    pool = [
        threading.Thread(target=thread_loop, args=(state, t, deadline, seed * 1000 + t), daemon=True)
        for t in range(threads)
    ]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    state.save()  # the last operations are acknowledged too
    acked = {d: (None if v is None else v.tolist()) for d, v in state.acked.items()}
    results.put(
        {"proc": proc, "counts": state.counts, "checks": state.checks, "violations": state.violations, "acked": acked}
    )


# ---------------------------------------------------------------------------------------------- the run
def run(
    seconds: float = 300,
    threads: int = 8,
    processes: int = 2,
    dim: int = 32,
    initial: int = 500,
    seed: int = 0,
    folder: str | Path | None = None,
    out: str | Path | None = RESULTS / "soak_index.json",
) -> dict:
    from mote_rag.atomic import LOCK_NAME, write_json_atomic
    from mote_rag.index.faiss_index import FaissIndex

    tmp = None
    if folder is None:
        tmp = tempfile.TemporaryDirectory(prefix="soak-index-")
        folder = Path(tmp.name) / "ix"
    folder = Path(folder)
    rng = np.random.default_rng(seed)
    start_index = FaissIndex(dim=dim, fingerprint="soak")
    ids = [f"p{p}-t{t}-init{i}" for p in range(processes) for t in range(threads) for i in range(initial // threads)]
    vecs = rng.standard_normal((len(ids), dim)).astype(np.float32)
    start_index.add_embeddings(vecs / np.linalg.norm(vecs, axis=1, keepdims=True), ids)
    start_index.save(folder)

    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [
        ctx.Process(target=worker, args=(str(folder), p, threads, seconds, dim, seed + 1 + p, results))
        for p in range(processes)
    ]
    began = time.perf_counter()
    for p in procs:
        p.start()
    reports = [results.get(timeout=seconds + 600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    elapsed = time.perf_counter() - began

    counts = dict.fromkeys(OPS, 0)
    violations: list[str] = []
    acked: dict = {}
    for r in sorted(reports, key=lambda r: r["proc"]):
        for op in OPS:
            counts[op] += r["counts"][op]
        violations += r["violations"]
        acked.update({d: (None if v is None else np.asarray(v, np.float32)) for d, v in r["acked"].items()})
    final = check_folder(folder, acked, np.random.default_rng(seed), "final check", queries=20)
    violations += final
    index = FaissIndex.load(folder)
    live = sorted(d for d, v in acked.items() if v is not None)
    if sorted(index.ids) != live:
        violations.append(f"final check: the folder holds {len(index)} ids, the acknowledged state {len(live)}")
    leftovers = sorted(p.name for p in folder.iterdir() if p.name in (LOCK_NAME, TXN_LOCK) or p.suffix == ".tmp")
    if leftovers:
        violations.append(f"final check: left in the folder: {leftovers}")
    total = sum(counts.values())
    result = {
        "benchmark": "soak_index",
        "seconds": round(elapsed, 1),
        "processes": processes,
        "threads_per_process": threads,
        "dim": dim,
        "initial_documents": len(ids),
        "final_documents": len(index),
        "operations": counts,
        "operations_per_second": round(total / elapsed, 1),
        "saves_checked": sum(r["checks"] for r in reports),
        "violations": len(violations),
        "violation_examples": violations[:20],
        "command": "python benchmarks/soak_index.py " + " ".join(sys.argv[1:]) if out else None,
    }
    if out:
        write_json_atomic(out, result)
    if tmp is not None:
        tmp.cleanup()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=300, help="how long the workers run (default 300)")
    p.add_argument("--threads", type=int, default=8, help="threads per process (default 8)")
    p.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--initial", type=int, default=500, help="documents per process at the start (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--folder", help="index folder to use (default: a temporary one)")
    p.add_argument("--out", default=str(RESULTS / "soak_index.json"), help="result JSON")
    args = p.parse_args(argv)
    result = run(args.seconds, args.threads, args.processes, args.dim, args.initial, args.seed, args.folder, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "violation_examples"}, indent=2))
    for v in result["violation_examples"]:
        print("violation:", v)
    return 0 if result["violations"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
