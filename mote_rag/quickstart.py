"""The main job on the embedded default: upcycle -> TA-CL train -> evaluate -> export ONNX -> index -> search.

Everything runs on the MedQuAD sample shipped in `mote_rag/data/quickstart` (CC BY 4.0), so it needs no
download and no shared data. It tells the domain-adaptation story: the same (question, answer) pairs train a
router-only MoTE whose trunk is frozen (only the query/document experts learn), the whole dense model (`plain`)
for comparison, and a query-only collection expert (`search_query@medquad`, `mote-rag adapt`) that adapts an
index built with the untuned base without re-embedding a document; all are scored on held-out retrieval and on
the classification and clustering tasks that none was trained for. Each stage writes into `out/` and is reused
by a second run when its inputs (recipe and steps, model fingerprint) are unchanged.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from .readers import iter_jsonl, read_qrels

SAMPLE_DIR = Path(__file__).resolve().parent / "data" / "quickstart"
EXAMPLE_QUERIES = 3
COLLECTION = "medquad"  # the sample's collection: the adapted model's query expert is search_query@medquad
ROUTED = ("adapted",)


def _log(msg: str) -> None:
    print(f"[quickstart] {msg}", flush=True)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def train_stage(out: Path, steps: int | None, show_progress: bool, arm: str = "mote"):
    """Train one arm of the sample recipe into out/model (MoTE) or out/plain (dense, same pairs and steps)."""
    from .model import MoTEModel
    from .training import load_config, train

    folder = out / ("model" if arm == "mote" else arm)
    config = load_config(SAMPLE_DIR / "train.json", data_dir=str(SAMPLE_DIR), output_dir=str(folder), steps=steps)
    if arm != "mote":
        config = config.with_arm(arm)
    log = _read_json(folder / "train_log.json")
    if (
        log
        and log.get("finished")
        and log.get("recipe_hash") == config.recipe_hash()
        and (folder / "mote_config.json").is_file()
    ):
        _log(f"reusing the trained {arm} model in {folder} ({config.steps} steps)")
    else:
        what = (
            "MoTE (router-only, frozen trunk: query/document experts)"
            if arm == "mote"
            else f"the {arm} dense model (every weight)"
        )
        _log(f"training {what} for {config.steps} steps on the sample's question-answer pairs")
        log = train(config, show_progress=show_progress)
    return MoTEModel.from_pretrained(folder), config, log


def adapt_stage(out: Path, steps: int | None, show_progress: bool):
    """The untuned base (router-only MoTE) with a query expert for this collection, trained on the same pairs with
    the document path frozen: out/adapted. Returns (model, adapt log)."""
    from .model import MoTEModel
    from .readers import load_pairs
    from .training.adapt import AdaptConfig, adapt

    folder = out / "adapted"
    config = AdaptConfig(collection=COLLECTION, steps=steps or AdaptConfig.steps)
    log = _read_json(folder / "adapt_log.json")
    if log and log.get("recipe") == asdict(config) and (folder / "mote_config.json").is_file():
        _log(f"reusing the adapted model in {folder} ({config.steps} steps)")
        return MoTEModel.from_pretrained(folder), log
    _log(f"adapting the base's query expert to the collection ({config.steps} steps; document path frozen)")
    model = MoTEModel.upcycle(use_prefixes=False)
    pairs = load_pairs(SAMPLE_DIR / "retrieval", split="train")
    result = adapt(model, pairs, config, output_dir=folder, show_progress_bar=show_progress)
    return model, {"recipe": asdict(config), **result.to_dict()}


def evaluate_stage(models: dict, out: Path, show_progress: bool, limits: dict | None) -> dict:
    """base and every model on the held-out slice; a model named in ROUTED is scored through its collection's
    query expert, as an index built for the collection routes it."""
    from .evaluation import evaluate, load_suite, write_report
    from .model import MoTEModel

    suite = load_suite(SAMPLE_DIR / "suite.json")
    base = MoTEModel.dense(None, use_prefixes=False)
    results = {}
    for name, encoder in (("base", base), *models.items()):
        previous = _read_json(out / "eval" / f"{name}.json")
        if previous and previous.get("fingerprint") == encoder.fingerprint and limits is None:
            _log(f"reusing the evaluation of {name} in {out / 'eval'}")
            results[name] = previous
            continue
        _log(f"evaluating {name} on the held-out slice")
        results[name] = evaluate(
            encoder,
            suite=suite,
            cache_dir=out / "cache",
            show_progress=show_progress,
            name=name,
            limits=limits,
            collection=COLLECTION if name in ROUTED else None,
        )
    write_report(results, out / "eval", baseline="base")
    return results


RETRIEVAL_PATHS = ("search_query", "search_document")  # what the index and the example queries read


def export_stage(model, out: Path, tasks: Sequence[str] | None = None, int8: bool = True):
    """ONNX graphs of `tasks` (default: every path), fp32 and fused, plus int8 unless `int8` is False; the index and
    the example queries use the fused fp32 graphs either way. Reused when the export in out/onnx is this model's
    and holds those paths and variants."""
    from .runtime.onnx_encoder import OnnxEncoder

    paths = list(tasks or model.tasks.names)
    variants = ["fp32", "optimized"] + (["int8"] if int8 else [])
    manifest = _read_json(out / "onnx" / "manifest.json")
    if (
        manifest
        and manifest.get("fingerprint") == model.fingerprint
        and set(paths) <= set(manifest.get("tasks", {}))
        and set(variants) <= set(manifest.get("variants", {}))
    ):
        _log(f"reusing the ONNX graphs in {out / 'onnx'}")
    else:
        what = "every task path" if tasks is None else ", ".join(paths)
        _log(f"exporting one ONNX graph per task path ({what}; {' + '.join(variants)})")
        model.export_onnx(out / "onnx", tasks=tasks, optimize=True, quantize=int8)
    return OnnxEncoder(out / "onnx")


def index_stage(encoder, out: Path, show_progress: bool):
    from .index.faiss_index import FaissIndex

    if (out / "index" / "index.json").is_file():
        try:  # reused when its documents are this encoder's (index.persistence.check_compatible, the one rule)
            index = FaissIndex.load(out / "index", encoder=encoder)
            _log(f"reusing the FAISS index in {out / 'index'}")
            return index
        except (OSError, ValueError):  # damaged, or another model's document vectors: built again
            pass
    rows = list(iter_jsonl(SAMPLE_DIR / "retrieval" / "corpus.jsonl"))
    _log(f"indexing {len(rows)} MedQuAD answers with the search_document graph")
    index = FaissIndex.build(
        encoder,
        [r["text"] for r in rows],
        ids=[r["_id"] for r in rows],
        metadatas=[{"source": "MedQuAD"} for _ in rows],
        kind="flat",
        show_progress_bar=show_progress,
    )
    index.save(out / "index")
    return index


def adapted_index_stage(adapted, out: Path, show_progress: bool) -> dict:
    """The zero re-embedding story: an index of the corpus built with the untuned base (the user's existing index)
    is opened by the adapted model, whose document path is the base's bit for bit, and its queries are routed to
    the collection's expert; the faiss file is not rewritten."""
    from .index.faiss_index import FaissIndex
    from .model import MoTEModel

    folder = out / "base-index"
    if not (folder / "index.json").is_file():
        rows = list(iter_jsonl(SAMPLE_DIR / "retrieval" / "corpus.jsonl"))
        _log(f"indexing {len(rows)} answers with the untuned base (the index a user already has)")
        base = MoTEModel.upcycle(use_prefixes=False)
        FaissIndex.build(
            base, [r["text"] for r in rows], ids=[r["_id"] for r in rows], show_progress_bar=show_progress
        ).save(folder)
    before = json.loads((folder / "index.json").read_text())["faiss_sha256"]
    index = FaissIndex.load(folder, encoder=adapted)  # refused if the document path had changed
    if index.query_task != f"search_query@{COLLECTION}":
        index.route_queries(f"search_query@{COLLECTION}")
        index.save(folder)
    after = json.loads((folder / "index.json").read_text())["faiss_sha256"]
    return {"index": index, "path": folder, "faiss_file_unchanged": before == after}


def example_queries(n: int = EXAMPLE_QUERIES) -> list[tuple[str, set[str]]]:
    qrels = read_qrels(SAMPLE_DIR / "retrieval" / "qrels" / "test.tsv")
    texts = {r["_id"]: r["text"] for r in iter_jsonl(SAMPLE_DIR / "retrieval" / "queries.jsonl")}
    picked = sorted(qrels)[:: max(1, len(qrels) // n)][:n]
    return [(texts[q], set(qrels[q])) for q in picked]


def results_table(results: dict) -> str:
    """base | each trained model (delta to base), one row per dataset."""
    base = results["base"]
    names = [n for n in results if n != "base"]
    lines = [f"{'dataset':<20}{'metric':<12}{'base':>8}" + "".join(f"{n:>18}" for n in names)]
    for ds, r in base["datasets"].items():
        metric = r.get("main_metric", "main")
        scores = [results[n]["datasets"][ds]["main_score"] for n in names]
        cells = "".join(f"{s:>9.2f} ({s - r['main_score']:+6.2f})" for s in scores)
        lines.append(f"{ds:<20}{metric:<12}{r['main_score']:>8.2f}{cells}")
    return "\n".join(lines)


def run_quickstart(
    out: str | Path = "mote-rag-quickstart",
    steps: int | None = None,
    show_progress: bool = True,
    eval_limits: dict | None = None,
    onnx_tasks: Sequence[str] | None = None,
    int8: bool = True,
) -> dict:
    """Run every stage; returns a summary dict (also written to out/summary.json). `onnx_tasks` and `int8` choose
    what the export stage writes (default: every path, int8 included); see export_stage."""
    from .atomic import write_json_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    model, config, log = train_stage(out, steps, show_progress)
    plain, _, _ = train_stage(out, steps, show_progress, arm="plain")
    adapted, adapt_log = adapt_stage(out, steps, show_progress)
    results = evaluate_stage({"mote": model, "plain": plain, "adapted": adapted}, out, show_progress, eval_limits)
    encoder = export_stage(model, out, onnx_tasks, int8)
    index = index_stage(encoder, out, show_progress)
    routed = adapted_index_stage(adapted, out, show_progress)
    print()
    print("Held-out slice of the sample (scores x100). Every model trained on the same question-answer pairs;")
    print("mote: both experts; plain: every weight; adapted: only a query expert for this collection")
    print(f"(search_query@{COLLECTION}): its document path is the base's, so an existing index needs no re-embedding.")
    print("The untrained paths (classification, clustering) of mote and adapted score exactly as the base:")
    print(results_table(results))
    print()
    print(
        f"{routed['path']}: built with the untuned base, opened by the adapted model (document path "
        f"{adapted.path_fingerprint('search_document')} unchanged), queries routed to {routed['index'].query_task}; "
        f"0 documents re-embedded, faiss file unchanged: {routed['faiss_file_unchanged']}"
    )
    print()
    answers = []
    for query, relevant in example_queries():
        hits = index.search(query, k=3)
        print(f"Q: {query}")
        for rank, hit in enumerate(hits, 1):
            mark = "*" if hit.id in relevant else " "
            snippet = (hit.text or "").replace("\n", " ")[:90]
            print(f"  {rank}.{mark} [{hit.score:.3f}] {hit.id}: {snippet}")
        answers.append({"query": query, "hits": [h.id for h in hits], "relevant": sorted(relevant)})
    print("  (* = a relevant answer)")
    summary = {
        "steps": config.steps,
        "seconds": round(time.perf_counter() - started, 1),
        "scores": {name: {ds: r["main_score"] for ds, r in res["datasets"].items()} for name, res in results.items()},
        "fingerprint": model.fingerprint,
        "adapted": {
            "query_task": routed["index"].query_task,
            "seconds": round(adapt_log["train_seconds"] + adapt_log["passage_cache_seconds"], 1),
            "faiss_file_unchanged": routed["faiss_file_unchanged"],
        },
        "paths": {
            "model": str(out / "model"),
            "plain": str(out / "plain"),
            "adapted": str(out / "adapted"),
            "base-index": str(routed["path"]),
            "onnx": str(out / "onnx"),
            "index": str(out / "index"),
            "eval": str(out / "eval"),
        },
        "examples": answers,
    }
    write_json_atomic(out / "summary.json", summary)
    print()
    for what, path in summary["paths"].items():
        print(f"{what:>6}: {path}")
    print(f'done in {summary["seconds"]:.0f} s. Next: mote-rag search {out / "index"} "your question"')
    return summary


EXAMPLE_CACHE = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "mote-rag" / "examples-base-onnx"


def example_model(quickstart_out: str | Path = "mote-rag-quickstart", prefer_trained: bool = True) -> str:
    """An exported ONNX folder for the examples: the quickstart's trained model when it was run here, else the
    embedded base upcycled with its query/document graphs exported once into a cache folder."""
    trained = Path(quickstart_out) / "onnx"
    if prefer_trained and (trained / "manifest.json").is_file():
        return str(trained)
    if not (EXAMPLE_CACHE / "manifest.json").is_file():
        from .model import MoTEModel

        _log(f"no trained model here: exporting the upcycled base's query/document graphs to {EXAMPLE_CACHE} (once)")
        MoTEModel.upcycle().export_onnx(EXAMPLE_CACHE, tasks=["search_query", "search_document"])
    return str(EXAMPLE_CACHE)
