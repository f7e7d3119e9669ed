"""Gains of models over a reference, with paired bootstrap intervals, in and out of the training mix.

    gains = compute_gains({"base": [r0], "plain": [r1, r2, r3], "mote": [r4, r5, r6]}, reference="base",
                          sources=recipe_sources(config))     # lists = seeds
    print(gains_markdown(gains)); plot_gains(gains, "gains.png")

Per model: every dataset's delta, each task type's delta (mean over its datasets) within the mix, outside it and
over both, and the overall delta (mean of type deltas) for each of the three. Each is an `Interval`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .intervals import N_BOOT, Interval, PairedBootstrap
from .suite import TASK_TYPES
from .training_mix import split_by_mix

MIX_COLUMNS = ("in_mix", "out_of_mix", "all")
MIX_LABELS = {"in_mix": "in the training mix", "out_of_mix": "outside the training mix", "all": "all datasets"}


def _types(result: Mapping, datasets: Sequence[str]) -> dict[str, list[str]]:
    by_type: dict[str, list[str]] = {}
    for d in datasets:
        by_type.setdefault(result["datasets"][d]["type"], []).append(d)
    return {t: by_type[t] for t in TASK_TYPES if t in by_type}


def compute_gains(
    models: Mapping[str, Sequence[Mapping]],
    reference: str,
    sources: set[str] | None = None,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> dict:
    """{model: {"datasets": {d: Interval}, "types": {mix: {type: Interval}}, "overall": {mix: Interval}}} for every
    model but the reference; `sources` (training_mix.recipe_sources) splits datasets into in/out of the mix (all
    datasets count as out of the mix when None)."""
    if reference not in models:
        raise ValueError(f"reference {reference!r} is not one of the models: {', '.join(models)}")
    out: dict = {
        "reference": reference,
        "n_boot": n_boot,
        "seeds": {m: len(rs) for m, rs in models.items()},
        "models": {},
    }
    for name, results in models.items():
        if name == reference:
            continue
        boot = PairedBootstrap(models[reference], results, n_boot=n_boot, seed=seed)
        datasets = boot.datasets()
        if not datasets:
            raise ValueError(f"{name} and {reference} share no dataset with per-unit scores (re-run the evaluation)")
        mix = split_by_mix(datasets, sources or set())
        mix["all"] = datasets
        entry: dict = {
            "datasets": {d: boot.interval([d]) for d in datasets},
            "types": {},
            "overall": {},
            "in_mix": mix["in_mix"],
            "out_of_mix": mix["out_of_mix"],
        }
        for column in MIX_COLUMNS:
            types = _types(results[0], mix[column])
            entry["types"][column] = {t: boot.interval(ds) for t, ds in types.items()}
            if types:
                entry["overall"][column] = boot.group(types)
        out["models"][name] = entry
    return out


def gains_to_json(gains: Mapping) -> dict:
    def conv(x):
        if isinstance(x, Interval):
            return x.to_dict()
        if isinstance(x, Mapping):
            return {k: conv(v) for k, v in x.items()}
        return x

    return conv(gains)


def gains_markdown(gains: Mapping, models: Sequence[str] | None = None) -> str:
    """Per-type gains with 95% intervals: one table per mix column; a tie is marked '='."""
    names = list(models or gains["models"])
    ref = gains["reference"]
    seeds = gains["seeds"]
    lines = [
        f"Gain over `{ref}` in points, 95% paired bootstrap interval ({gains['n_boot']} draws; seeds: "
        + ", ".join(f"{m} {seeds[m]}" for m in [ref, *names])
        + "). `=`: the interval contains 0 (a tie).",
        "",
    ]
    for column in MIX_COLUMNS:
        types = [t for t in TASK_TYPES if any(t in gains["models"][n]["types"][column] for n in names)]
        if not types:
            continue
        lines += [
            f"**{MIX_LABELS[column].capitalize()}**",
            "",
            "| type | " + " | ".join(names) + " |",
            "|---" * (len(names) + 1) + "|",
        ]
        for t in types:
            lines.append(
                f"| {t} | " + " | ".join(_cell(gains["models"][n]["types"][column].get(t)) for n in names) + " |"
            )
        lines.append(
            "| **overall (mean of types)** | "
            + " | ".join(f"**{_cell(gains['models'][n]['overall'].get(column))}**" for n in names)
            + " |"
        )
        lines.append("")
    lines += [
        "Per dataset (in-mix datasets marked *):",
        "",
        "| dataset | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    first = gains["models"][names[0]]
    for d in first["datasets"]:
        mark = "*" if d in first["in_mix"] else ""
        lines.append(f"| {d}{mark} | " + " | ".join(_cell(gains["models"][n]["datasets"].get(d)) for n in names) + " |")
    return "\n".join(lines) + "\n"


def _cell(iv: Interval | None) -> str:
    if iv is None:
        return "–"
    return str(iv) + (" =" if iv.tie else "")


def plot_gains(gains: Mapping, path: str | os.PathLike, models: Sequence[str] | None = None) -> Path:
    """Bars with 95% error bars: gain per type (and overall), one panel in the mix and one outside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from .report import save_figure

    names = list(models or gains["models"])
    columns = [c for c in ("in_mix", "out_of_mix") if any(gains["models"][n]["types"][c] for n in names)]
    fig, axes = plt.subplots(1, len(columns), figsize=(6.5 * len(columns), 4.2), squeeze=False)
    width = 0.8 / max(len(names), 1)
    for ax, column in zip(axes[0], columns):
        types = [t for t in TASK_TYPES if any(t in gains["models"][n]["types"][column] for n in names)] + ["overall"]
        x = np.arange(len(types))
        for i, n in enumerate(names):
            ivs = [
                gains["models"][n]["overall"].get(column)
                if t == "overall"
                else gains["models"][n]["types"][column].get(t)
                for t in types
            ]
            mid = [iv.delta if iv else np.nan for iv in ivs]
            err = np.array([[iv.delta - iv.low, iv.high - iv.delta] if iv else [0, 0] for iv in ivs]).T
            ax.bar(x + (i - (len(names) - 1) / 2) * width, mid, width, yerr=err, capsize=2, label=n)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels([t.replace("_", "\n") for t in types], fontsize=8)
        ax.set_ylabel(f"gain over {gains['reference']} (points)")
        ax.set_title(MIX_LABELS[column].capitalize())
    axes[0][0].legend(fontsize=7)
    return save_figure(fig, path)
