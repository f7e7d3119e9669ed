"""Turn the local dataset formats into contrastive examples (anchor, positive, hard negatives, label).

- beir: one example per (training query, relevant document) pair of the split's qrels.
- triplets: anchor / positive / negative fields (SNLI triplets: entailment positive, contradiction negative).
- pairs: anchor / positive (SICK entailment pairs).
- labelled_pairs: sentence1 / sentence2 / label; only positive pairs are kept (MRPC paraphrases).
- labelled: text / label (classification and clustering sets). Each text becomes an anchor whose positive is
  another text of the same label and whose hard negatives come from other labels of the same dataset. The
  label travels with the example so the loss can drop in-batch "negatives" that share the anchor's label
  (false negatives): this keeps every batch usable for sets with few labels (SST-2 has two), where
  one-example-per-label batches would be impossible.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..readers import load_beir, read_jsonl, resolve_file
from .config import ConfigError, DatasetConfig, TrainConfig


@dataclass(frozen=True)
class Example:
    anchor: str
    positive: str
    negatives: tuple[str, ...] = ()
    label: str | None = None  # namespaced "dataset:label"; None = unlabelled
    negative_labels: tuple[str | None, ...] = ()

    def texts(self) -> tuple[str, ...]:
        return (self.anchor, self.positive, *self.negatives)


@dataclass
class TrainingDataset:
    name: str
    task: str
    examples: list[Example]
    source: str


def _usable(text) -> bool:
    return isinstance(text, str) and bool(text.strip())


def _subsample(items: list, max_examples: int | None, rng: np.random.Generator) -> list:
    if max_examples is None or len(items) <= max_examples:
        return items
    keep = np.sort(rng.choice(len(items), size=max_examples, replace=False))
    return [items[i] for i in keep]


def build_examples(ds: DatasetConfig, data_dir: Path, seed: int) -> list[Example]:
    """Examples of one dataset (deterministic for a seed). Errors name the file."""
    path = ds.resolved_path(data_dir)
    rng = np.random.default_rng([seed, *map(ord, ds.name)])
    if ds.format == "beir":
        beir = load_beir(path, split=ds.split)
        examples = [
            Example(beir.queries[q], beir.corpus[d])
            for q in sorted(beir.qrels)
            for d, score in sorted(beir.qrels[q].items())
            if score > 0 and _usable(beir.queries.get(q)) and _usable(beir.corpus.get(d))
        ]
        return _subsample(examples, ds.max_examples, rng)
    where = resolve_file(path)
    if ds.format == "triplets":
        rows = read_jsonl(path, (ds.anchor_field, ds.positive_field))
        out = []
        for r in rows:
            negs = tuple(r[f] for f in ds.negative_fields if _usable(r.get(f)))
            if _usable(r[ds.anchor_field]) and _usable(r[ds.positive_field]):
                out.append(Example(r[ds.anchor_field], r[ds.positive_field], negs, None, (None,) * len(negs)))
        return _subsample(out, ds.max_examples, rng)
    if ds.format == "pairs":
        rows = read_jsonl(path, (ds.anchor_field, ds.positive_field))
        out = [
            Example(r[ds.anchor_field], r[ds.positive_field])
            for r in rows
            if _usable(r[ds.anchor_field]) and _usable(r[ds.positive_field])
        ]
        return _subsample(out, ds.max_examples, rng)
    if ds.format == "labelled_pairs":
        rows = read_jsonl(path, ("sentence1", "sentence2", ds.label_field))
        out = [
            Example(r["sentence1"], r["sentence2"])
            for r in rows
            if r[ds.label_field] == ds.positive_label and _usable(r["sentence1"]) and _usable(r["sentence2"])
        ]
        return _subsample(out, ds.max_examples, rng)
    if ds.format == "labelled":
        rows = read_jsonl(path, (ds.text_field, ds.label_field))
        return _label_aware_examples(rows, ds, rng, where)
    raise ConfigError(f"{where}: unknown format {ds.format!r}")


def _label_aware_examples(rows: list[dict], ds: DatasetConfig, rng: np.random.Generator, where) -> list[Example]:
    by_label: dict[str, list[str]] = defaultdict(list)
    seen = set()
    for r in rows:
        text = r[ds.text_field]
        if _usable(text) and text not in seen:  # exact duplicates would be their own positives
            seen.add(text)
            by_label[str(r[ds.label_field])].append(text)
    labels = sorted(lab for lab, texts in by_label.items() if len(texts) >= 2)
    if len(labels) < 2:
        raise ConfigError(
            f"{where}: a labelled dataset needs at least two labels with two texts each "
            f"(found {len(labels)} usable label(s))"
        )
    anchors = [(lab, i) for lab in labels for i in range(len(by_label[lab]))]
    anchors = _subsample(anchors, ds.max_examples, rng)
    out = []
    for lab, i in anchors:
        texts = by_label[lab]
        j = int(rng.integers(len(texts) - 1))
        positive = texts[j if j < i else j + 1]
        neg_texts, neg_labels = [], []
        for _ in range(ds.negatives_per_example):
            other = labels[int(rng.integers(len(labels) - 1))]
            if other == lab:
                other = labels[-1]
            pool = by_label[other]
            neg_texts.append(pool[int(rng.integers(len(pool)))])
            neg_labels.append(f"{ds.name}:{other}")
        out.append(Example(texts[i], positive, tuple(neg_texts), f"{ds.name}:{lab}", tuple(neg_labels)))
    return out


def load_training_data(config: TrainConfig) -> dict[str, list[TrainingDataset]]:
    """task -> datasets with their examples, every dataset checked (empty ones and too-small ones are errors)."""
    data_dir = Path(config.data_dir)
    out: dict[str, list[TrainingDataset]] = {}
    for task in config.tasks:
        datasets = []
        for ds in task.datasets:
            where = f"{config.source}: tasks.{task.name}: dataset {ds.name!r} ({ds.resolved_path(data_dir)})"
            try:
                examples = build_examples(ds, data_dir, config.seed)
            except ConfigError:
                raise
            except (FileNotFoundError, ValueError, KeyError) as exc:
                raise ConfigError(f"{where}: {exc}") from None
            if not examples:
                raise ConfigError(f"{where}: no usable training example (empty dataset or no positive pair)")
            datasets.append(TrainingDataset(ds.name, task.name, examples, str(ds.resolved_path(data_dir))))
        out[task.name] = datasets
    return out
