"""Encoding time of every MoTE task path vs the dense base, in torch, same texts and threads, one run.

Reference: the dense all-MiniLM-L6-v2 (MoTEModel.dense, same tokenizer, pooling and prefixes).
Goal: MoTE task path / dense <= 1.05 (routing a whole sequence to one expert costs what the dense block costs).

Run: python benchmarks/bench_encode.py [--n 2000] [--threads 2] [--repeat 3]
"""

from __future__ import annotations

import argparse

import torch
from _common import real_texts, timed, write_result

from mote_rag import MoTEModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3, help="best of N timings per model (interleaved)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts = real_texts(args.n)
    dense = MoTEModel.dense()
    mote = MoTEModel.upcycle()
    encoders = {"dense": (dense, "search_document")}
    encoders.update({f"mote:{t}": (mote, t) for t in mote.tasks.names})
    for model, task in encoders.values():  # warm-up
        model.encode(texts[:64], task=task, batch_size=args.batch_size)
    times = {name: float("inf") for name in encoders}
    for _ in range(args.repeat):  # interleave so machine noise hits every path alike
        for name, (model, task) in encoders.items():
            times[name] = min(
                times[name],
                timed(lambda model=model, task=task: model.encode(texts, task=task, batch_size=args.batch_size)),
            )
    ratios = {name: times[name] / times["dense"] for name in encoders if name != "dense"}
    print(f"{args.n} real texts, batch {args.batch_size}, {args.threads} threads, best of {args.repeat}")
    print(f"{'path':<24}{'seconds':>10}{'texts/s':>10}{'vs dense':>10}")
    for name, t in times.items():
        print(f"{name:<24}{t:>10.2f}{args.n / t:>10.1f}{times[name] / times['dense']:>10.3f}")
    worst = max(ratios.values())
    print(f"worst MoTE/dense time ratio: {worst:.3f} (goal <= 1.05): {'PASS' if worst <= 1.05 else 'MISS'}")
    write_result(
        "bench_encode",
        {
            "texts": args.n,
            "threads": args.threads,
            "batch_size": args.batch_size,
            "repeat": args.repeat,
            "reference": "dense all-MiniLM-L6-v2 in torch (MoTEModel.dense)",
            "seconds": times,
            "ratio_vs_dense": ratios,
            "worst_ratio": worst,
            "goal": 1.05,
        },
    )


if __name__ == "__main__":
    main()
