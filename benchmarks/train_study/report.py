"""The study's tables from every finished run under the work folder: gains over the untuned base and over the best
dense arm with paired bootstrap intervals, in and out of the training mix, the retrieval gain relative to IC's,
and the issue-12 targets per MoTE variant; written to benchmarks/results/<name>.json, .md and .png."""

from __future__ import annotations

import json
from pathlib import Path

from _common import RESULTS, write_result

from mote_rag.atomic import write_bytes_atomic

from .arms import DENSE
from .runner import DONE


def collect(work: Path) -> dict[str, list[dict]]:
    """Every finished run under the work folder: {variant: [result per seed]}, the base first."""
    runs: dict[str, list[dict]] = {}
    base = work / "base" / DONE
    if base.is_file():
        runs["base"] = [json.loads(base.read_text())]
    for f in sorted(work.glob(f"*/seed-*/{DONE}")):
        runs.setdefault(f.parent.parent.name, []).append(json.loads(f.read_text()))
    return runs


def report(name: str, work: Path, config, meta: dict, n_boot: int) -> None:
    from mote_rag.evaluation.gains import compute_gains, gains_markdown, gains_to_json, plot_gains
    from mote_rag.evaluation.training_mix import recipe_sources

    runs = collect(work)
    if "base" not in runs or len(runs) < 2:
        print("nothing to report yet")
        return
    sources = recipe_sources(config)
    variants = [v for v in runs if v != "base"]
    vs_base = compute_gains(runs, "base", sources, n_boot=n_boot)
    payload = {
        **meta,
        "reference": "untuned base (no prefixes); the best dense arm (plain or ic)",
        "runs": {
            v: [
                {
                    "seed": r.get("seed"),
                    "fingerprint": r.get("fingerprint"),
                    "averages": r["averages"],
                    "scores": {d: x["main_score"] for d, x in r["datasets"].items()},
                }
                for r in rs
            ]
            for v, rs in runs.items()
        },
        "gains_vs_base": gains_to_json(vs_base),
        "in_mix_sources": sorted(sources),
    }
    lines = [
        f"# TA-CL study: {meta.get('steps')} steps x batch {meta.get('batch_size')} per run",
        "",
        "Command: `" + meta.get("command", "") + "`",
        "",
        "## Gain over the untuned base",
        "",
        gains_markdown(vs_base, variants),
    ]
    dense = [d for d in DENSE if d in runs]
    if dense:
        best = max(dense, key=lambda d: sum(r["averages"].get("retrieval", 0) for r in runs[d]) / len(runs[d]))
        others = [v for v in variants if v != best]
        if others:
            vs_dense = compute_gains({k: runs[k] for k in [best, *others]}, best, sources, n_boot=n_boot)
            payload["best_dense_on_retrieval"] = best
            payload[f"gains_vs_{best}"] = gains_to_json(vs_dense)
            lines += [f"## Gain over the best dense arm on retrieval (`{best}`)", "", gains_markdown(vs_dense, others)]
    if "ic" in runs:
        ratio = {}
        for v in variants:
            if v.startswith("mote") and "retrieval" in vs_base["models"][v]["types"]["all"]:
                ic = vs_base["models"]["ic"]["types"]["all"]["retrieval"].delta
                ratio[v] = vs_base["models"][v]["types"]["all"]["retrieval"].delta / ic if ic else None
        payload["retrieval_gain_ratio_vs_ic"] = ratio
        lines += [
            "Retrieval gain over the base, variant / IC (the paper's MoTE/IC is 1.59): "
            + ", ".join(f"{v} {r:.2f}" if r is not None else f"{v} n/a" for v, r in ratio.items()),
            "",
        ]
    targets = check_targets(vs_base, payload)
    if targets:
        payload["targets"] = targets
        lines += [
            "## Targets (issue 12), per MoTE variant",
            "",
            "| variant | outside the mix: overall > 0, no type "
            "below -1 | retrieval vs best dense: interval above 0 | retrieval gain >= 1.6x IC's |",
            "|---|---|---|---|",
        ]
        lines += [f"| {v} | {t['outside']} | {t['vs_dense']} | {t['ratio']} |" for v, t in targets.items()] + [""]
    write_result(name, payload)
    write_bytes_atomic(RESULTS / f"{name}.md", "\n".join(lines).encode())
    plot_gains(vs_base, RESULTS / f"{name}.png", variants)
    print("\n".join(lines))


def check_targets(vs_base: dict, payload: dict) -> dict:
    """The three targets for every MoTE variant, each 'met' or 'missed' with the figure that decides it."""
    best = payload.get("best_dense_on_retrieval")
    vs_dense = payload.get(f"gains_vs_{best}", {}).get("models", {}) if best else {}
    out = {}
    for v, g in vs_base["models"].items():
        if not v.startswith("mote"):
            continue
        outside = g["types"].get("out_of_mix", {})
        overall = g["overall"].get("out_of_mix") if isinstance(g.get("overall"), dict) else None
        worst = min((iv.delta for iv in outside.values()), default=None)
        t = {}
        if overall is not None and worst is not None:
            ok = overall.delta > 0 and worst >= -1
            t["outside"] = f"{'met' if ok else 'missed'}: overall {overall}, worst type {worst:+.2f}"
        else:
            t["outside"] = "n/a"
        r = vs_dense.get(v, {}).get("types", {}).get("all", {}).get("retrieval")
        t["vs_dense"] = (
            (f"{'met' if r['low'] > 0 else 'missed'}: {r['delta']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}] vs {best}")
            if r
            else "n/a"
        )
        ratio = payload.get("retrieval_gain_ratio_vs_ic", {}).get(v)
        t["ratio"] = f"{'met' if ratio is not None and ratio >= 1.6 else 'missed'}: {ratio:.2f}x" if ratio else "n/a"
        out[v] = t
    return out
