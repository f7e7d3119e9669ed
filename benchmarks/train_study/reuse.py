"""Evaluation reuse by path fingerprint. A dataset's score depends only on the task paths it reads (the query and
document paths for retrieval, one path for the others), so it is stored under those paths' fingerprints
(`path_fingerprint(task)`) and any later run whose paths are bit-identical takes it instead of evaluating again:
a frozen-trunk retrieval recipe leaves its classification and clustering paths the base's, and a WiSE model at
alpha 1 has the trained model's paths. No figure changes; only datasets with a changed path are evaluated."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from mote_rag.atomic import write_json_atomic
from mote_rag.evaluation.runner import type_averages
from mote_rag.evaluation.suite import DatasetSpec, Suite

TASK_OPTIONS = ("task", "query_task", "doc_task")


def reads(spec: DatasetSpec) -> list[str]:
    """The task paths a dataset is embedded with."""
    return sorted({spec.option(k) for k in TASK_OPTIONS} - {None})


def path_fingerprints(model) -> dict[str, str]:
    """Every task path's fingerprint, recorded in each run's result so the run's scores can be indexed later."""
    return {task: model.path_fingerprint(task) for task in model.tasks.names}


class ScoreStore:
    """One JSON per (dataset, fingerprints of the paths it reads, backend, data folder): the dataset's result and
    the run that produced it."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _file(self, spec: DatasetSpec, data_root: Path, paths: dict[str, str], backend: str) -> Path:
        key = {
            "spec": spec.to_dict(),
            "data": str(spec.resolve(data_root)),
            "paths": {t: paths[t] for t in reads(spec)},
            "backend": backend,
        }
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
        return self.root / spec.name / f"{digest}.json"

    def get(self, spec: DatasetSpec, data_root: Path, paths: dict[str, str], backend: str) -> dict | None:
        f = self._file(spec, data_root, paths, backend)
        return json.loads(f.read_text()) if f.is_file() else None

    def put(self, spec, data_root: Path, paths: dict[str, str], backend: str, result: dict, source: str) -> None:
        f = self._file(spec, data_root, paths, backend)
        if not f.is_file():
            clean = {k: v for k, v in result.items() if k != "reused_from"}
            write_json_atomic(f, {"source": source, "result": clean})

    def seed(self, run: dict, suite: Suite) -> None:
        """Index a finished run's scores (it must carry `path_fingerprints` and `backend`)."""
        root = suite.root_dir()
        for spec in suite.datasets:
            if spec.name in run["datasets"]:
                source = run["datasets"][spec.name].get("reused_from", run["model"])
                self.put(spec, root, run["path_fingerprints"], run["backend"], run["datasets"][spec.name], source)


def evaluate_reusing(model, suite: Suite, store: ScoreStore, run_name: str, cache_dir: str) -> dict:
    """evaluate() on the datasets that read a path no earlier run had; the others take the stored result (marked
    `reused_from: <run>`). The result has evaluate()'s fields plus `path_fingerprints` and `backend`."""
    from mote_rag.evaluation import evaluate

    paths, backend, root = path_fingerprints(model), type(model).__name__, suite.root_dir()
    found = {s.name: store.get(s, root, paths, backend) for s in suite.datasets}
    todo = tuple(s for s in suite.datasets if found[s.name] is None)
    result = None
    if todo:
        partial = Suite(suite.name, todo, suite.root)
        result = evaluate(model, suite=partial, name=run_name, show_progress=False, cache_dir=cache_dir)
    reused = {n: f["source"] for n, f in found.items() if f is not None}
    if reused:
        print(
            f"  {len(reused)} datasets read only paths already evaluated: reused from "
            + ", ".join(sorted(set(reused.values()))),
            flush=True,
        )
    datasets = {
        s.name: (
            {**found[s.name]["result"], "reused_from": found[s.name]["source"]}
            if s.name in reused
            else result["datasets"][s.name]
        )
        for s in suite.datasets
    }
    averages = type_averages(datasets)
    out = {
        **(result or {"suite": suite.name}),
        "model": run_name,
        "fingerprint": model.fingerprint,
        "datasets": datasets,
        "averages": averages,
        "average_of_types": float(np.mean(list(averages.values()))),
        "path_fingerprints": paths,
        "backend": backend,
    }
    store.seed(out, suite)
    return out
