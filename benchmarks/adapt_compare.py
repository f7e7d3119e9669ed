"""Adapting to a collection without re-embedding it: query-only expert vs both experts vs dense fine-tuning
(plain, re-embedding every collection) vs LlamaIndex's linear query adapter, on the same pairs and steps.

    python benchmarks/adapt_compare.py                      # 3 domains x 3 seeds, resumable; then the tables
    python benchmarks/adapt_compare.py --report-only        # tables from the runs already done

For each domain D (MedQuAD, SciFact, Quora duplicates) and seed, every arm trains on the same (query, passage) pairs
of D's train split, with the same batch size, steps, learning rate and truncation, from the untuned embedded base
(all-MiniLM-L6-v2 upcycled router-only):
- `query`: `adapt(side="query", collection=D)`: a new `search_query@D` expert; passages embedded once, document
  path and every index untouched. Other collections are routed to `search_query` (bit-identical, checked).
- `both`: `adapt(side="both", collection=D)`: `search_query@D` and `search_document@D`; D's corpus re-embedded.
- `plain`: the dense base, every weight trained (`side="all"`): every collection re-embedded with it.
- `linear`: llama-index-finetuning's `EmbeddingAdapterFinetuneEngine` (a linear layer on query vectors), as a
  user would apply it: to every query of that embed model (benchmarks/linear_adapter.py).
- `query_nomodel`: `query` on pairs made without a model from D's own corpus (mote_rag.pair_generation).
Scores: nDCG@10 on D's test queries (seeded sample) over D's corpus (capped: every relevant document plus a
seeded sample), per query, so gains carry 95% paired bootstrap intervals over queries and seeds
(mote_rag.evaluation.intervals). Each run is one JSON under --work; a stopped benchmark resumes where it was.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
DOMAINS = {"medquad": "retrieval/medquad", "scifact": "retrieval/scifact", "quora_dup": "retrieval/quora_dup"}
ARMS = ("query", "both", "plain", "linear", "linear_default", "query_nomodel", "query_x4")
# query_x4: the query-only expert at 4x the learning rate, the expert multiplier of the repo's one-domain recipe
# (mote_rag/data/train_medquad.json, chosen before this benchmark), a screen beside the same-recipe comparison
LR_MULTIPLIER = {"query_x4": 4.0}
# LlamaIndex's linear adapter at its engine's default learning rate (2e-5: it barely moves in 60-300 steps) and at
# 1e-3, its best in a small sweep on SciFact (chosen on test queries, which favours the adapter, not us)
LINEAR_LR = {"linear": 1e-3, "linear_default": 2e-5}
PROJECTED_PASSAGES = 10_000_000
# Quora's passages are single questions: no title, and one sentence -> "its passage" would be the sentence itself
NOT_APPLICABLE = {("query_nomodel", "quora_dup")}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=list(DOMAINS))
    p.add_argument("--seeds", nargs="+", type=int, default=[13, 14, 15])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--max-queries", type=int, default=300)
    p.add_argument("--max-corpus", type=int, default=1000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--work", default=str(HERE / "results" / "adapt_compare"))
    p.add_argument("--report-only", action="store_true")
    p.add_argument(
        "--throughput",
        action="store_true",
        help="re-measure the document path's docs/s (300 docs per domain; run it on an idle machine)",
    )
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------- data
def data_dir() -> Path:
    from mote_rag.readers import default_data_dir

    return default_data_dir()


def eval_set(domain: str, args):
    from mote_rag.evaluation.retrieval import limit_beir
    from mote_rag.readers import load_beir

    ds = load_beir(data_dir() / DOMAINS[domain], split="test")
    return limit_beir(ds, args.max_queries, args.max_corpus, seed=0)


def train_pairs(domain: str, args, seed: int) -> list[tuple[str, str]]:
    """The domain's train pairs, a seeded sample of steps x batch (every pair when there are fewer)."""
    from mote_rag.readers import load_pairs

    pairs = load_pairs(data_dir() / DOMAINS[domain], split="train")
    need = args.steps * args.batch_size
    if len(pairs) > need:
        keep = np.sort(np.random.default_rng([seed, 7]).choice(len(pairs), size=need, replace=False))
        pairs = [pairs[i] for i in keep]
    return pairs


def nomodel_pairs(domain: str, args, seed: int) -> tuple[list[tuple[str, str]], str]:
    """Pairs from the domain's own corpus with no model (mote_rag.pair_generation): title -> body where the corpus
    has titles (SciFact), else one sentence -> its passage (the Inverse Cloze Task); steps x batch of them."""
    from mote_rag.pair_generation import generate_pairs, make_generator, read_passages

    passages = read_passages(data_dir() / DOMAINS[domain])
    how = "title" if domain == "scifact" else "sentence"
    need = args.steps * args.batch_size
    report = generate_pairs(passages, make_generator(how), seed=seed, limit=min(need, len(passages)))
    return [(p.anchor, p.positive) for p in report.pairs][:need], how


# ---------------------------------------------------------------------------------------------- scoring
def ndcg_per_query(ds, q_emb: np.ndarray, d_emb: np.ndarray, ignore_identical: bool) -> list[float]:
    from mote_rag.evaluation.metrics import per_query_metrics
    from mote_rag.evaluation.retrieval import TOP_K, build_run, search

    qids, doc_ids = list(ds.queries), list(ds.corpus)
    scores, idx = search(q_emb, d_emb, TOP_K + int(ignore_identical))
    run = build_run(scores, idx, doc_ids, qids, ignore_identical, TOP_K)
    return [round(m["ndcg@10"], 6) for m in per_query_metrics(ds.qrels, run)]


def digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()[:16]


class Collections:
    """Each domain's evaluation set, and the base's query and document vectors (computed once, kept on disk)."""

    def __init__(self, args, base):
        self.args, self.sets, self.base_q, self.base_d, self.docs_per_s = args, {}, {}, {}, {}
        work = Path(args.work) / "base"
        work.mkdir(parents=True, exist_ok=True)
        for domain in DOMAINS:
            ds = eval_set(domain, args)
            self.sets[domain] = ds
            qf, df, tf = work / f"{domain}.queries.npy", work / f"{domain}.docs.npy", work / f"{domain}.json"
            if not (qf.is_file() and df.is_file() and tf.is_file()):
                docs = list(ds.corpus.values())
                start = time.perf_counter()
                d = base.encode_document(docs, batch_size=32)
                seconds = time.perf_counter() - start
                q = base.encode_query(list(ds.queries.values()), batch_size=64)
                np.save(qf, q)
                np.save(df, d)
                tf.write_text(json.dumps({"docs": len(docs), "seconds": seconds}))
            self.base_q[domain], self.base_d[domain] = np.load(qf), np.load(df)
            timing = json.loads(tf.read_text())
            self.docs_per_s[domain] = timing["docs"] / timing["seconds"]

    def ignore(self, domain: str) -> bool:
        return domain == "quora_dup"  # every query is also in the corpus (BEIR drops it from its own ranking)

    def queries(self, domain: str) -> list[str]:
        return list(self.sets[domain].queries.values())

    def docs(self, domain: str) -> list[str]:
        return list(self.sets[domain].corpus.values())

    def score(self, domain: str, q: np.ndarray, d: np.ndarray | None = None) -> list[float]:
        return ndcg_per_query(self.sets[domain], q, self.base_d[domain] if d is None else d, self.ignore(domain))


# ---------------------------------------------------------------------------------------------- arms
def run_arm(arm: str, domain: str, seed: int, args, cols: Collections) -> dict:
    import torch

    torch.manual_seed(seed)
    pairs, pair_source = train_pairs(domain, args, seed), "train qrels"
    if arm == "query_nomodel":
        pairs, pair_source = nomodel_pairs(domain, args, seed)
    lr = args.lr * LR_MULTIPLIER.get(arm, 1.0)
    common = {"steps": args.steps, "batch_size": args.batch_size, "learning_rate": lr, "seed": seed}
    out: dict = {"arm": arm, "domain": domain, "seed": seed, "pairs": len(pairs), "pair_source": pair_source}
    start = time.perf_counter()
    if arm in LINEAR_LR:
        out.update(run_linear(pairs, args, seed, cols, LINEAR_LR[arm]))
    elif arm == "plain":
        out.update(run_plain(pairs, common, cols))
    else:
        out.update(run_experts("both" if arm == "both" else "query", domain, pairs, common, cols))
    out["learning_rate"] = LINEAR_LR.get(arm, lr)
    out["wall_seconds"] = time.perf_counter() - start
    return out


def run_linear(pairs, args, seed: int, cols: Collections, lr: float) -> dict:
    """LlamaIndex's linear adapter, applied as its AdapterEmbeddingModel is: to every query of that embed model."""
    from linear_adapter import train_linear_adapter

    from mote_rag import MoTEModel

    start = time.perf_counter()
    base = MoTEModel.upcycle(use_prefixes=False)
    steps, batch = args.steps, args.batch_size
    transform = train_linear_adapter(pairs, encoder=base, steps=steps, batch_size=batch, seed=seed, lr=lr)
    seconds = time.perf_counter() - start
    scores = {d: cols.score(d, transform(cols.base_q[d])) for d in DOMAINS}
    return {"adapt_seconds": seconds, "reembed_seconds": 0.0, "scores": scores, "unrouted": {}}


def run_plain(pairs, common: dict, cols: Collections) -> dict:
    """The dense base, every weight trained; one model, so every collection is re-embedded with it."""
    from mote_rag import MoTEModel
    from mote_rag.training.adapt import adapt

    model = MoTEModel.dense(use_prefixes=False)
    result = adapt(model, pairs, side="all", show_progress_bar=False, **common)
    scores, reembed = {}, 0.0
    for d in DOMAINS:
        t0 = time.perf_counter()
        d_emb = model.encode_document(cols.docs(d), batch_size=32)
        reembed += time.perf_counter() - t0
        scores[d] = cols.score(d, model.encode_query(cols.queries(d), batch_size=64), d_emb)
    return {"adapt_seconds": result.train_seconds, "reembed_seconds": reembed, "scores": scores, "unrouted": {}}


def run_experts(side: str, domain: str, pairs, common: dict, cols: Collections) -> dict:
    """Collection experts: `search_query@D` (and `search_document@D` with side both); other collections keep the
    base experts, which is checked bit for bit, and are also scored through D's query expert (not routed)."""
    from mote_rag import MoTEModel
    from mote_rag.training.adapt import adapt

    model = MoTEModel.upcycle(use_prefixes=False)
    start_fps = {t: model.path_fingerprint(t) for t in model.tasks.names}
    result = adapt(model, pairs, side=side, collection=domain, show_progress_bar=False, **common)
    out: dict = {"adapt_seconds": result.train_seconds + result.passage_cache_seconds}
    out["passage_cache_seconds"] = result.passage_cache_seconds
    q_task = result.query_task
    d_emb, out["reembed_seconds"] = None, 0.0
    if side == "both":
        t0 = time.perf_counter()
        d_emb = model.encode(cols.docs(domain), task=result.document_task, batch_size=32)
        out["reembed_seconds"] = time.perf_counter() - t0
    else:  # zero re-embedding: the document path gives the base's vectors, bit for bit
        sample = cols.docs(domain)[:200]
        out["document_vectors_identical"] = digest(model.encode_document(sample, batch_size=32)) == digest(
            cols.base_d[domain][:200]
        )
    scores = {domain: cols.score(domain, model.encode(cols.queries(domain), task=q_task, batch_size=64), d_emb)}
    unrouted, identical = {}, {}
    for d in (d for d in DOMAINS if d != domain):  # routed as a user would: other indexes keep search_query
        q = model.encode_query(cols.queries(d), batch_size=64)
        identical[d] = digest(q) == digest(cols.base_q[d])
        scores[d] = cols.score(d, q)
        unrouted[d] = cols.score(d, model.encode(cols.queries(d), task=q_task, batch_size=64))
    out["other_paths_identical"] = identical
    out["fingerprints_unchanged"] = {t: model.path_fingerprint(t) == fp for t, fp in start_fps.items()}
    out.update(scores=scores, unrouted=unrouted)
    return out


def document_throughput(args, n: int = 300) -> dict:
    """docs/s of the base document path on each domain's first `n` test-corpus documents, with the load average
    before and after (what re-embedding a collection costs, which query-only adaptation avoids)."""
    import torch

    from mote_rag import MoTEModel

    torch.set_num_threads(args.threads)
    model = MoTEModel.upcycle(use_prefixes=False)
    out = {"threads": args.threads, "load_before": os.getloadavg()[0]}
    for domain in DOMAINS:
        docs = list(eval_set(domain, args).corpus.values())[:n]
        model.encode_document(docs[:32], batch_size=32)  # warm-up
        start = time.perf_counter()
        model.encode_document(docs, batch_size=32)
        out[domain] = len(docs) / (time.perf_counter() - start)
    out["load_after"] = os.getloadavg()[0]
    return out


def query_latency(cols: Collections, n: int = 200) -> dict:
    """Single-query latency (1 thread, p50/p95 ms) of the base query path and a collection's query path on one
    model, interleaved query by query so drift in machine load hits both alike."""
    import torch

    from mote_rag import MoTEModel

    torch.set_num_threads(1)
    model = MoTEModel.upcycle(use_prefixes=False)
    task = model.add_collection_expert("medquad")
    with torch.no_grad():
        for p in model.expert_parameters(task):
            p.add_(0.01)  # a trained expert: other weights, same shapes and cost
    queries = cols.queries("medquad")[:n]
    times: dict[str, list[float]] = {"search_query": [], task: []}
    for q in queries[:10]:
        model.encode(q, task=task)  # warm-up
    for q in queries:
        for t in times:
            t0 = time.perf_counter()
            model.encode(q, task=t)
            times[t].append(1000 * (time.perf_counter() - t0))
    stats = {t: {"p50": float(np.percentile(v, 50)), "p95": float(np.percentile(v, 95))} for t, v in times.items()}
    stats["ratio_p50"] = stats[task]["p50"] / stats["search_query"]["p50"]
    return stats


# ---------------------------------------------------------------------------------------------- tables
def as_result(scores: list[float], name: str) -> dict:
    return {"datasets": {name: {"main_score": 100 * float(np.mean(scores)), "units": {"scores": scores}}}}


def compare(base_scores, runs, key: str, domain: str):
    from mote_rag.evaluation.intervals import PairedBootstrap

    b = [as_result(base_scores, domain)]
    a = [as_result(r[key][domain], domain) for r in runs if domain in r[key]]
    if not a:
        return None
    return PairedBootstrap(b, a, seed=0).interval([domain])


def gain_draws(base_scores, runs, domain: str) -> np.ndarray:
    """(n_boot,) bootstrap gains of `runs` over the base on `domain`; every arm draws the same query resamples."""
    from mote_rag.evaluation.intervals import PairedBootstrap

    b = [as_result(base_scores, domain)]
    return PairedBootstrap(b, [as_result(r["scores"][domain], domain) for r in runs], seed=0).draws(domain)


def recovery(base: dict, runs: list[dict], domains: list[str], arm: str = "query", of: str = "both") -> dict | None:
    """`arm`'s in-domain gain as a share of `of`'s: per domain, and pooled (mean gain over the domains / mean gain
    over the domains, which near-ceiling domains with ties cannot blow up), with a 95% bootstrap interval."""
    mine = {d: [r for r in runs if r["arm"] == arm and r["domain"] == d] for d in domains}
    ref = {d: [r for r in runs if r["arm"] == of and r["domain"] == d] for d in domains}
    domains = [d for d in domains if mine[d] and ref[d]]
    if not domains:
        return None
    a = np.mean([gain_draws(base["scores"][d], mine[d], d) for d in domains], axis=0)
    b = np.mean([gain_draws(base["scores"][d], ref[d], d) for d in domains], axis=0)
    ok = b > 0
    ratio = a[ok] / b[ok]
    point = lambda rs, d: 100 * (np.mean([np.mean(r["scores"][d]) for r in rs]) - np.mean(base["scores"][d]))  # noqa: E731
    per = {d: point(mine[d], d) / point(ref[d], d) for d in domains}
    pooled = np.mean([point(mine[d], d) for d in domains]) / np.mean([point(ref[d], d) for d in domains])
    low, high = np.percentile(ratio, [2.5, 97.5])
    return {"per_domain": per, "pooled": float(pooled), "low": float(low), "high": float(high), "domains": domains}


def head_to_head(runs: list[dict], domains: list[str], arm: str, other: str) -> dict:
    """`arm` - `other` in-domain, per domain and averaged over the domains both have (seeds resampled too)."""
    from mote_rag.evaluation.intervals import PairedBootstrap

    pick = lambda a, d: [as_result(r["scores"][d], d) for r in runs if r["arm"] == a and r["domain"] == d]  # noqa: E731
    out = {}
    for d in domains:
        if pick(arm, d) and pick(other, d):
            out[d] = PairedBootstrap(pick(other, d), pick(arm, d), seed=0).interval([d])
    if len(out) > 1:  # averaged over the domains: one result per seed that every domain has

        def per_seed(a: str) -> list[dict]:
            by = {(r["domain"], r["seed"]): r for r in runs if r["arm"] == a}
            seeds = sorted({sd for (_, sd) in by if all((d, sd) in by for d in out)})
            cell = lambda d, sd: as_result(by[(d, sd)]["scores"][d], d)["datasets"][d]  # noqa: E731
            return [{"datasets": {d: cell(d, sd) for d in out}} for sd in seeds]

        mine, theirs = per_seed(arm), per_seed(other)
        if mine and theirs:
            out["mean"] = PairedBootstrap(theirs, mine, seed=0).interval(list(out))
    return out


def report(args) -> dict:
    work = Path(args.work)
    base = json.loads((work / "base_scores.json").read_text())
    runs = [json.loads(p.read_text()) for p in sorted((work / "runs").glob("*.json"))]
    docs_per_s = base["docs_per_s"]
    if (work / "throughput.json").is_file():  # measured apart, on an idle machine
        measured = json.loads((work / "throughput.json").read_text())
        docs_per_s = {d: measured[d] for d in DOMAINS}
    table: dict = {}
    for arm in ARMS:
        mine = [r for r in runs if r["arm"] == arm]
        if not mine:
            continue
        row: dict = {"seeds": sorted({r["seed"] for r in mine})}
        for domain in args.domains:
            rs = [r for r in mine if r["domain"] == domain]
            if not rs:
                continue
            cell = {"in_domain": compare(base["scores"][domain], rs, "scores", domain)}
            others = [d for d in DOMAINS if d != domain]
            cell["others"] = {d: compare(base["scores"][d], rs, "scores", d) for d in others}
            if any(r["unrouted"] for r in rs):
                cell["others_unrouted"] = {d: compare(base["scores"][d], rs, "unrouted", d) for d in others}
            cell["adapt_seconds"] = float(np.mean([r["adapt_seconds"] for r in rs]))
            cell["reembed_seconds"] = float(np.mean([r["reembed_seconds"] for r in rs]))
            cell["seeds"] = len(rs)
            for flag in ("document_vectors_identical", "other_paths_identical"):
                vals = [r.get(flag) for r in rs if r.get(flag) is not None]
                if vals:
                    cell[flag] = all(all(v.values()) if isinstance(v, dict) else v for v in vals)
            row[domain] = cell
        table[arm] = row
    latency = json.loads((work / "latency.json").read_text()) if (work / "latency.json").is_file() else None
    base_scores = {d: 100 * float(np.mean(s)) for d, s in base["scores"].items()}
    sizes = {d: len(load_beir_corpus_ids(d)) for d in DOMAINS}
    return {
        "table": table,
        "recovery": recovery(base, runs, args.domains),
        "head_to_head": {
            f"query vs {other}": head_to_head(runs, args.domains, "query", other)
            for other in ("both", "plain", "linear", "linear_default", "query_nomodel", "query_x4")
            if any(r["arm"] == other for r in runs)
        },
        "docs_per_s": docs_per_s,
        "corpus_sizes": sizes,
        "base": base_scores,
        "latency": latency,
    }


def load_beir_corpus_ids(domain: str) -> list[str]:
    from mote_rag.readers import iter_jsonl, resolve_file

    return [r["_id"] for r in iter_jsonl(resolve_file(data_dir() / DOMAINS[domain] / "corpus.jsonl"))]


def fmt(iv) -> str:
    if iv is None:
        return "-"
    return f"{iv}{' =' if iv.tie else ''}"


def markdown(rep: dict, args) -> str:
    names = {
        "query": "query-only expert (collection)",
        "both": "both experts (collection)",
        "plain": "dense fine-tuning + re-embed (`plain`)",
        "linear": "LlamaIndex linear adapter (lr 1e-3)",
        "linear_default": "LlamaIndex linear adapter (engine default lr 2e-5)",
        "query_nomodel": "query-only, no-model pairs",
        "query_x4": "query-only expert, lr x4 (screen)",
    }
    lines = [
        f"nDCG@10 gain over the untuned base ({args.steps} steps x {args.batch_size}, lr {args.lr}); 95% paired "
        "bootstrap intervals over queries and seeds; `=` marks a tie. Other collections: routed as a user would "
        "(collection experts: the other indexes keep `search_query`; plain and linear: one model for all).",
        "",
        "| arm | domain | seeds | in-domain | other collections (each) | adapt s | re-embed s (test corpus) |",
        "|---|---|---|---|---|---|---|",
    ]
    for arm, row in rep["table"].items():
        for domain in args.domains:
            cell = row.get(domain)
            if not cell:
                continue
            others = "; ".join(f"{d}: {fmt(iv)}" for d, iv in cell["others"].items())
            lines.append(
                f"| {names[arm]} | {domain} | {cell['seeds']} | {fmt(cell['in_domain'])} | {others} | "
                f"{cell['adapt_seconds']:.0f} | {cell['reembed_seconds']:.0f} |"
            )
    lines += ["", "Base nDCG@10: " + ", ".join(f"{d} {v:.2f}" for d, v in rep["base"].items())]
    lines += ["", "Re-embedding avoided by the query-only expert (the base document path's docs/s, 2 cores):"]
    for d, rate in rep["docs_per_s"].items():
        full = rep["corpus_sizes"][d]
        lines.append(
            f"- {d}: {rate:.0f} docs/s -> its whole corpus ({full:,} passages) {full / rate / 60:.1f} min; "
            f"10M passages {PROJECTED_PASSAGES / rate / 3600:.1f} h"
        )
    if rep.get("latency"):
        lat = rep["latency"]
        lines += [
            "",
            "Single-query latency, 1 thread, p50 (p95): search_query "
            f"{lat['search_query']['p50']:.1f} ({lat['search_query']['p95']:.1f}) ms, a collection's query path "
            f"{lat['search_query@medquad']['p50']:.1f} ({lat['search_query@medquad']['p95']:.1f}) ms: "
            f"ratio {lat['ratio_p50']:.3f}",
        ]
    for name, cells in rep.get("head_to_head", {}).items():
        if cells:
            lines += ["", f"{name}, in-domain nDCG@10: " + "; ".join(f"{d} {fmt(iv)}" for d, iv in cells.items())]
    rec = rep.get("recovery")
    if rec:
        per = ", ".join(f"{d} {r:.0%}" for d, r in rec["per_domain"].items())
        lines += [
            "",
            f"Query-only gain as a share of both experts' (in-domain): {per}; pooled over the domains "
            f"{rec['pooled']:.0%} [{rec['low']:.0%}, {rec['high']:.0%}]",
        ]
    unrouted = [
        f"{arm} {d}: " + "; ".join(f"{o} {fmt(iv)}" for o, iv in cell.get("others_unrouted", {}).items())
        for arm, row in rep["table"].items()
        for d, cell in row.items()
        if isinstance(cell, dict) and cell.get("others_unrouted")
    ]
    if unrouted:
        lines += ["", "If the collection's query expert served the other collections too (not routed):"]
        lines += [f"- {u}" for u in unrouted]
    return "\n".join(lines) + "\n"


def to_json(rep: dict) -> dict:
    def conv(x):
        if hasattr(x, "to_dict"):
            return x.to_dict()
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        if isinstance(x, list):
            return [conv(v) for v in x]
        return x

    return conv(rep)


def main(argv=None) -> int:
    args = parse_args(argv)
    work = Path(args.work)
    (work / "runs").mkdir(parents=True, exist_ok=True)
    if args.throughput:
        from mote_rag.atomic import write_json_atomic

        write_json_atomic(work / "throughput.json", document_throughput(args))
    if not args.report_only and not args.throughput:
        import torch

        from mote_rag import MoTEModel
        from mote_rag.atomic import write_json_atomic

        torch.set_num_threads(args.threads)
        base = MoTEModel.upcycle(use_prefixes=False)
        cols = Collections(args, base)
        write_json_atomic(
            work / "base_scores.json",
            {
                "scores": {d: cols.score(d, cols.base_q[d]) for d in DOMAINS},
                "docs_per_s": cols.docs_per_s,
                "settings": {k: v for k, v in vars(args).items() if k != "report_only"},
                "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
            },
        )
        if not (work / "latency.json").is_file():
            write_json_atomic(work / "latency.json", query_latency(cols))
            torch.set_num_threads(args.threads)
        for seed in args.seeds:
            for arm in args.arms:
                for domain in args.domains:
                    path = work / "runs" / f"{arm}-{domain}-s{seed}.json"
                    if path.is_file() or (arm, domain) in NOT_APPLICABLE:
                        continue
                    print(f"[{time.strftime('%H:%M:%S')}] {arm} {domain} seed {seed}", flush=True)
                    try:
                        result = run_arm(arm, domain, seed, args, cols)
                    except ModuleNotFoundError as exc:  # the linear adapter's package is benchmark-only
                        if arm not in LINEAR_LR:
                            raise
                        print(f"  skipped: {exc} (pip install -r benchmarks/requirements-bench.txt)", flush=True)
                        continue
                    write_json_atomic(path, result)
                    print(
                        f"  in-domain nDCG@10 {100 * np.mean(result['scores'][domain]):.2f} "
                        f"({result['wall_seconds']:.0f}s)",
                        flush=True,
                    )
    rep = report(args)
    md = markdown(rep, args)
    (work.parent / "adapt_compare.md").write_text(md)
    (work.parent / "adapt_compare.json").write_text(json.dumps(to_json(rep), indent=1))
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
