"""What to evaluate: a Suite is a named, declared list of DatasetSpecs (type, folder, split, options).

`default` holds every EVAL split listed in shared/data/README.md (MedQuAD's corpus capped, see below; `full`
lifts the cap); `quick` is a subset-limited version for
training loops. A user suite is a JSON file {"name": ..., "datasets": [{"name", "type", "path", "split",
"options"}]} whose relative paths resolve against the JSON file's folder, so any folders in the same
formats (BEIR, STS/pair/labelled JSON Lines, MTEB reranking JSON Lines) can be evaluated with the same code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

TASK_TYPES = ("retrieval", "reranking", "sts", "pair_classification", "classification", "clustering")

# Which encoder task path reads which side (nomic's prompt table; STS and pairs default to classification).
DEFAULT_TASK_PATHS = {
    "retrieval": {"query_task": "search_query", "doc_task": "search_document"},
    "reranking": {"query_task": "search_query", "doc_task": "search_document"},
    "sts": {"task": "classification"},
    "pair_classification": {"task": "classification"},
    "classification": {"task": "classification"},
    "clustering": {"task": "clustering"},
}

LIMIT_KEYS = ("max_corpus", "max_queries", "max_rows")


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a suite. `path` is a folder (retrieval/reranking, classification with splits) or a
    .jsonl file (STS, pairs, clustering, classification by cross-validation); `options` override the
    type's protocol defaults (task paths, n_experiments, samples_per_label, limits, ...)."""

    name: str
    type: str
    path: str
    split: str = "test"
    options: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in TASK_TYPES:
            raise ValueError(f"dataset {self.name!r}: unknown type {self.type!r}; valid: {', '.join(TASK_TYPES)}")

    def option(self, key: str, default=None):
        if key in self.options:
            return self.options[key]
        return DEFAULT_TASK_PATHS[self.type].get(key, default)

    def resolve(self, root: Path) -> Path:
        p = Path(os.path.expanduser(self.path))
        return p if p.is_absolute() else (root / p)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Suite:
    name: str
    datasets: tuple[DatasetSpec, ...]
    root: str | None = None  # folder relative paths resolve against; None -> the shared data folder

    def root_dir(self) -> Path:
        if self.root is not None:
            return Path(self.root)
        from ..readers import default_data_dir

        return default_data_dir()

    def select(self, datasets: Iterable[str] | None = None, types: Iterable[str] | None = None) -> Suite:
        """A sub-suite by dataset names and/or task types (unknown names are an error, listing valid ones)."""
        chosen = list(self.datasets)
        if types:
            types = list(types)
            bad = [t for t in types if t not in TASK_TYPES]
            if bad:
                raise ValueError(f"unknown task type(s) {bad}; valid: {', '.join(TASK_TYPES)}")
            chosen = [d for d in chosen if d.type in types]
        if datasets:
            datasets = list(datasets)
            names = {d.name for d in self.datasets}
            bad = [n for n in datasets if n not in names]
            if bad:
                raise ValueError(f"unknown dataset(s) {bad} in suite {self.name!r}; valid: {', '.join(sorted(names))}")
            chosen = [d for d in chosen if d.name in datasets]
        if not chosen:
            raise ValueError(f"the selection leaves suite {self.name!r} with no datasets")
        return replace(self, datasets=tuple(chosen))

    def routed(self, document_task: str, query_task: str) -> Suite:
        """The suite with its retrieval and reranking sets read through other paths (a collection's experts), unless
        a dataset names its own; the other types keep theirs."""
        out = []
        for d in self.datasets:
            if d.type in ("retrieval", "reranking"):
                opts = {"doc_task": document_task, "query_task": query_task, **d.options}
                d = replace(d, options=opts)
            out.append(d)
        return replace(self, datasets=tuple(out))

    def with_limits(self, limits: dict | None) -> Suite:
        """Apply max_corpus / max_queries / max_rows to every dataset (smaller of suite's and given)."""
        if not limits:
            return self
        bad = [k for k in limits if k not in LIMIT_KEYS]
        if bad:
            raise ValueError(f"unknown limit(s) {bad}; valid: {', '.join(LIMIT_KEYS)}")
        out = []
        for d in self.datasets:
            opts = dict(d.options)
            for k, v in limits.items():
                if v is None:
                    continue
                if not isinstance(v, int) or v < 1:
                    raise ValueError(f"limit {k} must be a positive integer, got {v!r}")
                opts[k] = min(v, opts[k]) if k in opts else v
            out.append(replace(d, options=opts))
        return replace(self, datasets=tuple(out))


def _d(name, type_, path, split="test", **options) -> DatasetSpec:
    return DatasetSpec(name, type_, path, split, options)


# MedQuAD's 15,809 long answers alone take ~13 min to embed on 2 cores, so `default` (budget: 20 min for the
# whole suite on 2 cores) keeps every relevant answer of the 1,500 test queries plus a seeded sample of the
# rest, 5,000 docs in all; the `full` suite embeds the whole corpus.
MEDQUAD_CORPUS = 5000

# Classification protocol defaults (MTEB): 10 experiments, 8 samples per label, LogisticRegression(max_iter=100).
# Sets with no split (MR, CR, SUBJ, MPQA): stratified sample of 2,048 rows (MTEB's cap on test sets), 10-fold
# stratified CV, each fold one experiment (train = 8 per label drawn from the other 9 folds).
DEFAULT = Suite(
    "default",
    (
        _d("scifact", "retrieval", "retrieval/scifact"),
        _d("medquad", "retrieval", "retrieval/medquad", max_corpus=MEDQUAD_CORPUS),
        _d("quora_dup", "retrieval", "retrieval/quora_dup", ignore_identical_ids=True),
        _d("scifact_rerank", "reranking", "retrieval/scifact"),
        _d("medquad_rerank", "reranking", "retrieval/medquad", max_corpus=MEDQUAD_CORPUS),
        _d("quora_dup_rerank", "reranking", "retrieval/quora_dup", ignore_identical_ids=True),
        _d("stsb", "sts", "sts/stsb/test.jsonl"),
        _d("sickr", "sts", "sts/sickr/test.jsonl"),
        _d("sts12", "sts", "sts/sts12/test.jsonl"),
        _d("sts13", "sts", "sts/sts13/test.jsonl"),
        _d("sts14", "sts", "sts/sts14/test.jsonl"),
        _d("sts15", "sts", "sts/sts15/test.jsonl"),
        _d("mrpc", "pair_classification", "paraphrase/mrpc_test.jsonl"),
        _d("banking77", "classification", "classification/banking77", train_split="train"),
        _d("trec", "classification", "classification/trec", train_split="train"),
        _d("sst2", "classification", "classification/sst2", train_split="train"),
        _d("mr", "classification", "classification/mr/all.jsonl", split="all", max_rows=2048),
        _d("cr", "classification", "classification/cr/all.jsonl", split="all", max_rows=2048),
        _d("subj", "classification", "classification/subj/all.jsonl", split="all", max_rows=2048),
        _d("mpqa", "classification", "classification/mpqa/all.jsonl", split="all", max_rows=2048),
        _d("ag_news_clustering", "clustering", "clustering/ag_news/test.jsonl", max_rows=4096),
        _d("banking77_clustering", "clustering", "clustering/banking77/test.jsonl"),
    ),
)

# A few minutes on 2 cores: one dataset per type family, subsets with fixed seeds. Figures are for comparing
# models with each other, not with published numbers.
QUICK = Suite(
    "quick",
    (
        _d("scifact", "retrieval", "retrieval/scifact", max_corpus=1000, max_queries=100),
        _d(
            "quora_dup", "retrieval", "retrieval/quora_dup", ignore_identical_ids=True, max_corpus=2000, max_queries=200
        ),
        _d("scifact_rerank", "reranking", "retrieval/scifact", max_corpus=1000, max_queries=100),
        _d("stsb", "sts", "sts/stsb/test.jsonl"),
        _d("sickr", "sts", "sts/sickr/test.jsonl", max_rows=1000),
        _d("mrpc", "pair_classification", "paraphrase/mrpc_test.jsonl", max_rows=800),
        _d(
            "banking77",
            "classification",
            "classification/banking77",
            train_split="train",
            max_rows=1000,
            n_experiments=3,
        ),  # 3 x 616 sampled training texts instead of 10 x 616: for relative comparisons only
        _d("trec", "classification", "classification/trec", train_split="train"),
        _d("banking77_clustering", "clustering", "clustering/banking77/test.jsonl", max_rows=1500),
    ),
)

# Model comparisons (benchmarks/train_compare.py): every type, datasets in the default training mix and outside it
# (STS-B, STS12-15, MR, CR, SUBJ, MPQA, AG News), subsets sized so that one model takes a few minutes on 2 cores
# on an idle machine; paired bootstrap intervals are then about +-1-2 points per type.
COMPARE = Suite(
    "compare",
    (
        _d("scifact", "retrieval", "retrieval/scifact", max_corpus=500),
        _d("medquad", "retrieval", "retrieval/medquad", max_corpus=500, max_queries=300),
        _d(
            "quora_dup", "retrieval", "retrieval/quora_dup", ignore_identical_ids=True, max_corpus=1000, max_queries=400
        ),
        _d("scifact_rerank", "reranking", "retrieval/scifact", max_corpus=500),
        _d("stsb", "sts", "sts/stsb/test.jsonl"),
        _d("sickr", "sts", "sts/sickr/test.jsonl", max_rows=500),
        _d("sts12", "sts", "sts/sts12/test.jsonl", max_rows=500),
        _d("sts13", "sts", "sts/sts13/test.jsonl", max_rows=500),
        _d("sts14", "sts", "sts/sts14/test.jsonl", max_rows=500),
        _d("sts15", "sts", "sts/sts15/test.jsonl", max_rows=500),
        _d("mrpc", "pair_classification", "paraphrase/mrpc_test.jsonl"),
        _d(
            "banking77",
            "classification",
            "classification/banking77",
            train_split="train",
            max_rows=600,
            n_experiments=3,
        ),
        _d("trec", "classification", "classification/trec", train_split="train"),
        _d("sst2", "classification", "classification/sst2", train_split="train", max_rows=500),
        _d("mr", "classification", "classification/mr/all.jsonl", split="all", max_rows=500),
        _d("cr", "classification", "classification/cr/all.jsonl", split="all", max_rows=500),
        _d("subj", "classification", "classification/subj/all.jsonl", split="all", max_rows=500),
        _d("mpqa", "classification", "classification/mpqa/all.jsonl", split="all", max_rows=500),
        _d("banking77_clustering", "clustering", "clustering/banking77/test.jsonl", max_rows=1000),
        _d("ag_news_clustering", "clustering", "clustering/ag_news/test.jsonl", max_rows=1000),
    ),
)

FULL = Suite(
    "full",
    tuple(
        replace(d, options={k: v for k, v in d.options.items() if k != "max_corpus"})
        if d.name.startswith("medquad")
        else d
        for d in DEFAULT.datasets
    ),
)

SUITES = {"default": DEFAULT, "quick": QUICK, "full": FULL, "compare": COMPARE}


def get_suite(suite: str | Suite | Sequence[str] | os.PathLike) -> Suite:
    """'default' | 'quick' | a Suite | a list of dataset names from the default suite | a suite JSON path."""
    if isinstance(suite, Suite):
        return suite
    if isinstance(suite, (str, os.PathLike)):
        key = os.fspath(suite)
        if key in SUITES:
            return SUITES[key]
        if key.endswith(".json") or Path(key).is_file():
            return load_suite(key)
        raise ValueError(
            f"unknown suite {key!r}: use {', '.join(SUITES)}, a list of dataset names, or a suite JSON file"
        )
    names = list(suite)
    if not all(isinstance(n, str) for n in names):
        raise TypeError("a suite given as a list must be a list of dataset names")
    return replace(DEFAULT.select(datasets=names), name="custom")


def load_suite(path: str | os.PathLike) -> Suite:
    """Read a user suite from JSON; relative dataset paths resolve against the JSON file's folder."""
    from ..schema import read_json_file

    p = Path(path)
    raw = read_json_file(p, "suite")
    if not isinstance(raw, dict) or not isinstance(raw.get("datasets"), list) or not raw["datasets"]:
        raise ValueError(f'{p}: expected {{"name": ..., "datasets": [{{"name", "type", "path"}}, ...]}}')
    specs = []
    for i, item in enumerate(raw["datasets"]):
        if not isinstance(item, dict) or not all(k in item for k in ("name", "type", "path")):
            raise ValueError(f"{p}: datasets[{i}] needs 'name', 'type' and 'path'")
        unknown = set(item) - {"name", "type", "path", "split", "options"}
        if unknown:
            raise ValueError(f"{p}: datasets[{i}] has unknown key(s) {sorted(unknown)}")
        try:
            specs.append(
                DatasetSpec(
                    str(item["name"]),
                    item["type"],
                    str(item["path"]),
                    str(item.get("split", "test")),
                    dict(item.get("options") or {}),
                )
            )
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"{p}: dataset names must be unique, got {names}")
    return Suite(str(raw.get("name") or p.stem), tuple(specs), root=str(p.parent.resolve()))
