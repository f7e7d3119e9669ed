"""The index path has no overhead: documents/s into an index against the raw encoder, on the same real texts.

Four measures on the same --docs SciFact passages (abstracts, titles as metadata: mote_rag.readers.read_corpus, as
`mote-rag index` reads them), the same encoder folder and the same batch size, interleaved round by round so a
change in the machine's load hits them alike:

    raw          encoder.encode_document(texts, batch_size=B)                  the reference
    faiss_add    FaissIndex(encoder).add(texts, ids, metadatas, batch_size=B)
    store        MoTEVectorStore(MoTEEmbeddings(encoder, batch_size=B)).add_texts(texts, metadatas, ids=ids)
    cli          `mote-rag index corpus.jsonl -o DIR --model FOLDER --batch-size B -q` in a subprocess: its whole
                 wall time (Python start, imports, reading the corpus, opening the model, embedding, saving),
                 nothing subtracted; the encode-only part beside it is the raw encoder's time in the same round

Each figure is the median over --rounds of documents/s; the ratio is against the raw encoder's median. Target:
each >= 0.95x. The model defaults to an fp32 ONNX export of the embedded base (all-MiniLM-L6-v2), made once under
~/.cache/mote-rag/bench_index_path (nothing is downloaded). The result records the machine (benchmarks/machine.py:
CPU model and flags, versions, threads, the load average at start and end, and whether the run was idle).

    python benchmarks/bench_index_path.py [--docs 1000] [--batch-size 32] [--rounds 3] [--model FOLDER]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from machine import Run, describe

from mote_rag.readers import default_data_dir, iter_jsonl, read_corpus, resolve_file

TARGET = 0.95
MEASURES = ("raw", "faiss_add", "store", "cli")


def scifact_corpus(n: int, folder: Path) -> Path:
    """The first `n` SciFact passages as a corpus JSONL file (id, title, text), the format `mote-rag index` reads."""
    path = folder / "scifact.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for i, row in enumerate(iter_jsonl(resolve_file(default_data_dir() / "retrieval/scifact/corpus.jsonl"))):
            if i == n:
                break
            fh.write(json.dumps({"_id": row["_id"], "title": row.get("title", ""), "text": row["text"]}) + "\n")
    return path


def default_model() -> Path:
    """An fp32 ONNX export of the embedded base, made once (the torch-free serving path `mote-rag index` uses)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mote-rag" / "bench_index_path"
    folder = cache / "onnx-base"
    if not (folder / "manifest.json").is_file():
        from mote_rag.loading import load_encoder

        print(f"exporting the embedded base to {folder} (once)", flush=True)
        load_encoder("base").export_onnx(folder)
    return folder


def report(args, argv, seconds: dict, cli_reported: list, n: int, model: Path, encoder: str, machine: dict) -> None:
    """Print the figures and ratios, and write benchmarks/results/bench_index_path.json (atomically)."""
    batch = args.batch_size
    med = {m: statistics.median(seconds[m]) for m in MEASURES}
    rates = {m: n / med[m] for m in MEASURES}
    ratios = {m: rates[m] / rates["raw"] for m in MEASURES}
    cli_parts = {
        "wall_s": med["cli"],
        "reported_by_cli_s": statistics.median(cli_reported),  # encode + build + save, inside the command
        "encode_only_s": med["raw"],  # the raw encoder on the same texts, same round: what embedding costs
        "start_read_open_s": med["cli"] - statistics.median(cli_reported),  # Python, imports, corpus, model
    }
    print(f"\n{n} SciFact passages, batch {batch}, model {model}, {args.rounds} rounds (median), docs/s:")
    for m in MEASURES:
        verdict = "" if m == "raw" else ("  ok" if ratios[m] >= TARGET else f"  BELOW {TARGET}")
        print(f"  {m:10s} {rates[m]:8.1f}  {ratios[m]:.3f}x raw{verdict}")
    print(
        f"  cli: {cli_parts['wall_s']:.2f}s wall = {cli_parts['start_read_open_s']:.2f}s start/read/open + "
        f"{cli_parts['reported_by_cli_s']:.2f}s index (raw encode of the same texts: {cli_parts['encode_only_s']:.2f}s)"
    )
    print(
        f"{describe(machine)}; load average {machine['load_average_start'][0]:.2f} at start, "
        f"{machine['load_average_end'][0]:.2f} at end: {'idle' if machine['idle'] else 'NOT idle'}"
    )
    if not args.no_write:
        write_result(
            "bench_index_path",
            {
                "command": "python benchmarks/bench_index_path.py " + " ".join(argv or sys.argv[1:]),
                "machine": machine,
                "setup": {
                    "texts": f"the first {n} SciFact abstracts (titles as metadata), mote_rag.readers.read_corpus",
                    "model": str(model),
                    "encoder": encoder,
                    "batch_size": batch,
                    "rounds": args.rounds,
                    "statistic": "median seconds over rounds; measures interleaved, their order rotated each round",
                },
                "seconds": seconds,
                "docs_per_s": rates,
                "ratio_vs_raw": ratios,
                "target": TARGET,
                "meets_target": {m: ratios[m] >= TARGET for m in MEASURES if m != "raw"},
                "cli_parts": cli_parts,
            },
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="encoder folder (default: fp32 ONNX export of the base)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file alone")
    parser.add_argument("--threads", type=int, default=2, help="recorded; set OMP_NUM_THREADS to change it")
    parser.add_argument("--settle-s", type=float, default=150, help="wait at most this long for the load to decay")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from langchain_mote import MoTEEmbeddings, MoTEVectorStore

    from mote_rag.index.faiss_index import FaissIndex
    from mote_rag.loading import load_encoder

    run = Run(args.threads, settle_s=args.settle_s)
    model = Path(args.model) if args.model else default_model()
    work = Path(tempfile.mkdtemp(prefix="bench-index-path-"))
    cli = [str(Path(sys.executable).with_name("mote-rag"))]
    if not Path(cli[0]).is_file():
        cli = [sys.executable, "-m", "mote_rag.cli.main"]
    try:
        corpus_file = scifact_corpus(args.docs, work)
        corpus = read_corpus(corpus_file)
        texts, ids, metas = corpus.texts, corpus.ids, corpus.metadatas
        n, batch = len(texts), args.batch_size
        encoder = load_encoder(model)
        encoder.encode_document(texts[:batch], batch_size=batch)  # warm-up: sessions open, caches filled

        def raw():
            encoder.encode_document(texts, batch_size=batch)

        def faiss_add():
            FaissIndex(encoder).add(texts, ids=ids, metadatas=metas, batch_size=batch)

        def store():
            MoTEVectorStore(MoTEEmbeddings(encoder, batch_size=batch)).add_texts(texts, metas, ids=ids)

        cli_reported = []

        def cli_index():
            out = work / "index"
            command = [*cli, "index", str(corpus_file), "-o", str(out), "--model", str(model)]
            done = subprocess.run(
                [*command, "--batch-size", str(batch), "-q", "--overwrite"], capture_output=True, text=True
            )
            if done.returncode != 0:
                raise RuntimeError(f"mote-rag index failed ({done.returncode}): {done.stderr[-2000:]}")
            # "indexed N documents ... in 12.3s -> DIR": the CLI's own time (embed, build, save)
            cli_reported.append(float(done.stdout.rsplit(" in ", 1)[1].split("s ->", 1)[0]))

        runs = {"raw": raw, "faiss_add": faiss_add, "store": store, "cli": cli_index}
        seconds: dict[str, list[float]] = {m: [] for m in MEASURES}
        for r in range(args.rounds):
            for name in MEASURES[r % 4 :] + MEASURES[: r % 4]:  # rotated: no measure always runs first
                start = time.perf_counter()
                runs[name]()
                seconds[name].append(time.perf_counter() - start)
            print(f"round {r + 1}: " + ", ".join(f"{m} {seconds[m][-1]:.2f}s" for m in MEASURES), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    machine = run.finish()
    run.warn_if_loaded()
    report(args, argv, seconds, cli_reported, n, model, type(encoder).__name__, machine)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
