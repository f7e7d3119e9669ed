"""ONNX runtime benchmark: throughput vs sentence-transformers, int8, MoTE task graph vs dense graph, peak RSS,
SciFact nDCG@10 of int8 vs fp32, and the CPU peers: fastembed on the same graph, single-query latency.

    python benchmarks/bench_onnx.py [--threads 2] [--texts 2000] [--skip-scifact] [--peers-only]

`--peers-only` exports only the plain fp32 graph and runs the peer comparison (writes bench_onnx_peers.json).

Everything is measured in this one run on the same real texts with the same thread count (torch threads and
onnxruntime intra-op threads), one timed pass each after a short warm-up. References named in the output:
- onnx fp32 / int8 / optimized vs sentence-transformers (torch) on the same base, no prefixes on either side;
- MoTE search_query graph vs the dense model's graph (both with the task prefix, so identical inputs);
- peak RSS (VmHWM of a child process) loading only the MoTE query graph vs loading the dense graph;
- peers: OnnxEncoder vs fastembed (mote_rag.runtime.fastembed_models, pooling DISABLED) on the same fp32 graph,
  same texts and batch size, interleaved twice (throughput ratio, goal >= 1.0); and single-query latency p50/p95
  of OnnxEncoder, fastembed and sentence-transformers, one query per call, the three interleaved query by query
  in a rotating order.
Writes benchmarks/results/bench_onnx.json (atomically).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "bench_onnx.json"
PEERS_RESULTS = REPO / "benchmarks" / "results" / "bench_onnx_peers.json"

RSS_CHILD = """
import sys
from mote_rag import OnnxEncoder
enc = OnnxEncoder(sys.argv[1], tasks=[sys.argv[2]], threads=int(sys.argv[3]))
texts = [("a sentence of moderate length for the memory probe " * 8)] * 32
enc.encode(texts, task=sys.argv[2], batch_size=32)
assert "torch" not in sys.modules
# VmHWM: this process image's peak RSS (ru_maxrss would carry over the forking parent's peak)
print(next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def real_texts(data_dir: Path, n: int) -> list[str]:
    """n real texts of varied length: SciFact abstracts and claims, Banking77 queries, AG News items."""
    from mote_rag.readers import corpus_text, read_jsonl

    sources = [
        [corpus_text(r) for r in read_jsonl(data_dir / "retrieval/scifact/corpus.jsonl")],
        [r["text"] for r in read_jsonl(data_dir / "retrieval/scifact/queries.jsonl")],
        [r["text"] for r in read_jsonl(data_dir / "classification/banking77/test.jsonl")],
        [r["text"] for r in read_jsonl(data_dir / "clustering/ag_news/test.jsonl")],
    ]
    per = -(-n // len(sources))
    texts = [t for src in sources for t in src[:per]][:n]
    if len(texts) < n:
        raise ValueError(f"only {len(texts)} texts available, {n} asked")
    return texts


def timed(fn, texts, warmup: int = 32, label: str = "") -> float:
    fn(texts[:warmup])
    start = time.perf_counter()
    fn(texts)
    seconds = time.perf_counter() - start
    print(f"  measured {label:<30} {seconds:8.2f} s", flush=True)
    return seconds


def peak_rss_mb(export_dir: Path, task: str, threads: int) -> float:
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(export_dir), task, str(threads)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024  # VmHWM is in KiB


def peer_comparison(export_dir: Path, st, texts: list[str], queries: list[str], threads: int, bs: int) -> dict:
    """OnnxEncoder vs fastembed throughput on one graph (interleaved), and single-query latency of three peers."""
    from mote_rag import OnnxEncoder
    from mote_rag.runtime.fastembed_models import fastembed_task_model

    enc = OnnxEncoder(export_dir, threads=threads)
    fe = fastembed_task_model(export_dir, "search_query", threads=threads)
    sec = {}
    for run in ("", "_2"):  # alternate, so that load on the shared machine hits both alike
        sec[f"onnx_encoder{run}"] = timed(
            lambda x: enc.encode(x, task="query", batch_size=bs),
            texts,
            warmup=0 if run else 32,
            label=f"onnx_encoder{run}",
        )
        sec[f"fastembed{run}"] = timed(
            lambda x: fe.embed(x, batch_size=bs), texts, warmup=0 if run else 32, label=f"fastembed{run}"
        )
    rows = min(200, len(texts))
    a, b = enc.encode(texts[:rows], task="query", batch_size=bs), np.stack(fe.embed(texts[:rows], batch_size=bs))
    calls = {
        "onnx_encoder": lambda q: enc.encode(q, task="query"),
        "fastembed": lambda q: fe.embed([q]),
        "sentence_transformers": lambda q: st.encode(q),
    }
    times: dict[str, list[float]] = {k: [] for k in calls}
    for q in queries[:8]:  # warm-up
        for fn in calls.values():
            fn(q)
    names = list(calls)
    for i, q in enumerate(queries):  # rotate the order, so that no peer always runs right after torch
        for name in names[i % 3 :] + names[: i % 3]:
            start = time.perf_counter()
            calls[name](q)
            times[name].append(1000 * (time.perf_counter() - start))
    latency = {
        name: {
            "p50_ms": float(np.percentile(t, 50)),
            "p95_ms": float(np.percentile(t, 95)),
            "mean_ms": float(np.mean(t)),
        }
        for name, t in times.items()
    }
    return {
        "seconds": sec,
        "latency_single_query": latency,
        "queries_timed": len(queries),
        "throughput_onnx_encoder_vs_fastembed": (sec["fastembed"] + sec["fastembed_2"])
        / (sec["onnx_encoder"] + sec["onnx_encoder_2"]),
        "min_row_cosine_fastembed_vs_onnx_encoder": float((a * b).sum(1).min()),
    }


def print_peers(peers: dict, n_texts: int) -> None:
    for key, value in peers["seconds"].items():
        print(f"  {key:<32} {value:8.2f} s  ({n_texts / value:7.1f} texts/s)")
    print(
        f"  throughput OnnxEncoder / fastembed: {peers['throughput_onnx_encoder_vs_fastembed']:.3f}x (goal >= 1.0); "
        f"worst row cosine {peers['min_row_cosine_fastembed_vs_onnx_encoder']:.7f}"
    )
    for name, lat in peers["latency_single_query"].items():
        print(f"  single-query latency {name:<22} p50 {lat['p50_ms']:7.2f} ms  p95 {lat['p95_ms']:7.2f} ms")


def ndcg_at_10(query_emb, doc_emb, query_ids, doc_ids, qrels) -> float:
    from ranx import Qrels, Run, evaluate

    scores = query_emb @ doc_emb.T
    top = np.argsort(-scores, axis=1)[:, :10]
    run = {q: {doc_ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(query_ids)}
    return 100 * float(evaluate(Qrels(qrels), Run(run), "ndcg@10"))


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--queries", type=int, default=300, help="queries timed one by one for latency")
    parser.add_argument("--peers-only", action="store_true", help="only the fastembed / latency comparison")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.out = args.out or (PEERS_RESULTS if args.peers_only else RESULTS)
    return args


def time_mote_vs_dense(tmp: Path, texts: list[str], threads: int, bs: int, sec: dict) -> None:
    """Time the MoTE search_query graph against the dense graph, alternating, into `sec`."""
    from mote_rag import OnnxEncoder

    mote_q = OnnxEncoder(tmp / "mote", tasks=["search_query"], threads=threads)
    dense_q = OnnxEncoder(tmp / "dense", tasks=["search_query"], threads=threads)
    for run in ("", "_2"):  # alternate the two so that load on the shared machine hits both alike
        sec[f"mote_query_graph{run}"] = timed(
            lambda x: mote_q.encode(x, task="query", batch_size=bs),
            texts,
            warmup=0 if run else 32,
            label=f"mote_query_graph{run}",
        )
        sec[f"dense_graph{run}"] = timed(
            lambda x: dense_q.encode(x, task="query", batch_size=bs),
            texts,
            warmup=0 if run else 32,
            label=f"dense_graph{run}",
        )


def footprint(tmp: Path, threads: int) -> tuple[dict, dict]:
    """Peak RSS (MB) of the MoTE search_query and dense graphs, and the sizes of the exported graphs (bytes)."""
    rss = {
        "mote_query_graph_mb": peak_rss_mb(tmp / "mote", "search_query", threads),
        "dense_graph_mb": peak_rss_mb(tmp / "dense", "search_query", threads),
    }
    sizes = {p.name: p.stat().st_size for d in ("mote", "dense") for p in (tmp / d).glob("*.onnx")}
    graph_bytes = {
        "mote_search_query": sizes["search_query.onnx"],
        "dense": sizes["dense.onnx"],
        "mote_search_query_int8": sizes["search_query.int8.onnx"],
    }
    return rss, graph_bytes


def ratios_and_goals(result: dict) -> None:
    """Fill result["ratios"] and result["goals"] from the measured seconds, peak RSS and peer comparison."""
    sec, rss = result["seconds"], result["peak_rss"]
    r, g = result["ratios"], result["goals"]
    r["throughput_onnx_fp32_vs_st"] = sec["sentence_transformers_torch"] / sec["onnx_fp32"]
    r["throughput_onnx_optimized_vs_st"] = sec["sentence_transformers_torch"] / sec["onnx_optimized"]
    r["throughput_onnx_int8_vs_st"] = sec["sentence_transformers_torch"] / sec["onnx_int8"]
    r["time_mote_query_graph_vs_dense_graph"] = (sec["mote_query_graph"] + sec["mote_query_graph_2"]) / (
        sec["dense_graph"] + sec["dense_graph_2"]
    )
    r["peak_rss_mote_query_graph_vs_dense_graph"] = rss["mote_query_graph_mb"] / rss["dense_graph_mb"]
    g["throughput_onnx_fp32_vs_st >= 1.5"] = r["throughput_onnx_fp32_vs_st"] >= 1.5
    g["throughput_onnx_int8_vs_st >= 3"] = r["throughput_onnx_int8_vs_st"] >= 3
    g["time_mote_query_graph_vs_dense_graph <= 1.02"] = r["time_mote_query_graph_vs_dense_graph"] <= 1.02
    g["peak_rss_mote_query_graph_vs_dense_graph <= 1.1"] = r["peak_rss_mote_query_graph_vs_dense_graph"] <= 1.1
    r["throughput_onnx_encoder_vs_fastembed"] = result["peers"]["throughput_onnx_encoder_vs_fastembed"]
    g["throughput_onnx_encoder_vs_fastembed >= 1.0"] = r["throughput_onnx_encoder_vs_fastembed"] >= 1.0


def scifact_ndcg(mote_dir: Path, threads: int, bs: int) -> dict:
    """SciFact test nDCG@10 and seconds of the MoTE export, fp32 and int8."""
    from mote_rag import OnnxEncoder
    from mote_rag.readers import default_data_dir, load_beir

    data = load_beir(default_data_dir() / "retrieval" / "scifact", split="test")
    qids, dids = list(data.queries), list(data.corpus)
    scifact = {}
    for variant in ("fp32", "int8"):
        enc = OnnxEncoder(mote_dir, variant=variant, threads=threads)
        start = time.perf_counter()
        q = enc.encode_query([data.queries[i] for i in qids], batch_size=bs)
        d = enc.encode_document([data.corpus[i] for i in dids], batch_size=bs)
        scifact[f"ndcg@10_{variant}"] = ndcg_at_10(q, d, qids, dids, data.qrels)
        scifact[f"seconds_{variant}"] = time.perf_counter() - start
    scifact["int8_minus_fp32_points"] = scifact["ndcg@10_int8"] - scifact["ndcg@10_fp32"]
    return scifact


def print_report(result: dict, n_texts: int, out: Path) -> None:
    threads, bs, rss = result["threads"], result["batch_size"], result["peak_rss"]
    print(
        f"{n_texts} real texts, {threads} threads, batch {bs} (load average {result['load_average_start'][0]:.1f} "
        f"at start, {result['load_average_end'][0]:.1f} at end)"
    )
    for key, value in result["seconds"].items():
        print(f"  {key:<32} {value:8.2f} s  ({n_texts / value:7.1f} texts/s)")
    for key, value in result["ratios"].items():
        print(f"  {key:<44} {value:6.3f}x")
    print(
        f"  peak RSS: MoTE query graph {rss['mote_query_graph_mb']:.0f} MB, dense graph {rss['dense_graph_mb']:.0f} MB"
    )
    print_peers(result["peers"], n_texts)
    if "scifact" in result:
        s = result["scifact"]
        print(
            f"  SciFact nDCG@10: fp32 {s['ndcg@10_fp32']:.2f}, int8 {s['ndcg@10_int8']:.2f} "
            f"({s['int8_minus_fp32_points']:+.2f} points)"
        )
    for goal, met in result["goals"].items():
        print(f"  goal {goal}: {'met' if met else 'NOT met'}")
    print(f"wrote {out}")


def main(argv=None) -> int:
    args = parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer

    from mote_rag import MoTEModel, OnnxEncoder
    from mote_rag.atomic import write_json_atomic
    from mote_rag.default_base import embedded_base_path
    from mote_rag.readers import default_data_dir, read_jsonl

    base = embedded_base_path()
    texts = real_texts(default_data_dir(), args.texts)
    bs, threads = args.batch_size, args.threads
    result = {
        "threads": threads,
        "texts": len(texts),
        "batch_size": bs,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average_start": os.getloadavg(),
        "seconds": {},
        "ratios": {},
        "goals": {},
    }
    queries = [r["text"] for r in read_jsonl(default_data_dir() / "retrieval/scifact/queries.jsonl")][: args.queries]
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        tmp = Path(tmp)
        if args.peers_only:
            MoTEModel.dense(base, use_prefixes=False).export_onnx(tmp / "plain", tasks=["search_query"], check=False)
            st = SentenceTransformer(str(base), device="cpu")
            result["peers"] = peer_comparison(tmp / "plain", st, texts, queries, threads, bs)
            result["load_average_end"] = os.getloadavg()
            write_json_atomic(args.out, result)
            print(f"{len(texts)} real texts, {threads} threads, batch {bs}, {len(queries)} single queries")
            print_peers(result["peers"], len(texts))
            print(f"wrote {args.out}")
            return 0
        t0 = time.perf_counter()
        mote = MoTEModel.upcycle(base)
        mote.export_onnx(tmp / "mote", optimize=True, quantize=True)
        result["export_seconds_mote_4_paths"] = round(time.perf_counter() - t0, 1)
        MoTEModel.dense(base).export_onnx(tmp / "dense", tasks=["search_query"], check=False)
        plain = MoTEModel.dense(base, use_prefixes=False)
        plain.export_onnx(tmp / "plain", tasks=["search_query"], optimize=True, quantize=True, check=False)

        st = SentenceTransformer(str(base), device="cpu")
        sec = result["seconds"]
        sec["sentence_transformers_torch"] = timed(
            lambda x: st.encode(x, batch_size=bs), texts, label="sentence_transformers_torch"
        )
        for variant in ("fp32", "optimized", "int8"):
            enc = OnnxEncoder(tmp / "plain", variant=variant, threads=threads)
            sec[f"onnx_{variant}"] = timed(
                lambda x, enc=enc: enc.encode(x, task="search_query", batch_size=bs), texts, label=f"onnx_{variant}"
            )
        reference = st.encode(texts[:200], batch_size=bs, normalize_embeddings=True)
        fp32_rows = OnnxEncoder(tmp / "plain", threads=threads).encode(texts[:200], task="query", batch_size=bs)
        result["min_row_cosine_onnx_fp32_vs_sentence_transformers_200"] = float((reference * fp32_rows).sum(1).min())
        result["peers"] = peer_comparison(tmp / "plain", st, texts, queries, threads, bs)

        time_mote_vs_dense(tmp, texts, threads, bs, sec)

        result["peak_rss"], result["graph_bytes"] = footprint(tmp, threads)

        ratios_and_goals(result)

        if not args.skip_scifact:
            scifact = result["scifact"] = scifact_ndcg(tmp / "mote", threads, bs)
            result["goals"]["scifact int8 within 1 nDCG@10 point of fp32"] = (
                abs(scifact["int8_minus_fp32_points"]) <= 1.0
            )
    result["load_average_end"] = os.getloadavg()
    write_json_atomic(args.out, result)

    print_report(result, len(texts), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
