"""Paired bootstrap confidence intervals for differences between models, per dataset and per group of datasets.

Every evaluation result carries, per dataset, the *units* its main score is computed from (see the runners):
- `{"scores": [...]}`: a mean over units (per-query nDCG@10 or AP, per-row classification hits);
- `{"pred": [...], "gold": [...]}`: Spearman of cosine vs gold score (STS);
- `{"pred": [...], "label": [...]}`: average precision of cosine vs 0/1 label (pair classification);
- `{"labels": [[...]], "clusters": [[...]]}`: mean V-measure over k-means runs (clustering).

Paired: one bootstrap draw resamples the same queries/pairs/rows for both models, so what the two models share
(hard queries, easy pairs) cancels. With several seeds per model, each draw also resamples the seeds of each
model (with replacement) and averages over them, so seed-to-seed variance widens the interval too. A group
(a task type, in or out of the training mix) averages the per-dataset deltas of the same draw. The interval is the
2.5th-97.5th percentile of the draws; the point estimate is the difference of the mean main scores. A difference
whose interval contains 0 is a tie.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

N_BOOT = 1000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """delta = mean score of model b - mean score of model a (points), with its bootstrap interval."""

    delta: float
    low: float
    high: float
    n_units: int = 0

    @property
    def tie(self) -> bool:
        return self.low <= 0.0 <= self.high

    def to_dict(self) -> dict:
        return {
            "delta": round(self.delta, 4),
            "low": round(self.low, 4),
            "high": round(self.high, 4),
            "n_units": self.n_units,
            "tie": self.tie,
        }

    def __str__(self) -> str:
        return f"{self.delta:+.2f} [{self.low:+.2f}, {self.high:+.2f}]"


def unit_count(units: Mapping) -> int:
    """How many resampling units a dataset's result has (queries, pairs or rows)."""
    if "scores" in units:
        return len(units["scores"])
    if "pred" in units:
        return len(units["pred"])
    if "labels" in units:
        return len(units["labels"][0])
    raise ValueError(f"unknown unit kind with keys {sorted(units)}")


def _arrays(units: Mapping) -> tuple:
    if "scores" in units:
        return ("mean", np.asarray(units["scores"], dtype=np.float64))
    if "gold" in units:
        return ("spearman", np.asarray(units["pred"], dtype=np.float64), np.asarray(units["gold"], dtype=np.float64))
    if "label" in units:
        return ("ap", np.asarray(units["pred"], dtype=np.float64), np.asarray(units["label"], dtype=np.int64))
    if "labels" in units:
        return ("v_measure", np.asarray(units["labels"], dtype=np.int64), np.asarray(units["clusters"], dtype=np.int64))
    raise ValueError(f"unknown unit kind with keys {sorted(units)}")


def _rank(x: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x)


def _spearman(pred: np.ndarray, gold: np.ndarray) -> float:
    a, b = _rank(pred), _rank(gold)
    a = a - a.mean()
    b = b - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def _average_precision(pred: np.ndarray, label: np.ndarray) -> float:
    """sklearn's average_precision_score (ties grouped by threshold), vectorised for bootstrap draws."""
    order = np.argsort(-pred, kind="mergesort")
    p, y = pred[order], label[order]
    tp = np.cumsum(y)
    last = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]  # last index of each distinct threshold
    tps = tp[last]
    if tps[-1] == 0:
        return 0.0
    precision = tps / (last + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _entropy(counts: np.ndarray) -> float:
    counts = counts[counts > 0].astype(np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def v_measure(labels: np.ndarray, clusters: np.ndarray) -> float:
    """V-measure (beta = 1) from the contingency table: sklearn's v_measure_score, fast enough for bootstraps."""
    _, li = np.unique(labels, return_inverse=True)
    _, ci = np.unique(clusters, return_inverse=True)
    table = np.zeros((li.max() + 1, ci.max() + 1))
    np.add.at(table, (li, ci), 1.0)
    n = table.sum()
    h_c, h_k = _entropy(table.sum(axis=1)), _entropy(table.sum(axis=0))
    nz = table > 0
    outer = np.outer(table.sum(axis=1), table.sum(axis=0))
    mi = float((table[nz] / n * (np.log(table[nz]) - np.log(outer[nz]) + np.log(n))).sum())
    homogeneity = 1.0 if h_c == 0 else mi / h_c
    completeness = 1.0 if h_k == 0 else mi / h_k
    if homogeneity + completeness == 0:
        return 0.0
    return 2 * homogeneity * completeness / (homogeneity + completeness)


def statistic(arrays: tuple, idx: np.ndarray | None = None) -> float:
    """The main score (x100) of one dataset on the units `idx` (all units when None)."""
    kind = arrays[0]
    if kind == "mean":
        x = arrays[1] if idx is None else arrays[1][idx]
        return 100.0 * float(x.mean())
    if kind in ("spearman", "ap"):
        a, b = (arrays[1], arrays[2]) if idx is None else (arrays[1][idx], arrays[2][idx])
        return 100.0 * (_spearman(a, b) if kind == "spearman" else _average_precision(a, b))
    labels, clusters = arrays[1], arrays[2]
    cols = slice(None) if idx is None else idx
    return 100.0 * float(np.mean([v_measure(labels[r, cols], clusters[r, cols]) for r in range(labels.shape[0])]))


def _seed_draws(rng: np.random.Generator, n_seeds: int, n_boot: int) -> np.ndarray:
    """(n_boot, n_seeds) seed indices drawn with replacement; one seed means no resampling."""
    if n_seeds == 1:
        return np.zeros((n_boot, 1), dtype=np.int64)
    return rng.integers(0, n_seeds, size=(n_boot, n_seeds))


class PairedBootstrap:
    """Bootstrap draws shared by every dataset and group of one comparison (model a vs model b, seeds each)."""

    def __init__(
        self, a: Sequence[Mapping], b: Sequence[Mapping], n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL
    ):
        """`a`, `b`: evaluation results (one per seed) of the reference model and the compared model."""
        if not a or not b:
            raise ValueError("each model needs at least one result")
        if not 0 < level < 1:
            raise ValueError(f"level must be in (0, 1), got {level}")
        self.a, self.b, self.n_boot, self.level = list(a), list(b), int(n_boot), level
        self.rng = np.random.default_rng(seed)
        self.seeds_a = _seed_draws(self.rng, len(self.a), self.n_boot)
        self.seeds_b = _seed_draws(self.rng, len(self.b), self.n_boot)
        self._draws: dict[str, np.ndarray] = {}

    def datasets(self) -> list[str]:
        """Datasets that every result of both models has, with units."""
        names = [d for d, r in self.a[0]["datasets"].items() if "units" in r]
        return [d for d in names if all(d in r["datasets"] and "units" in r["datasets"][d] for r in self.a + self.b)]

    def _units(self, results: Sequence[Mapping], dataset: str) -> list[tuple]:
        return [_arrays(r["datasets"][dataset]["units"]) for r in results]

    def draws(self, dataset: str) -> np.ndarray:
        """(n_boot,) bootstrap deltas b - a on `dataset` (computed once, cached)."""
        if dataset in self._draws:
            return self._draws[dataset]
        ua, ub = self._units(self.a, dataset), self._units(self.b, dataset)
        n = unit_count(self.a[0]["datasets"][dataset]["units"])
        for r in self.a + self.b:
            m = unit_count(r["datasets"][dataset]["units"])
            if m != n:
                raise ValueError(
                    f"{dataset}: results were scored on different units ({n} vs {m}); "
                    "compare results of the same suite and limits"
                )
        rng = np.random.default_rng([zlib.crc32(dataset.encode()), int(self.rng.integers(2**32))])
        idx = rng.integers(0, n, size=(self.n_boot, n))
        sa, sb = self._stats(ua, idx), self._stats(ub, idx)  # (n_boot, seeds)
        rows = np.arange(self.n_boot)[:, None]
        out = sb[rows, self.seeds_b].mean(axis=1) - sa[rows, self.seeds_a].mean(axis=1)
        self._draws[dataset] = out
        return out

    @staticmethod
    def _stats(units: list[tuple], idx: np.ndarray) -> np.ndarray:
        """(n_boot, seeds) statistic of each seed's units on each draw; means are vectorised."""
        cols = []
        for u in units:
            if u[0] == "mean":
                cols.append(100.0 * u[1][idx].mean(axis=1))
            else:
                cols.append(np.array([statistic(u, row) for row in idx]))
        return np.stack(cols, axis=1)

    def point(self, dataset: str) -> float:
        mean = lambda rs: float(np.mean([r["datasets"][dataset]["main_score"] for r in rs]))  # noqa: E731
        return mean(self.b) - mean(self.a)

    def interval(self, datasets: Sequence[str]) -> Interval:
        """Delta of the mean over `datasets` (one dataset, a type, or a mean of type means via `group`)."""
        return self.group({"all": list(datasets)})

    def group(self, groups: Mapping[str, Sequence[str]]) -> Interval:
        """Delta of the mean over groups of the mean over each group's datasets (e.g. mean of type averages)."""
        groups = {g: list(ds) for g, ds in groups.items() if ds}
        if not groups:
            raise ValueError("no dataset to compare")
        draws = np.mean([np.mean([self.draws(d) for d in ds], axis=0) for ds in groups.values()], axis=0)
        point = float(np.mean([np.mean([self.point(d) for d in ds]) for ds in groups.values()]))
        tail = (1 - self.level) / 2 * 100
        low, high = np.percentile(draws, [tail, 100 - tail])
        units = sum(unit_count(self.a[0]["datasets"][d]["units"]) for ds in groups.values() for d in ds)
        return Interval(point, float(low), float(high), units)
