"""Where onnxruntime's time goes on this CPU, per variant (issue 22, "find out why, per CPU family").

    python benchmarks/profile_onnx.py --threads 2 --texts 600 --rounds 2 [--require-idle]

On the search_query path of a MiniLM MoTE export (the embedded base upcycled, `export_onnx(optimize=True,
quantize=True)`), with the task prefix, on the same real texts as bench_onnx (bench_onnx.real_texts), tokenised
once (tokenisation is outside every timing: it is the same for all). Each comparison group below is timed
interleaved: one warm-up each, then `--rounds` rounds with the order rotated every round; its ratios are
throughput vs the group's named reference, from the summed seconds. Every measure's output is compared with the
fp32 exported graph's (worst row cosine over all texts).
- graph: the fp32 exported graph vs the offline-optimised graph (MultiHeadAttention, SkipLayerNormalization,
  BiasGelu fusions), each opened with graph_optimization_level ORT_ENABLE_ALL (the default) and ORT_DISABLE_ALL;
- int8 weights: 8-bit vs 7-bit (`reduce_range`) weights, both quantised here from the optimised graph with the
  export's recipe (exporters.quantize: pooled smoothing, per-channel s8, first FFN outputs fp32), vs fp32;
- embedding table: int8 (this CPU's bit width) with the word-embedding Gather quantised too vs not (size, speed);
- threads: intra-op 1 vs 2 (vs --threads), sequential vs parallel execution with 2 inter-op threads;
- bucketing: batches of the texts in their original order vs sorted by token length vs shuffled (same batch size);
- IO binding: session.io_binding (CPU inputs and outputs) vs plain session.run.
onnxruntime's profiler (SessionOptions.enable_profiling, on separate sessions over `--profile-batches` batches
spread over the texts, so that profiling does not slow the timed sessions) gives per-op-type time shares and node
counts; op-type counts of each graph, as stored and as onnxruntime runs it (optimized_model_filepath), show the
fusions applied and which MatMuls stay fp32 in the int8 graphs.
Writes benchmarks/results/profile_onnx.json and .md (atomically) with the machine record (benchmarks/machine.py;
"idle" as in bench_onnx, --require-idle writes nothing unless idle). Full size (the defaults, 600 texts): about
10-13 minutes on an idle 2-core machine (export and quantisation ~1.5, 22 timed measures x 2 rounds ~8, profiles
~1, load settling ~1.5); the phases print their times. `--export DIR` reuses an export of the upcycled embedded
base made the same way by the current mote-rag.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_onnx import interleave, phase, real_texts
from machine import add_run_arguments, describe, start_run

RESULTS = Path(__file__).resolve().parent / "results"
TASK = "search_query"
FUSED_OPS = (
    "Attention",
    "MultiHeadAttention",
    "SkipLayerNormalization",
    "SkipSimplifiedLayerNormalization",
    "LayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "FusedMatMul",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "MatMulInteger",
    "DynamicQuantizeLinear",
)
OUTPUT = "sentence_embedding"


# ---------------------------------------------------------------------------------------------- graphs and sessions
def op_counts(path: Path) -> dict[str, int]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items(), key=lambda kv: -kv[1]))


def session(path: Path, threads: int, level: str = "all", inter: int = 1, parallel: bool = False, profile=None):
    """An onnxruntime CPU session; `profile`: a file prefix to profile into; level 'all' / 'extended' / 'none'."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[level]
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = inter
    options.execution_mode = ort.ExecutionMode.ORT_PARALLEL if parallel else ort.ExecutionMode.ORT_SEQUENTIAL
    if profile is not None:
        options.enable_profiling = True
        options.profile_file_prefix = str(profile)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def runtime_op_counts(path: Path, level: str, work: Path) -> dict[str, int]:
    """Op-type counts of `path` as onnxruntime runs it at `level` (its optimised graph, saved and read back)."""
    import onnxruntime as ort

    target = work / f"{path.stem}.runtime-{level}.onnx"
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[level]
    options.optimized_model_filepath = str(target)
    options.log_severity_level = 3  # saving an ORT_ENABLE_ALL graph warns that it is specific to this machine
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    counts = op_counts(target)
    target.unlink()
    return counts


def matmul_kinds(counts: dict[str, int]) -> dict[str, int]:
    """The MatMul-like nodes of a graph by precision: which layers stay fp32 in an int8 graph."""
    int8 = ("MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QAttention", "MatMulNBits")
    return {
        "fp32_MatMul": counts.get("MatMul", 0) + counts.get("FusedMatMul", 0),
        **{k: counts[k] for k in int8 if counts.get(k)},
        "int8_total": sum(counts.get(k, 0) for k in int8),
    }


# ------------------------------------------------------------------------------------------------- quantisation
def pooled_channel_maxima(model, export_dir: Path) -> dict:
    """The export's smoothing input: channel maxima per path graph on its own prefixed calibration texts, pooled
    over the paths (as exporters._quantize_paths does)."""
    import onnx
    from mote_rag.exporters.calibration import calibration_feeds
    from mote_rag.exporters.onnx_graphs import input_names
    from mote_rag.exporters.quantize import input_channel_maxima, pooled_maxima

    from mote_rag.runtime.manifest import Manifest

    manifest = Manifest.read(export_dir)
    names = input_names(model)
    per_path = {}
    for task in manifest.task_set().names:
        graph = manifest.graph_name(task, "optimized")
        if graph not in per_path:
            feeds = calibration_feeds(model, task, None, names)
            per_path[graph] = input_channel_maxima(onnx.load(str(export_dir / graph)), feeds)
    return pooled_maxima(per_path.values())


def word_embedding_gathers(model) -> tuple[str | None, list[str]]:
    """(the Gather reading the word-embedding table, the other Gathers): the table is the largest 2-D initializer
    that a Gather indexes."""
    sizes = {i.name: (tuple(i.dims), int(np.prod(i.dims))) for i in model.graph.initializer}
    gathers = [n for n in model.graph.node if n.op_type == "Gather" and len(sizes.get(n.input[0], ((),))[0]) == 2]
    if not gathers:
        return None, []
    word = max(gathers, key=lambda n: sizes[n.input[0]][1])
    return word.name, [n.name for n in model.graph.node if n.op_type == "Gather" and n.name != word.name]


def quantize_variant(source: Path, target: Path, maxima: dict, config, reduce_range: bool, gather: bool) -> dict:
    """int8 of the optimised graph `source` with the export's recipe (exporters.quantize.quantize_graph's call),
    with `reduce_range` chosen here instead of by the CPU, and optionally the word-embedding Gather quantised."""
    import onnx
    from mote_rag.exporters.quantize import (
        FP32_FEED_FORWARD_LAYERS,
        PRE_PROCESS_KEY,
        PRE_PROCESS_VALUE,
        feed_forward_output_nodes,
        smooth_matmul_inputs,
    )
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    smooth_matmul_inputs(model, maxima)
    keep = feed_forward_output_nodes(model, config.intermediate_size, config.hidden_size)[:FP32_FEED_FORWARD_LAYERS]
    word, other_gathers = word_embedding_gathers(model)
    onnx.helper.set_model_props(
        model, {**{p.key: p.value for p in model.metadata_props}, PRE_PROCESS_KEY: PRE_PROCESS_VALUE}
    )
    quantize_dynamic(
        model,
        str(target),
        op_types_to_quantize=["MatMul", "Gather"] if gather else ["MatMul"],
        per_channel=True,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=keep + (other_gathers if gather else []),
        reduce_range=reduce_range,
    )
    return {
        "reduce_range": reduce_range,
        "word_embedding_gather_quantized": word if gather else None,
        "fp32_matmuls_kept": keep,
        "bytes": target.stat().st_size,
    }


# ------------------------------------------------------------------------------------------------------- timing
def runner(sess, batches: list[dict], inverse: np.ndarray | None = None, binding: bool = False):
    """A callable running every batch through `sess`; returns the embeddings in the texts' original order."""

    def run_plain(feed):
        return sess.run([OUTPUT], feed)[0]

    def run_bound(feed):
        bound = sess.io_binding()
        for name, value in feed.items():
            bound.bind_cpu_input(name, value)
        bound.bind_output(OUTPUT, "cpu")
        sess.run_with_iobinding(bound)
        return bound.copy_outputs_to_cpu()[0]

    one = run_bound if binding else run_plain

    def go():
        out = np.concatenate([one(feed) for feed in batches])
        return out if inverse is None else out[inverse]

    go.warm = lambda: [one(feed) for feed in batches[:2]]
    return go


def time_group(name: str, measures: dict, reference: str, rounds: int, truth: np.ndarray, n_texts: int) -> dict:
    """Interleave `measures` (name -> runner), return per measure seconds, texts/s, ratio and worst row cosine."""
    for fn in measures.values():
        fn.warm()
    seconds, last = interleave(measures, rounds, name)
    ref = sum(seconds[reference])
    rows = {}
    for m, per_round in seconds.items():
        total = sum(per_round)
        rows[m] = {
            "seconds": total,
            "seconds_per_round": per_round,
            "texts_per_s": rounds * n_texts / total,
            "throughput_vs_reference": ref / total,
            "worst_row_cosine_vs_fp32": float((last[m] * truth).sum(1).min()),
        }
    print(f"  {name}: throughput vs {reference}")
    for m, row in rows.items():
        print(
            f"    {m:<34} {row['texts_per_s']:7.1f} texts/s  {row['throughput_vs_reference']:6.3f}x  "
            f"worst cosine {row['worst_row_cosine_vs_fp32']:.4f}"
        )
    return {"reference": reference, "measures": rows}


# ----------------------------------------------------------------------------------------------------- profiling
def parse_profile(trace_file: str, skip_runs: int = 0) -> dict:
    """Per-op-type kernel time (ms, share of all kernel time) and node counts from an onnxruntime JSON trace,
    leaving out the first `skip_runs` session runs (warm-up)."""
    events = json.loads(Path(trace_file).read_text())
    Path(trace_file).unlink()
    runs = sorted(
        e["ts"] + e.get("dur", 0) for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"
    )
    after = runs[skip_runs - 1] if skip_runs and len(runs) >= skip_runs else -1
    events = [e for e in events if e.get("ts", 0) > after]
    by_op: dict[str, dict] = {}
    nodes: dict[str, set] = collections.defaultdict(set)
    threads, run_us = set(), 0.0
    for e in events:
        if e.get("cat") == "Session" and e.get("name") == "model_run":
            run_us += e.get("dur", 0)
        if e.get("cat") != "Node" or not e.get("name", "").endswith("_kernel_time"):
            continue
        op = e.get("args", {}).get("op_name", "?")
        row = by_op.setdefault(op, {"ms": 0.0, "calls": 0})
        row["ms"] += e.get("dur", 0) / 1000
        row["calls"] += 1
        nodes[op].add(e["name"][: -len("_kernel_time")])
        threads.add(e.get("tid"))
    total = sum(r["ms"] for r in by_op.values()) or 1.0
    ops = {
        op: {"ms": round(r["ms"], 2), "share": round(r["ms"] / total, 4), "nodes": len(nodes[op]), "calls": r["calls"]}
        for op, r in sorted(by_op.items(), key=lambda kv: -kv[1]["ms"])
    }
    return {
        "kernel_ms": round(total, 1),
        "model_run_ms": round(run_us / 1000, 1),
        "outside_kernels_share": round(1 - total / (run_us / 1000), 4) if run_us else None,
        "threads_seen": len(threads),
        "ops": ops,
    }


def profile(path: Path, level: str, batches: list[dict], threads: int, work: Path) -> dict:
    """Profile one session over a warm-up batch then `batches`; the warm-up run is left out of the figures."""
    sess = session(path, threads, level=level, profile=work / f"{path.stem}-{level}")
    for feed in batches[:1] + batches:
        sess.run([OUTPUT], feed)
    return parse_profile(sess.end_profiling(), skip_runs=1)


# ---------------------------------------------------------------------------------------------------------- main
def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(parser, texts=600)
    parser.add_argument("--profile-batches", type=int, default=8, help="batches run under the profiler per graph")
    parser.add_argument("--out", type=Path, default=RESULTS / "profile_onnx.json", help="the .md goes beside it")
    parser.add_argument("--export", type=Path, default=None, help="reuse this export of the upcycled embedded base")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (the measures are interleaved and rotated)")
    return args


def tokenized_batches(enc, texts: list[str], bs: int, order: np.ndarray) -> tuple[list[dict], dict]:
    """Feeds of `texts` (prefixed) in `order`, `bs` per batch, and their padding statistics."""
    batches, real, padded = [], 0, 0
    for start in range(0, len(order), bs):
        feed = enc.tokenize([texts[i] for i in order[start : start + bs]])
        batches.append(feed)
        real += int(feed["attention_mask"].sum())
        padded += feed["attention_mask"].size
    return batches, {"real_tokens": real, "padded_tokens": padded, "padding_share": round(1 - real / padded, 4)}


def build_graphs(work: Path, threads: int, result: dict, export: Path | None = None) -> tuple[Path, dict[str, Path]]:
    """Export the MoTE model (or use `export`, one made the same way), then quantise its search_query optimised
    graph three ways; returns the export folder and the graphs."""
    import torch

    from mote_rag import MoTEModel
    from mote_rag.default_base import embedded_base_path
    from mote_rag.runtime.cpu import has_vnni
    from mote_rag.runtime.manifest import Manifest

    torch.set_num_threads(threads)
    model = MoTEModel.upcycle(embedded_base_path())
    if export is None:
        export = model.export_onnx(work / "mote", optimize=True, quantize=True)
    manifest = Manifest.read(export)
    graphs = {v: export / manifest.graph_name(TASK, v) for v in ("fp32", "optimized", "int8")}
    result["export_int8_settings"] = manifest.data["variants"]["int8"]["quantization"]
    result["export_fusions"] = manifest.data["variants"]["optimized"].get("fusions")
    maxima = pooled_channel_maxima(model, export)
    config = model.backbone.config
    here = not has_vnni()  # the bit width quantize_graph would choose on this CPU
    result["this_cpu_reduce_range"] = here
    made = {}
    for name, rr, gather in (("int8_8bit", False, False), ("int8_7bit", True, False), ("int8_gather", here, True)):
        graphs[name] = work / f"{TASK}.{name}.onnx"
        made[name] = quantize_variant(graphs["optimized"], graphs[name], maxima, config, rr, gather)
    made["int8_8bit"]["same_bytes_as_export_int8"] = graphs["int8_8bit"].read_bytes() == graphs["int8"].read_bytes()
    made["int8_7bit"]["same_bytes_as_export_int8"] = graphs["int8_7bit"].read_bytes() == graphs["int8"].read_bytes()
    result["quantized_here"] = made
    return export, graphs


def run_groups(graphs, feeds, threads: int, rounds: int, n: int, result: dict) -> None:
    """Every comparison group, interleaved within the group (see the module docstring)."""
    orig, sorted_, shuffled = feeds["original"], feeds["sorted"], feeds["shuffled"]
    truth = runner(session(graphs["fp32"], threads), orig[0])()
    own = "int8_7bit" if result["this_cpu_reduce_range"] else "int8_8bit"
    groups = result["groups"]
    groups["graph"] = time_group(
        "graph",
        {
            "fp32_exported@ORT_ENABLE_ALL": runner(session(graphs["fp32"], threads), orig[0]),
            "fp32_exported@ORT_DISABLE_ALL": runner(session(graphs["fp32"], threads, "none"), orig[0]),
            "optimized@ORT_ENABLE_ALL": runner(session(graphs["optimized"], threads), orig[0]),
            "optimized@ORT_DISABLE_ALL": runner(session(graphs["optimized"], threads, "none"), orig[0]),
        },
        "fp32_exported@ORT_ENABLE_ALL",
        rounds,
        truth,
        n,
    )
    groups["int8_weights"] = time_group(
        "int8 weights",
        {k: runner(session(graphs[k], threads), orig[0]) for k in ("optimized", "int8_8bit", "int8_7bit")},
        "optimized",
        rounds,
        truth,
        n,
    )
    groups["embedding_table"] = time_group(
        "embedding table",
        {
            f"{own} (Gather fp32)": runner(session(graphs[own], threads), orig[0]),
            f"{own} + word-embedding Gather int8": runner(session(graphs["int8_gather"], threads), orig[0]),
        },
        f"{own} (Gather fp32)",
        rounds,
        truth,
        n,
    )
    for variant in ("optimized", own):
        measures = {}
        for intra in sorted({1, 2, threads}):
            measures[f"{variant} intra {intra}, sequential"] = runner(session(graphs[variant], intra), orig[0])
            measures[f"{variant} intra {intra}, parallel inter 2"] = runner(
                session(graphs[variant], intra, inter=2, parallel=True), orig[0]
            )
        groups[f"threads_{variant}"] = time_group(
            f"threads ({variant})", measures, f"{variant} intra {threads}, sequential", rounds, truth, n
        )
    opt = session(graphs["optimized"], threads)
    groups["bucketing"] = time_group(
        "bucketing (optimized)",
        {
            "original order": runner(opt, orig[0]),
            "sorted by length": runner(opt, sorted_[0], sorted_[2]),
            "shuffled": runner(opt, shuffled[0], shuffled[2]),
        },
        "original order",
        rounds,
        truth,
        n,
    )
    groups["bucketing"]["padding"] = {k: feeds[k][1] for k in ("original", "sorted", "shuffled")}
    groups["io_binding"] = time_group(
        "IO binding (optimized)",
        {"session.run": runner(opt, orig[0]), "io_binding": runner(opt, orig[0], binding=True)},
        "session.run",
        rounds,
        truth,
        n,
    )


def graph_facts(graphs: dict[str, Path], work: Path) -> dict:
    facts = {}
    for name, path in graphs.items():
        stored = op_counts(path)
        facts[name] = {
            "bytes": path.stat().st_size,
            "ops_stored": stored,
            "matmuls_stored": matmul_kinds(stored),
            "ops_at_ORT_ENABLE_ALL": (run_all := runtime_op_counts(path, "all", work)),
            "matmuls_at_ORT_ENABLE_ALL": matmul_kinds(run_all),
        }
    return facts


def write_markdown(result: dict, path: Path) -> None:
    from mote_rag.atomic import write_bytes_atomic

    m = result["machine"]
    lines = [
        "# profile_onnx",
        "",
        f"{describe(m)}. {result['texts']} real texts (search_query prefix), batch {result['batch_size']}, "
        f"{result['threads']} threads, {result['rounds']} interleaved rounds. Load average "
        f"{m['load_average_start'][0]:.2f} at start, {m['load_average_end'][0]:.2f} at end, other processes "
        f"{m.get('other_cpu_share', float('nan')):.0%} of the CPU: **{'idle' if m['idle'] else 'NOT idle'}**. "
        f"Command: `{result['command']}`.",
        "",
        "| group | measure | texts/s | vs reference | worst row cosine vs fp32 |",
        "|---|---|---|---|---|",
    ]
    for group, g in result["groups"].items():
        for name, row in g["measures"].items():
            ref = " (reference)" if name == g["reference"] else ""
            lines.append(
                f"| {group} | {name}{ref} | {row['texts_per_s']:.1f} | {row['throughput_vs_reference']:.3f}x | "
                f"{row['worst_row_cosine_vs_fp32']:.4f} |"
            )
    lines += [
        "",
        "Padding share per batch order: "
        + ", ".join(f"{k} {v['padding_share']:.1%}" for k, v in result["groups"]["bucketing"]["padding"].items()),
        "",
        "| graph | bytes | MatMul fp32 / int8, stored | as run (ORT_ENABLE_ALL) | fused ops as run |",
        "|---|---|---|---|---|",
    ]
    for name, f in result["graphs"].items():
        stored, run = f["matmuls_stored"], f["matmuls_at_ORT_ENABLE_ALL"]
        fused = ", ".join(f"{op} {n}" for op, n in f["ops_at_ORT_ENABLE_ALL"].items() if op in FUSED_OPS)
        lines.append(
            f"| {name} | {f['bytes']:,} | {stored['fp32_MatMul']} / {stored['int8_total']} | "
            f"{run['fp32_MatMul']} / {run['int8_total']} | {fused} |"
        )
    lines += ["", "| profile | kernel ms | top op types: share of kernel time (nodes) |", "|---|---|---|"]
    for name, prof in result["profiles"].items():
        top = ", ".join(f"{op} {r['share']:.0%} ({r['nodes']})" for op, r in list(prof["ops"].items())[:7])
        lines.append(f"| {name} | {prof['kernel_ms']:.0f} | {top} |")
    lines += [
        "",
        f"Profiles: {result['profile_batches']} batches spread over the texts, after one warm-up batch. "
        f"The export's int8 graph: reduce_range {result['export_int8_settings'].get('reduce_range')}.",
        "",
    ]
    write_bytes_atomic(path, "\n".join(lines).encode("utf-8"))


def main(argv=None) -> int:
    args = parse_args(argv)
    run = start_run(args)
    if run is None:
        return 2
    import onnxruntime as ort

    from mote_rag import OnnxEncoder
    from mote_rag.atomic import write_json_atomic
    from mote_rag.readers import default_data_dir

    texts = real_texts(default_data_dir(), args.texts)
    phases: dict = {}
    result: dict = {
        "benchmark": "profile_onnx",
        "command": "python benchmarks/profile_onnx.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "task": TASK,
        "threads": args.threads,
        "texts": len(texts),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "export": "made in this run" if args.export is None else str(args.export),
        "onnxruntime_build": ort.get_build_info(),
        "groups": {},
        "profiles": {},
        "phase_seconds": phases,
    }
    with tempfile.TemporaryDirectory(prefix="profile-onnx-") as tmp:
        work = Path(tmp)
        with phase("export and quantise", phases):
            export, graphs = build_graphs(work, args.threads, result, args.export)
        enc = OnnxEncoder(export, tasks=[TASK], variant="fp32")
        prefixed = enc.prepare_texts(texts, TASK)
        lengths = np.array([len(e.ids) for e in enc.tokenizer.encode_batch(prefixed)])
        feeds = {}
        for kind, order in (
            ("original", np.arange(len(texts))),
            ("sorted", np.argsort(lengths, kind="stable")),
            ("shuffled", np.random.default_rng(0).permutation(len(texts))),
        ):
            batches, padding = tokenized_batches(enc, prefixed, args.batch_size, order)
            feeds[kind] = (batches, padding, np.argsort(order))
        with phase("graph facts", phases):
            result["graphs"] = graph_facts(graphs, work)
        with phase("timed groups", phases):
            run_groups(graphs, feeds, args.threads, args.rounds, len(texts), result)
        with phase("profiles", phases):
            spread = feeds["original"][0][:: max(1, len(feeds["original"][0]) // args.profile_batches)]
            spread = spread[: args.profile_batches]
            for name, level in (("fp32", "all"), ("fp32", "none"), ("optimized", "all"), ("optimized", "none")):
                result["profiles"][f"{name}@ORT_{'ENABLE' if level == 'all' else 'DISABLE'}_ALL"] = profile(
                    graphs[name], level, spread, args.threads, work
                )
            for name in ("int8", "int8_8bit", "int8_7bit", "int8_gather"):
                result["profiles"][name] = profile(graphs[name], "all", spread, args.threads, work)
            result["profile_batches"] = len(spread)
    result["machine"] = run.finish()
    result["idle"] = result["machine"]["idle"]
    report(result)
    if args.require_idle and not result["idle"]:
        print(f"--require-idle: not idle ({run.verdict()}): nothing written", file=sys.stderr)
        return 2
    run.warn_if_loaded()
    write_json_atomic(args.out, result)
    write_markdown(result, args.out.with_suffix(".md"))
    print(f"phases: {phases} (total {result['machine']['run_seconds']:.0f} s)")
    print(f"wrote {args.out} and {args.out.with_suffix('.md')} (idle: {result['idle']})")
    return 0


def report(result: dict) -> None:
    """Print the profiles and graph facts (the timed groups print as they run)."""
    print(f"\nmachine: {describe(result['machine'])}")
    for name, f in result["graphs"].items():
        mm = f["matmuls_at_ORT_ENABLE_ALL"]
        fused = {k: v for k, v in f["ops_at_ORT_ENABLE_ALL"].items() if k not in ("Cast", "Shape", "Unsqueeze")}
        print(f"  graph {name:<10} {f['bytes'] / 1e6:6.1f} MB  MatMul fp32/int8 as run {mm}  ops as run {fused}")
    for name, prof in result["profiles"].items():
        top = ", ".join(f"{op} {r['share']:.0%}/{r['nodes']}" for op, r in list(prof["ops"].items())[:6])
        print(f"  profile {name:<30} kernel {prof['kernel_ms']:8.1f} ms: {top}")


if __name__ == "__main__":
    sys.exit(main())
