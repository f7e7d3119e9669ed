"""Distributed indexing on Ray against the single-process indexer: documents per second on the same texts.

Texts: the first --docs SciFact abstracts (title + text, the real corpus file), embedded by the MoTE model
upcycled from the embedded all-MiniLM-L6-v2 and exported to ONNX once (~/.cache/mote-rag/examples-base-onnx,
the examples' folder; --model takes another exported folder). All runs in one process, one after another,
on the same texts:

  single-1t   FaissIndex.build with OnnxEncoder(threads=1)        the per-core reference
  single-all  FaissIndex.build with OnnxEncoder(threads=None)     onnxruntime's default: every core
  ray-1w      build_ray_index, 1 worker x 1 thread, 2 shards      (local Ray cluster, started once, not timed)
  ray-2w      build_ray_index, 2 workers x 1 thread, 2 shards

A Ray time is the whole job as a user sees it: reading with Ray Data, starting the encoder actors, embedding,
routing, building and saving the shards and the manifest; ray.init is reported apart (once per cluster).
Two ratios over single-1t: wall-clock documents per second, and documents per CPU-second of the encoding
processes (process_time; the Ray actors report theirs), the per-core throughput that holds whatever else shares
the cores. os.getloadavg() before and after each run says how busy the (shared) machine was.

    python benchmarks/bench_ray.py [--docs 1000] [--model EXPORTED_DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result

from mote_rag.readers import default_data_dir


def scifact_subset(n: int, out: Path) -> Path:
    lines = (default_data_dir() / "retrieval/scifact/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    if len(lines) < n:
        raise SystemExit(f"SciFact has only {len(lines)} documents")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "mote-rag" / "examples-base-onnx"


def export_model() -> Path:
    """The upcycled base's query/document graphs, exported once (the folder the examples share)."""
    if not (CACHE / "manifest.json").is_file():
        from mote_rag import MoTEModel

        MoTEModel.upcycle(None).export_onnx(CACHE, tasks=["search_document", "search_query"])
    return CACHE


def autogroup() -> str:
    try:
        return "enabled" if Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1" else "off"
    except OSError:
        return "unknown"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def ray_run(corpus_path: Path, out: Path, model_dir: Path, workers: int, batch_size: int, n_docs: int) -> dict:
    """Build a 2-shard index with Ray (`workers` workers, one thread each); its timing row."""
    from mote_rag.index.ray_build import build_ray_index

    before = load()
    start = time.perf_counter()
    manifest = build_ray_index(
        corpus_path,
        out,
        model_dir,
        shards=2,
        workers=workers,
        threads=1,
        id_field="_id",
        text_fields="title,text",
        batch_size=batch_size,
    )
    seconds = time.perf_counter() - start
    assert manifest["count"] == n_docs
    build = manifest["build"]
    return {
        "seconds": round(seconds, 2),
        "docs_per_s": round(n_docs / seconds, 2),
        "cpu_seconds": build["encode_cpu_seconds"],
        "docs_per_cpu_s": build["documents_per_encode_cpu_second"],
        "workers": workers,
        "threads_per_worker": 1,
        "shards": 2,
        "loadavg_before": before,
        "loadavg_after": load(),
    }


def run_ratios(runs: dict[str, dict]) -> tuple[dict, dict]:
    """Wall-clock docs/s and docs per CPU-second of each run relative to single-1t (and ray-2w to the others)."""
    ref = runs["single-1t"]["docs_per_s"]
    ratios = {f"{name}/single-1t": round(run["docs_per_s"] / ref, 3) for name, run in runs.items()}
    ratios["ray-2w/ray-1w"] = round(runs["ray-2w"]["docs_per_s"] / runs["ray-1w"]["docs_per_s"], 3)
    ratios["ray-2w/single-all"] = round(runs["ray-2w"]["docs_per_s"] / runs["single-all"]["docs_per_s"], 3)
    cpu_ref = runs["single-1t"]["docs_per_cpu_s"]
    per_core_ratios = {f"{name}/single-1t": round(run["docs_per_cpu_s"] / cpu_ref, 3) for name, run in runs.items()}
    return ratios, per_core_ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--model", default=None, help="an exported ONNX folder (default: export the upcycled base)")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    import ray

    from mote_rag.index.faiss_index import FaissIndex
    from mote_rag.readers import read_corpus
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    work = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        corpus_path = scifact_subset(args.docs, work / "corpus.jsonl")
        t = time.perf_counter()
        exported = not args.model and not (CACHE / "manifest.json").is_file()
        model_dir = Path(args.model) if args.model else export_model()
        export_s = time.perf_counter() - t if exported else None
        corpus = read_corpus(corpus_path, id_field="_id", text_fields="title,text")
        runs: dict[str, dict] = {}

        def single(name: str, threads: int | None) -> None:
            before = load()
            encoder = OnnxEncoder(model_dir, threads=threads)  # graphs load lazily: only this one is opened
            encoder.load("search_document")
            start, cpu = time.perf_counter(), time.process_time()
            index = FaissIndex.build(
                encoder,
                corpus.texts,
                ids=corpus.ids,
                metadatas=corpus.metadatas,
                batch_size=args.batch_size,
                show_progress_bar=False,
            )
            index.save(work / name)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            runs[name] = {
                "seconds": round(seconds, 2),
                "docs_per_s": round(len(corpus) / seconds, 2),
                "cpu_seconds": round(cpu, 2),
                "docs_per_cpu_s": round(len(corpus) / cpu, 2),
                "threads": threads or "onnxruntime default",
                "loadavg_before": before,
                "loadavg_after": load(),
            }
            print(name, runs[name], flush=True)

        single("single-1t", 1)
        single("single-all", None)
        start = time.perf_counter()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        ray_init_s = time.perf_counter() - start
        try:
            for workers in (1, 2):
                name = f"ray-{workers}w"
                runs[name] = ray_run(corpus_path, work / name, model_dir, workers, args.batch_size, len(corpus))
                print(name, runs[name], flush=True)
        finally:
            ray.shutdown()
        ratios, per_core_ratios = run_ratios(runs)
        payload = {
            "texts": f"first {len(corpus)} SciFact abstracts (title + text)",
            "model": "MoTE upcycled from all-MiniLM-L6-v2, exported ONNX fp32 search_document graph",
            "max_seq_length": OnnxEncoder(model_dir).max_seq_length,
            "cpu_count": os.cpu_count(),
            "export_seconds": round(export_s, 1) if export_s else None,
            "ray_init_seconds": round(ray_init_s, 2),
            "ray_version": ray.__version__,
            "runs": runs,
            "ratios_wall_clock": ratios,
            "ratios_per_cpu_second": per_core_ratios,
            "per_core_docs_per_s": {
                "single-1t": runs["single-1t"]["docs_per_cpu_s"],
                "ray-1w": runs["ray-1w"]["docs_per_cpu_s"],
                "ray-2w": runs["ray-2w"]["docs_per_cpu_s"],
            },
            "sched_autogroup": autogroup(),
            "note": "2-core machine shared with other jobs (see loadavg): wall-clock docs/s measure the share of the "
            "cores each run got, not the code; with autogroup scheduling, Ray's workers (children of the "
            "raylet, another session) are scheduled as a group apart from this process. docs per CPU-second "
            "(process CPU time of the encoding processes) is the contention-free per-core throughput",
        }
        write_result("bench_ray", payload)
        print("wall clock:", ratios)
        print("per CPU-second:", per_core_ratios)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
