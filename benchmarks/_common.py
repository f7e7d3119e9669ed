"""Helpers shared by the benchmarks: real texts from the shared data, timing, and atomic JSON results."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

from mote_rag.atomic import write_json_atomic
from mote_rag.readers import default_data_dir, iter_jsonl, resolve_file
from mote_rag.runtime.cpu import cpu_model_name

RESULTS = Path(__file__).resolve().parent / "results"


def real_texts(n: int = 2000, data_dir: Path | None = None) -> list[str]:
    """n real texts of varied length: SciFact abstracts, MedQuAD answers, Quora questions, STS-B sentences."""
    data = Path(data_dir or default_data_dir())
    sources = [
        (data / "retrieval/scifact/corpus.jsonl", lambda r: f"{r.get('title', '')} {r['text']}".strip()),
        (data / "retrieval/medquad/corpus.jsonl", lambda r: r["text"]),
        (data / "retrieval/quora_dup/corpus.jsonl", lambda r: r["text"]),
        (data / "sts/stsb/test.jsonl", lambda r: r["sentence1"]),
    ]
    per_source = n // len(sources)
    texts: list[str] = []
    for i, (path, get) in enumerate(sources):
        want = per_source if i < len(sources) - 1 else n - len(texts)
        for row in iter_jsonl(resolve_file(path)):
            texts.append(get(row))
            want -= 1
            if want == 0:
                break
    return texts


def timed(fn, repeat: int = 1) -> float:
    """Best wall time of `repeat` runs (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def write_result(name: str, payload: dict) -> Path:
    payload = {
        "benchmark": name,
        "machine": {"python": platform.python_version(), "cpu": cpu_model_name(), "system": platform.platform()},
        **payload,
    }
    path = RESULTS / f"{name}.json"
    write_json_atomic(path, payload)
    print(f"wrote {path}")
    return path


def dump(payload: dict) -> str:
    return json.dumps(payload, indent=2)
