"""Does `mote-rag index --backend auto` pick the faster backend on this CPU? The three choices, timed on one corpus.

`mote-rag index --model MODEL --backend B` in a subprocess for B = torch, onnx, auto, on the same --docs SciFact
passages, interleaved over --rounds with the order rotated. Each run's figure is the time the command reports
("indexed N documents ... in S s": embed, build and save); the whole command's wall time is recorded beside it.
A fresh $MOTE_RAG_CACHE per benchmark run: the first auto run measures (its record says "measured now") and exports
the ONNX twin; the first onnx run reuses that export; later auto runs read the record. So round 1 of auto includes
the choice itself (its wall time reported apart as `first_auto_wall_s`), and the medians are over rounds 2 onwards.

Reference: torch (`--backend torch`). Ratios are docs/s against it. The result records the machine
(benchmarks/machine.py) and is written to benchmarks/results/bench_backend.json.

    python benchmarks/bench_backend.py [--docs 1000] [--rounds 3] [--model base] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_result
from bench_index_path import scifact_corpus
from machine import add_run_arguments, describe, start_run

BACKENDS = ("torch", "onnx", "auto")
REPORTED = re.compile(r" in ([0-9.]+)s -> ")
CHOSEN = re.compile(r"backend (torch|onnx): onnxruntime runs at ([0-9.]+)x torch's speed on this CPU \(([a-z ]+),")


def index_once(cli: list[str], corpus: Path, out: Path, model: str, backend: str, batch: int, env: dict) -> dict:
    command = [*cli, "index", str(corpus), "-o", str(out), "--model", model, "--backend", backend]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--batch-size", str(batch), "-q", "--overwrite"], capture_output=True, text=True, env=env
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"mote-rag index --backend {backend} failed ({done.returncode}): {done.stderr[-2000:]}")
    run = {"seconds": float(REPORTED.search(done.stdout).group(1)), "wall_s": round(wall, 2)}
    chosen = CHOSEN.search(done.stderr)
    if chosen:
        run.update(chosen=chosen.group(1), onnx_vs_torch=float(chosen.group(2)), reason=chosen.group(3))
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, texts=1000)
    parser.add_argument("--model", default="base", help="a torch model: base, a saved MoTE folder, a checkpoint")
    parser.add_argument("--no-write", action="store_true")
    parser.set_defaults(rounds=3, batch_size=64)
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be >= 2 (round 1 of auto includes the choice itself)")
    run = start_run(args)
    if run is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-backend-"))
    env = {**os.environ, "MOTE_RAG_CACHE": str(work / "cache"), "OMP_NUM_THREADS": str(args.threads)}
    cli = [str(Path(sys.executable).with_name("mote-rag"))]
    if not Path(cli[0]).is_file():
        cli = [sys.executable, "-m", "mote_rag.cli.main"]
    runs: dict[str, list[dict]] = {b: [] for b in BACKENDS}
    try:
        corpus = scifact_corpus(args.texts, work)
        for r in range(args.rounds):
            order = ("auto", "torch", "onnx") if r == 0 else BACKENDS[r % 3 :] + BACKENDS[: r % 3]
            for backend in order:  # auto first in round 1: it measures and exports on a cold cache
                runs[backend].append(index_once(cli, corpus, work / backend, args.model, backend, args.batch_size, env))
            print(f"round {r + 1}: " + ", ".join(f"{b} {runs[b][-1]['seconds']:.2f}s" for b in BACKENDS), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    machine = run.finish()
    run.warn_if_loaded()

    med = {b: statistics.median(x["seconds"] for x in runs[b][1:]) for b in BACKENDS}
    rate = {b: args.texts / med[b] for b in BACKENDS}
    ratio = {b: rate[b] / rate["torch"] for b in BACKENDS}
    chose = runs["auto"][-1].get("chosen")
    faster = "onnx" if rate["onnx"] > rate["torch"] else "torch"
    print(f"\n{describe(machine)}\n{args.texts} SciFact passages, model {args.model}, batch {args.batch_size}, docs/s:")
    for b in BACKENDS:
        print(f"  {b:6s} {rate[b]:8.1f}  {ratio[b]:.3f}x torch")
    first, later_wall = runs["auto"][0], statistics.median(x["wall_s"] for x in runs["auto"][1:])
    print(
        f"auto chose {chose} ({first.get('reason')} in round 1: onnx at {first.get('onnx_vs_torch')}x on its sample); "
        f"faster here: {faster}; auto's first command (export + timing + index) took {first['wall_s']:.1f}s wall, "
        f"later ones {later_wall:.1f}s\n{run.verdict()}"
    )
    if not args.no_write:
        write_result(
            "bench_backend",
            {
                "command": "python benchmarks/bench_backend.py " + " ".join(argv or sys.argv[1:]),
                "machine": machine,
                "setup": {
                    "texts": f"the first {args.texts} SciFact abstracts",
                    "model": args.model,
                    "batch_size": args.batch_size,
                    "rounds": args.rounds,
                    "statistic": "median of the seconds `mote-rag index` reports, rounds 2 onwards",
                },
                "runs": runs,
                "docs_per_s": rate,
                "ratio_vs_torch": ratio,
                "auto_chose": chose,
                "faster_here": faster,
                "auto_picked_the_faster": chose == faster,
                "first_auto_wall_s": runs["auto"][0]["wall_s"],
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
