"""Which evaluation datasets a training recipe has seen: comparisons report in-mix and out-of-mix apart.

An evaluation dataset is *in the mix* when the recipe trains on any split of the same source, whatever the task
(`banking77_clustering` and `banking77` share the Banking77 rows; `sickr` is SICK, trained on as NLI pairs).
Out-of-mix datasets show what fine-tuning does to data it never saw: forgetting, or transfer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Evaluation or training dataset name -> the source it was drawn from (names not listed are their own source).
SOURCES = {"sickr": "sick", "trec_fine": "trec"}
_SUFFIX = re.compile(r"_(rerank|reranking|clustering|fine|pairs|triplets|train)$")


def source_of(name: str) -> str:
    """The source a dataset name refers to: suffixes for the task made of it are dropped."""
    base = _SUFFIX.sub("", name)
    return SOURCES.get(name, SOURCES.get(base, base))


def recipe_sources(config) -> set[str]:
    """Sources a TrainConfig (or a {task: [dataset names]} mapping) trains on."""
    if isinstance(config, Mapping):
        names: Iterable[str] = (n for names in config.values() for n in names)
    else:
        names = (d.name for t in config.tasks for d in t.datasets)
    return {source_of(n) for n in names}


def split_by_mix(datasets: Iterable[str], sources: set[str]) -> dict[str, list[str]]:
    """{"in_mix": [...], "out_of_mix": [...]} in the given order."""
    out: dict[str, list[str]] = {"in_mix": [], "out_of_mix": []}
    for d in datasets:
        out["in_mix" if source_of(d) in sources else "out_of_mix"].append(d)
    return out
