"""Results out: one JSON per model, a Markdown table comparing models (datasets and per-type averages as
rows, models as columns, deltas against a baseline column), and a PNG bar chart of per-type averages."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..atomic import atomic_path, write_bytes_atomic, write_json_atomic
from .suite import TASK_TYPES

TYPE_LABELS = {
    "retrieval": "Retrieval (nDCG@10)",
    "reranking": "Reranking (MAP)",
    "sts": "STS (Spearman)",
    "pair_classification": "PairClassification (AP)",
    "classification": "Classification (accuracy)",
    "clustering": "Clustering (V-measure)",
}


def load_result(path: str | os.PathLike) -> dict:
    from ..schema import read_json_file

    p = Path(path)
    result = read_json_file(p, "result")
    if not isinstance(result, dict) or "datasets" not in result or "averages" not in result:
        raise ValueError(f"{p} is not a mote-rag evaluation result (no 'datasets'/'averages')")
    return result


def _fmt(value: float | None, base: float | None, is_base: bool) -> str:
    if value is None:
        return "–"
    if is_base or base is None:
        return f"{value:.2f}"
    return f"{value:.2f} ({value - base:+.2f})"


def compare(results: Mapping[str, dict], baseline: str | None = None) -> str:
    """Markdown table: one row per dataset (grouped by type), a row per type average and the mean of type
    averages; one column per model; non-baseline cells show the delta to the baseline column."""
    if not results:
        raise ValueError("compare needs at least one result")
    names = list(results)
    baseline = baseline or names[0]
    if baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not one of the compared models: {', '.join(names)}")
    header = "| dataset | metric | " + " | ".join(f"{n} (baseline)" if n == baseline else n for n in names) + " |"
    lines = [header, "|" + "---|" * (len(names) + 2)]
    base = results[baseline]
    for t in TASK_TYPES:
        datasets = []
        for r in results.values():
            for d, v in r["datasets"].items():
                if v["type"] == t and d not in datasets:
                    datasets.append(d)
        if not datasets:
            continue
        for d in datasets:
            metric = next(r["datasets"][d]["main_metric"] for r in results.values() if d in r["datasets"])
            b = base["datasets"].get(d, {}).get("main_score")
            cells = [_fmt(results[n]["datasets"].get(d, {}).get("main_score"), b, n == baseline) for n in names]
            lines.append(f"| {d} | {metric} | " + " | ".join(cells) + " |")
        b = base["averages"].get(t)
        cells = [_fmt(results[n]["averages"].get(t), b, n == baseline) for n in names]
        lines.append(f"| **{TYPE_LABELS[t]} average** | | " + " | ".join(f"**{c}**" for c in cells) + " |")
    b = base.get("average_of_types")
    cells = [_fmt(results[n].get("average_of_types"), b, n == baseline) for n in names]
    lines.append("| **mean of type averages** | | " + " | ".join(f"**{c}**" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot_averages(results: Mapping[str, dict], path: str | os.PathLike) -> Path:
    """Grouped bars: per-type average main score, one bar per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    types = [t for t in TASK_TYPES if any(t in r["averages"] for r in results.values())]
    names = list(results)
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(types)), 4))
    x = np.arange(len(types))
    for i, n in enumerate(names):
        vals = [results[n]["averages"].get(t, np.nan) for t in types]
        ax.bar(x + (i - (len(names) - 1) / 2) * width, vals, width, label=n)
    ax.set_xticks(x)
    ax.set_xticklabels([TYPE_LABELS[t].replace(" (", "\n(") for t in types], fontsize=8)
    ax.set_ylabel("score (x100)")
    ax.set_title("Per-type averages")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def save_figure(fig, path: str | os.PathLike) -> Path:
    """Lay out, write atomically as PNG and close a matplotlib figure (every chart of the package)."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return out


def write_report(
    results: Mapping[str, dict], out_dir: str | os.PathLike, baseline: str | None = None
) -> dict[str, Path]:
    """<out_dir>/<model>.json for each model, table.md (compare) and averages.png."""
    from .runner import safe_name, strip_private

    out = Path(out_dir)
    paths = {}
    for n, r in results.items():
        paths[n] = out / f"{safe_name(n)}.json"
        write_json_atomic(paths[n], strip_private(r))
    paths["table"] = out / "table.md"
    write_bytes_atomic(paths["table"], compare(results, baseline).encode("utf-8"))
    paths["chart"] = plot_averages(results, out / "averages.png")
    return paths
