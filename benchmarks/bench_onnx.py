"""ONNX runtime benchmark: throughput vs sentence-transformers, int8 speed and accuracy, one trunk in memory, MoTE
task graph vs dense graph, SciFact nDCG@10 of int8 vs fp32, and the CPU peers (fastembed, single-query latency).

    python benchmarks/bench_onnx.py --threads 2 --texts 1000 --queries 200 [--require-idle] [--skip-scifact]
    python benchmarks/bench_onnx.py --peers-only ...     (only the fastembed / latency comparison)

Everything is measured in this one run on the same real texts with the same thread count (torch threads and
onnxruntime intra-op threads). Each comparison is interleaved: after one warm-up each, the measures run in turn
over `--rounds` rounds (>= 2) with the order rotated every round, and ratios come from the summed seconds, so
drift on the machine hits every measure alike. References named in the output, with the goals of issue 22:
- throughput of ONNX fp32 / optimized / int8 vs sentence-transformers (torch) on the same base, no prefixes on
  either side: fp32 >= 1.2x; int8 >= 4x on a VNNI CPU (the figure is stated elsewhere);
- int8 accuracy on the MoTE export: worst row cosine int8 vs fp32 >= 0.99 over `--cosine-texts` (>= 200) real
  texts with each of the export's four task prefixes, and SciFact test nDCG@10 within 0.5 point of fp32;
- memory: peak RSS of a child process serving ONE path (`OnnxEncoder(dir, tasks=["search_query"], variant=v)`)
  vs ALL paths (`OnnxEncoder(dir, variant=v)`, a batch with every task), fp32 / optimized / int8: <= 1.25x.
  The child reads VmHWM from /proc/self/status: the peak of its own process image. `ru_maxrss` (getrusage) is
  not used: for RUSAGE_CHILDREN it is the largest of all waited-for children, and a child started by fork + exec
  keeps the forking parent's high-water mark (exec does not reset it), so it would report this benchmark's peak;
- MoTE search_query graph vs the dense model's graph, both fp32 with the task prefix (time <= 1.02x, RSS <= 1.1x);
- peers: OnnxEncoder vs fastembed on the same fp32 graph (throughput >= 1.0x), and single-query latency p50/p95
  of OnnxEncoder, fastembed and sentence-transformers, interleaved query by query in a rotating order.
The machine is recorded (benchmarks/machine.py: CPU model and flags, versions, threads, load average at start and
end). The run is "idle" only with a 1-minute load average <= 0.5 at start and at end; otherwise the figures are
written with "idle": false and a loud warning, and with --require-idle nothing is written (exit status 2).
Writes benchmarks/results/bench_onnx.json (atomically). Full size (the defaults: 1000 texts, 200 queries, SciFact
included): about 12-15 minutes on an idle 2-core machine (exports ~2.5, timed comparisons ~5, SciFact ~3.5, load
settling ~1.5); --skip-scifact saves the SciFact part. The phases print their times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import IDLE_LOAD, Run, add_run_arguments, describe, start_run

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "bench_onnx.json"
PEERS_RESULTS = REPO / "benchmarks" / "results" / "bench_onnx_peers.json"
VARIANTS = ("fp32", "optimized", "int8")
GOALS = {"fp32_vs_st": 1.2, "int8_vs_st": 4.0, "int8_cosine": 0.99, "int8_ndcg_points": 0.5, "rss_all_vs_one": 1.25}

RSS_CHILD = """
import json, sys
from mote_rag import OnnxEncoder
path, variant, threads, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode == "one":
    enc = OnnxEncoder(path, tasks=["search_query"], variant=variant, threads=threads)
else:
    enc = OnnxEncoder(path, variant=variant, threads=threads)
texts = [("a sentence of moderate length for the memory probe " * 8)] * 32
for task in enc.tasks.names:
    enc.encode(texts, task=task, batch_size=32)
assert "torch" not in sys.modules
# VmHWM: this process image's peak RSS (ru_maxrss would carry over the forking parent's peak)
kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"kib": kib, "tasks": enc.tasks.names, "graphs": enc.loaded_graphs, "shared": enc.shared_trunk}))
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


def interleave(measures: dict, rounds: int, label: str = "") -> tuple[dict[str, list[float]], dict]:
    """Run each callable of `measures` once per round, the order rotated every round; returns name -> seconds per
    round, and name -> what its last call returned. Warm-up is the caller's (one call each before this)."""
    names = list(measures)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    last = {}
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            last[name] = measures[name]()
            seconds[name].append(time.perf_counter() - start)
        line = ", ".join(f"{n} {seconds[n][-1]:.2f} s" for n in names)
        print(f"  {label} round {r + 1}/{rounds}: {line}", flush=True)
    return seconds, last


@contextmanager
def phase(name: str, record: dict):
    start = time.perf_counter()
    print(f"== {name} ...", flush=True)
    yield
    record[name] = round(time.perf_counter() - start, 1)
    print(f"== {name}: {record[name]:.1f} s", flush=True)


def peak_rss(export_dir: Path, variant: str, threads: int, mode: str) -> dict:
    """Peak RSS (MB, VmHWM) of a fresh child serving one path ('one') or every path ('all') of `export_dir`."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(export_dir), variant, str(threads), mode],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    child = json.loads(out.stdout.strip().splitlines()[-1])
    return {"mb": child.pop("kib") / 1024, **child}


def peer_comparison(export_dir: Path, st, texts, queries, threads: int, bs: int, rounds: int) -> dict:
    """OnnxEncoder vs fastembed throughput on one graph (interleaved), and single-query latency of three peers."""
    from mote_rag import OnnxEncoder
    from mote_rag.runtime.fastembed_models import fastembed_task_model

    enc = OnnxEncoder(export_dir, variant="fp32", threads=threads)
    fe = fastembed_task_model(export_dir, "search_query", threads=threads)
    measures = {
        "onnx_encoder": lambda: enc.encode(texts, task="query", batch_size=bs),
        "fastembed": lambda: np.stack(list(fe.embed(texts, batch_size=bs))),
    }
    enc.encode(texts[:32], task="query", batch_size=bs)
    list(fe.embed(texts[:32], batch_size=bs))
    sec, last = interleave(measures, rounds, "peers")
    rows = min(200, len(texts))
    a, b = last["onnx_encoder"][:rows], last["fastembed"][:rows]
    calls = {
        "onnx_encoder": lambda q: enc.encode(q, task="query"),
        "fastembed": lambda q: list(fe.embed([q])),
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
        "seconds": {k: sum(v) for k, v in sec.items()},
        "seconds_per_round": sec,
        "latency_single_query": latency,
        "queries_timed": len(queries),
        "throughput_onnx_encoder_vs_fastembed": sum(sec["fastembed"]) / sum(sec["onnx_encoder"]),
        "min_row_cosine_fastembed_vs_onnx_encoder": float((a * b).sum(1).min()),
    }


def print_peers(peers: dict, n_texts: int) -> None:
    for key, value in peers["seconds"].items():
        rounds = len(peers["seconds_per_round"][key])
        print(f"  {key:<32} {value:8.2f} s over {rounds} rounds ({rounds * n_texts / value:7.1f} texts/s)")
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
    add_run_arguments(parser, texts=1000)
    parser.add_argument("--cosine-texts", type=int, default=200, help="texts per task for int8 vs fp32 (goal: >= 200)")
    parser.add_argument("--skip-scifact", action="store_true")
    parser.add_argument("--scifact-docs", type=int, default=0, help="checks only: corpus cut to the judged docs + N")
    parser.add_argument("--queries", type=int, default=200, help="queries timed one by one for latency")
    parser.add_argument("--peers-only", action="store_true", help="only the fastembed / latency comparison")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the measures are interleaved and rotated)")
    args.out = args.out or (PEERS_RESULTS if args.peers_only else RESULTS)
    return args


def throughput(tmp: Path, st, texts, threads: int, bs: int, rounds: int, result: dict) -> None:
    """sentence-transformers vs ONNX fp32 / optimized / int8 (no prefixes), interleaved; worst row cosines."""
    from mote_rag import OnnxEncoder

    encoders = {v: OnnxEncoder(tmp / "plain", variant=v, threads=threads) for v in VARIANTS}
    measures = {"sentence_transformers_torch": lambda: st.encode(texts, batch_size=bs, normalize_embeddings=True)}
    for v, enc in encoders.items():
        measures[f"onnx_{v}"] = lambda enc=enc: enc.encode(texts, task="search_query", batch_size=bs)
    st.encode(texts[:32], batch_size=bs)  # warm-up
    for enc in encoders.values():
        enc.encode(texts[:32], task="search_query", batch_size=bs)
    sec, last = interleave(measures, rounds, "throughput")
    result["seconds"].update({k: sum(v) for k, v in sec.items()})
    result["seconds_per_round"].update(sec)
    ref = last["sentence_transformers_torch"]
    for v in VARIANTS:
        result["min_row_cosine_vs_sentence_transformers"][f"onnx_{v}"] = float((ref * last[f"onnx_{v}"]).sum(1).min())


def int8_cosine(mote_dir: Path, texts, threads: int, bs: int) -> dict:
    """Worst row cosine of the MoTE export's int8 vs fp32, per task (each with its prefix) and overall."""
    from mote_rag import OnnxEncoder

    fp32 = OnnxEncoder(mote_dir, variant="fp32", threads=threads)
    int8 = OnnxEncoder(mote_dir, variant="int8", threads=threads)
    per_task = {}
    for task in fp32.tasks.names:
        a = fp32.encode(texts, task=task, batch_size=bs)
        b = int8.encode(texts, task=task, batch_size=bs)
        cos = (a * b).sum(1)
        per_task[task] = {"min": float(cos.min()), "mean": float(cos.mean())}
    return {"texts": len(texts), "per_task": per_task, "min": min(t["min"] for t in per_task.values())}


def time_mote_vs_dense(tmp: Path, texts, threads: int, bs: int, rounds: int, result: dict) -> None:
    """The MoTE search_query graph against the dense graph, both fp32 with the prefix, interleaved."""
    from mote_rag import OnnxEncoder

    mote_q = OnnxEncoder(tmp / "mote", tasks=["search_query"], variant="fp32", threads=threads)
    dense_q = OnnxEncoder(tmp / "dense", tasks=["search_query"], variant="fp32", threads=threads)
    measures = {
        "mote_query_graph": lambda: mote_q.encode(texts, task="query", batch_size=bs),
        "dense_graph": lambda: dense_q.encode(texts, task="query", batch_size=bs),
    }
    for fn in (mote_q, dense_q):
        fn.encode(texts[:32], task="query", batch_size=bs)
    sec, _ = interleave(measures, rounds, "mote vs dense")
    result["seconds"].update({k: sum(v) for k, v in sec.items()})
    result["seconds_per_round"].update(sec)


def footprint(tmp: Path, threads: int) -> dict:
    """Peak RSS (MB): one path vs all paths of the MoTE export per variant; MoTE query graph vs dense graph."""
    rss: dict = {
        "method": "VmHWM of a fresh child process (/proc/self/status); not ru_maxrss, which a fork + exec child "
        "inherits from the forking parent (it would report this benchmark's own peak)",
        "one_vs_all_paths": {},
    }
    for v in VARIANTS:
        one, every = (peak_rss(tmp / "mote", v, threads, mode) for mode in ("one", "all"))
        rss["one_vs_all_paths"][v] = {"one_path": one, "all_paths": every, "ratio": every["mb"] / one["mb"]}
        print(f"  peak RSS {v:<9}: one path {one['mb']:6.0f} MB, all paths {every['mb']:6.0f} MB {every['graphs']}")
    rss["mote_query_graph_fp32_mb"] = peak_rss(tmp / "mote", "fp32", threads, "one")["mb"]
    rss["dense_graph_fp32_mb"] = peak_rss(tmp / "dense", "fp32", threads, "one")["mb"]
    return rss


def graph_bytes(tmp: Path) -> dict:
    files = [p for d in ("mote", "dense", "plain") for p in sorted((tmp / d).glob("*.onnx"))]
    return {f"{p.parent.name}/{p.name}": p.stat().st_size for p in files}


def ratios_and_goals(result: dict, vnni: bool) -> None:
    """Fill result["ratios"] and result["goals"] (True / False, or None where a goal is for VNNI CPUs only)."""
    sec, rss, r, g = result["seconds"], result["peak_rss"], result["ratios"], result["goals"]
    notes = result["goal_notes"]
    for v in VARIANTS:
        r[f"throughput_onnx_{v}_vs_st"] = sec["sentence_transformers_torch"] / sec[f"onnx_{v}"]
    r["time_mote_query_graph_vs_dense_graph"] = sec["mote_query_graph"] / sec["dense_graph"]
    r["peak_rss_mote_query_graph_vs_dense_graph"] = rss["mote_query_graph_fp32_mb"] / rss["dense_graph_fp32_mb"]
    for v in VARIANTS:
        r[f"peak_rss_all_paths_vs_one_path_{v}"] = rss["one_vs_all_paths"][v]["ratio"]
    r["throughput_onnx_encoder_vs_fastembed"] = result["peers"]["throughput_onnx_encoder_vs_fastembed"]
    g[f"throughput_onnx_fp32_vs_st >= {GOALS['fp32_vs_st']}"] = r["throughput_onnx_fp32_vs_st"] >= GOALS["fp32_vs_st"]
    # the int8 goals are for VNNI CPUs; on others the figures are stated, not judged
    g[f"throughput_onnx_int8_vs_st >= {GOALS['int8_vs_st']} (VNNI CPUs)"] = (
        r["throughput_onnx_int8_vs_st"] >= GOALS["int8_vs_st"] if vnni else None
    )
    cosine = result["int8_cosine_mote"]
    key = f"worst row cosine int8 vs fp32 >= {GOALS['int8_cosine']} (>= 200 texts x 4 tasks, VNNI CPUs)"
    g[key] = cosine["min"] >= GOALS["int8_cosine"] if vnni and cosine["texts"] >= 200 else None
    if cosine["texts"] < 200:
        notes[key] = f"not judged: {cosine['texts']} texts per task (the goal needs >= 200)"
    if "scifact" in result:
        points = abs(result["scifact"]["int8_minus_fp32_points"])
        key = f"SciFact nDCG@10 int8 within {GOALS['int8_ndcg_points']} of fp32 (VNNI CPUs)"
        full = result["scifact"]["full_corpus"]
        g[key] = points <= GOALS["int8_ndcg_points"] if vnni and full else None
        if not full:
            notes[key] = f"not judged: corpus cut to {result['scifact']['documents']} documents (--scifact-docs)"
    for v in VARIANTS:
        g[f"peak_rss_all_paths_vs_one_path_{v} <= {GOALS['rss_all_vs_one']}"] = (
            r[f"peak_rss_all_paths_vs_one_path_{v}"] <= GOALS["rss_all_vs_one"]
        )
    g["time_mote_query_graph_vs_dense_graph <= 1.02"] = r["time_mote_query_graph_vs_dense_graph"] <= 1.02
    g["peak_rss_mote_query_graph_vs_dense_graph <= 1.1"] = r["peak_rss_mote_query_graph_vs_dense_graph"] <= 1.1
    g["throughput_onnx_encoder_vs_fastembed >= 1.0"] = r["throughput_onnx_encoder_vs_fastembed"] >= 1.0
    for key, met in g.items():
        if met is None and not vnni and "VNNI CPUs" in key:
            notes.setdefault(key, "not judged: this CPU has no VNNI (the int8 goals are for VNNI CPUs); figure stated")


def scifact_ndcg(mote_dir: Path, threads: int, bs: int, extra_docs: int = 0) -> dict:
    """SciFact test nDCG@10 and seconds of the MoTE export, fp32 and int8 (`extra_docs` > 0: checks only, the
    corpus cut to the judged documents plus that many others)."""
    from mote_rag import OnnxEncoder
    from mote_rag.readers import default_data_dir, load_beir

    data = load_beir(default_data_dir() / "retrieval" / "scifact", split="test")
    qids, dids = list(data.queries), list(data.corpus)
    if extra_docs:
        judged = {d for rel in data.qrels.values() for d in rel}
        dids = [d for d in dids if d in judged] + [d for d in dids if d not in judged][:extra_docs]
    scifact: dict = {"queries": len(qids), "documents": len(dids), "full_corpus": not extra_docs}
    for variant in ("fp32", "int8"):
        enc = OnnxEncoder(mote_dir, variant=variant, threads=threads)
        start = time.perf_counter()
        q = enc.encode_query([data.queries[i] for i in qids], batch_size=bs)
        d = enc.encode_document([data.corpus[i] for i in dids], batch_size=bs)
        scifact[f"ndcg@10_{variant}"] = ndcg_at_10(q, d, qids, dids, data.qrels)
        scifact[f"seconds_{variant}"] = time.perf_counter() - start
    scifact["int8_minus_fp32_points"] = scifact["ndcg@10_int8"] - scifact["ndcg@10_fp32"]
    return scifact


def print_report(result: dict, out: Path | None) -> None:
    n, m = result["texts"], result["machine"]
    print(f"\n{n} real texts, {result['threads']} threads, batch {result['batch_size']}, {result['rounds']} rounds")
    print(f"machine: {describe(m)}")
    for key, value in result["seconds"].items():
        rounds = len(result["seconds_per_round"][key])
        print(f"  {key:<32} {value:8.2f} s over {rounds} rounds ({rounds * n / value:7.1f} texts/s)")
    print("ratios (summed seconds over the interleaved rounds):")
    named = {
        "throughput_onnx_fp32_vs_st": "ONNX fp32 vs sentence-transformers (torch)",
        "throughput_onnx_optimized_vs_st": "ONNX optimized vs sentence-transformers (torch)",
        "throughput_onnx_int8_vs_st": "ONNX int8 vs sentence-transformers (torch)",
        "time_mote_query_graph_vs_dense_graph": "time: MoTE query graph vs dense graph (fp32)",
        "peak_rss_mote_query_graph_vs_dense_graph": "peak RSS: MoTE query graph vs dense graph (fp32)",
        "peak_rss_all_paths_vs_one_path_fp32": "peak RSS: all paths vs one path (fp32)",
        "peak_rss_all_paths_vs_one_path_optimized": "peak RSS: all paths vs one path (optimized)",
        "peak_rss_all_paths_vs_one_path_int8": "peak RSS: all paths vs one path (int8)",
        "throughput_onnx_encoder_vs_fastembed": "throughput: OnnxEncoder vs fastembed (fp32 graph)",
    }
    for key, value in result["ratios"].items():
        print(f"  {named.get(key, key):<52} {value:6.3f}x")
    cos = result["int8_cosine_mote"]
    tasks = len(cos["per_task"])
    print(f"  worst row cosine int8 vs fp32 (MoTE, {cos['texts']} texts x {tasks} tasks): {cos['min']:.4f}")
    print_peers(result["peers"], n)
    if "scifact" in result:
        s = result["scifact"]
        print(
            f"  SciFact nDCG@10 ({s['queries']} queries, {s['documents']} docs): fp32 {s['ndcg@10_fp32']:.2f}, "
            f"int8 {s['ndcg@10_int8']:.2f} ({s['int8_minus_fp32_points']:+.2f} points)"
        )
    for goal, met in result["goals"].items():
        verdict = result["goal_notes"].get(goal, "not judged") if met is None else ("met" if met else "NOT met")
        print(f"  goal {goal}: {verdict}")
    for note, why in result["goal_notes"].items():
        if note not in result["goals"]:
            print(f"  {note}: {why}")
    print(f"phases: {result['phase_seconds']} (total {m['run_seconds']:.0f} s)")
    if out is not None:
        print(f"wrote {out} (idle: {m['idle']})")


def finish(run: Run, result: dict, args) -> int:
    """Record the machine's end state, then write the result (or refuse to, with --require-idle)."""
    from mote_rag.atomic import write_json_atomic

    result["machine"] = run.finish()
    result["idle"] = result["machine"]["idle"]
    if args.require_idle and not result["idle"]:
        print(
            f"--require-idle: not idle ({run.verdict()}; the limit is {IDLE_LOAD} at start and end): nothing written",
            file=sys.stderr,
        )
        return 2
    write_json_atomic(args.out, result)
    return 0


def export_all(base, tmp: Path, result: dict) -> None:
    """The MoTE export (4 paths, fp32 / optimized / int8), the dense graph, and the plain (no prefix) graphs."""
    from mote_rag import MoTEModel

    t0 = time.perf_counter()
    MoTEModel.upcycle(base).export_onnx(tmp / "mote", optimize=True, quantize=True)
    result["export_seconds_mote_4_paths"] = round(time.perf_counter() - t0, 1)
    MoTEModel.dense(base).export_onnx(tmp / "dense", tasks=["search_query"], check=False)
    plain = MoTEModel.dense(base, use_prefixes=False)
    plain.export_onnx(tmp / "plain", tasks=["search_query"], optimize=True, quantize=True, check=False)
    manifest = json.loads((tmp / "mote" / "manifest.json").read_text())
    result["int8_settings"] = manifest["variants"]["int8"]["quantization"]


def peers_only(run: Run, args, base, tmp: Path, texts, queries, result: dict) -> int:
    from sentence_transformers import SentenceTransformer

    from mote_rag import MoTEModel

    MoTEModel.dense(base, use_prefixes=False).export_onnx(tmp / "plain", tasks=["search_query"], check=False)
    st = SentenceTransformer(str(base), device="cpu")
    with phase("peers", result["phase_seconds"]):
        result["peers"] = peer_comparison(tmp / "plain", st, texts, queries, args.threads, args.batch_size, args.rounds)
    status = finish(run, result, args)
    print(f"{len(texts)} real texts, {args.threads} threads, batch {args.batch_size}, {len(queries)} single queries")
    print(f"machine: {describe(result['machine'])}")
    print_peers(result["peers"], len(texts))
    print(f"total {result['machine']['run_seconds']:.0f} s" + ("" if status else f"; wrote {args.out}"))
    run.warn_if_loaded()
    return status


def main(argv=None) -> int:
    args = parse_args(argv)
    run = start_run(args)
    if run is None:
        return 2

    import torch

    torch.set_num_threads(args.threads)
    from sentence_transformers import SentenceTransformer

    from mote_rag.default_base import embedded_base_path
    from mote_rag.readers import default_data_dir, read_jsonl

    base = embedded_base_path()
    data_dir = default_data_dir()
    texts = real_texts(data_dir, args.texts)
    bs, threads, rounds = args.batch_size, args.threads, args.rounds
    phases: dict = {}
    result = {
        "benchmark": "bench_onnx",
        "command": "python benchmarks/bench_onnx.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "threads": threads,
        "texts": len(texts),
        "batch_size": bs,
        "rounds": rounds,
        "seconds": {},
        "seconds_per_round": {},
        "min_row_cosine_vs_sentence_transformers": {},
        "ratios": {},
        "goals": {},
        "goal_notes": {},
        "phase_seconds": phases,
    }
    queries = [r["text"] for r in read_jsonl(data_dir / "retrieval/scifact/queries.jsonl")][: args.queries]
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        tmp = Path(tmp)
        if args.peers_only:
            return peers_only(run, args, base, tmp, texts, queries, result)
        with phase("export", phases):
            export_all(base, tmp, result)
        st = SentenceTransformer(str(base), device="cpu")
        with phase("throughput vs sentence-transformers", phases):
            throughput(tmp, st, texts, threads, bs, rounds, result)
        with phase("int8 vs fp32 cosine (4 tasks)", phases):
            result["int8_cosine_mote"] = int8_cosine(tmp / "mote", real_texts(data_dir, args.cosine_texts), threads, bs)
        with phase("peers", phases):
            result["peers"] = peer_comparison(tmp / "plain", st, texts, queries, threads, bs, rounds)
        with phase("MoTE vs dense graph", phases):
            time_mote_vs_dense(tmp, texts, threads, bs, rounds, result)
        with phase("peak RSS", phases):
            result["peak_rss"] = footprint(tmp, threads)
            result["graph_bytes"] = graph_bytes(tmp)
        if not args.skip_scifact:
            with phase("SciFact nDCG@10", phases):
                result["scifact"] = scifact_ndcg(tmp / "mote", threads, bs, args.scifact_docs)
    ratios_and_goals(result, run.facts["cpu"]["vnni"])
    status = finish(run, result, args)
    print_report(result, None if status else args.out)
    run.warn_if_loaded()
    return status


if __name__ == "__main__":
    sys.exit(main())
