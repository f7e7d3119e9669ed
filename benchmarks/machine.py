"""Machine facts for the benchmark results (shared by bench_onnx.py and profile_onnx.py): CPU model and the SIMD
flags that decide onnxruntime's kernels, package versions, thread settings, and whether the run was idle.

Idle rule: the 1-minute load average is <= 0.5 both at the start and at the end of the run. A benchmark's own
threads lift the load average while they run (two busy threads take it towards 2.0), so `settle` waits, after the
work and before reading the end figure, until the load has decayed to the limit (at most `settle_s`: from 2.0 that
takes about 85 s when nothing else runs; another busy process keeps it above). The start figure is read the same
way, so a run started right after another benchmark waits for its load to decay instead of being marked loaded.
`other_cpu_share` adds what the load average cannot see between its two readings: the share of the machine's CPU
time (from /proc/stat) spent during the run by processes other than this one and its children.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

from mote_rag.runtime.cpu import SIMD_FLAGS, cpu_flags, cpu_model_name, cpuinfo, simd_family

IDLE_LOAD = 0.5
PACKAGES = (
    "onnxruntime",
    "onnx",
    "onnxscript",
    "torch",
    "sentence-transformers",
    "transformers",
    "numpy",
    "tokenizers",
)
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TOKENIZERS_PARALLELISM")


def cpu_facts() -> dict:
    """Model name, family/model numbers, the listed SIMD flags (True/False each) and the int8 kernel family."""
    info = cpuinfo()
    flags = cpu_flags()
    have = {f: f in flags for f in SIMD_FLAGS}
    family = simd_family(flags)
    return {
        "model_name": cpu_model_name(),
        "vendor": info.get("vendor_id"),
        "cpu_family": info.get("cpu family"),
        "model": info.get("model"),
        "flags": have,
        "vnni": have["avx512_vnni"] or have["avx_vnni"],
        "int8_family": family,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }


def versions() -> dict:
    """Installed versions (None where absent), read from package metadata so nothing heavy is imported."""
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def thread_settings(threads: int) -> dict:
    """The thread count asked for, what torch was set to (if imported) and the environment variables that matter."""
    torch = sys.modules.get("torch")
    return {
        "threads": threads,
        "onnxruntime_intra_op": threads,
        "onnxruntime_inter_op": 1,
        "torch_num_threads": torch.get_num_threads() if torch is not None else None,
        "env": {k: os.environ.get(k) for k in THREAD_ENV},
    }


def load1() -> float:
    return os.getloadavg()[0]


def _cpu_busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy since boot (/proc/stat, all CPUs), None where unreadable."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def settle(limit: float = IDLE_LOAD, settle_s: float = 0.0) -> float:
    """Wait (at most `settle_s` seconds) until the 1-minute load average is <= `limit`; return the last reading."""
    deadline = time.monotonic() + settle_s
    load = load1()
    if load > limit and settle_s > 0:
        print(f"load average {load:.2f} > {limit}: waiting up to {settle_s:.0f} s for it to decay", flush=True)
    while load > limit and time.monotonic() < deadline:
        time.sleep(5)
        load = load1()
    return load


class Run:
    """One benchmark run's machine record: start facts, end facts, the idle verdict and the elapsed time."""

    def __init__(self, threads: int, settle_s: float = 0.0):
        self.settle_s = settle_s
        settle(IDLE_LOAD, settle_s)
        self.start_wall = time.perf_counter()
        self.start_busy, self.start_own = _cpu_busy_seconds(), _own_cpu_seconds()
        self.facts = {
            "cpu": cpu_facts(),
            "versions": versions(),
            "platform": platform.platform(),
            "load_average_start": list(os.getloadavg()),
            "threads": thread_settings(threads),
        }

    @property
    def start_load(self) -> float:
        return self.facts["load_average_start"][0]

    def finish(self) -> dict:
        """Read the end figures (after the load has settled) and classify the run; returns the machine record."""
        wall = time.perf_counter() - self.start_wall
        busy, own = _cpu_busy_seconds(), _own_cpu_seconds()
        if busy is not None and self.start_busy is not None:
            other = max(0.0, (busy - self.start_busy) - (own - self.start_own))
            self.facts["other_cpu_share"] = round(other / (wall * (self.facts["cpu"]["usable_cpus"] or 1)), 3)
        settle(IDLE_LOAD, self.settle_s)
        self.facts["load_average_end"] = list(os.getloadavg())
        self.facts["threads"]["torch_num_threads"] = thread_settings(1)["torch_num_threads"]
        start, end = self.start_load, self.facts["load_average_end"][0]
        self.facts["idle"] = start <= IDLE_LOAD and end <= IDLE_LOAD
        self.facts["idle_rule"] = f"1-minute load average <= {IDLE_LOAD} at start and at end (after settling)"
        self.facts["run_seconds"] = round(wall, 1)
        return self.facts

    def verdict(self) -> str:
        f = self.facts
        return (
            f"load average (1 min) {self.start_load:.2f} at start, {f['load_average_end'][0]:.2f} at end; "
            f"other processes used {100 * f.get('other_cpu_share', float('nan')):.0f}% of the CPU during the run"
        )

    def warn_if_loaded(self) -> None:
        if not self.facts["idle"]:
            bar = "!" * 100
            print(
                f"{bar}\nNOT IDLE: {self.verdict()} (idle needs <= {IDLE_LOAD} at both). These figures were "
                f'measured on a loaded machine; they are written with "idle": false.\n{bar}',
                flush=True,
            )


def describe(facts: dict) -> str:
    """One line naming the CPU, its int8 family and the onnxruntime / torch versions."""
    cpu, v = facts["cpu"], facts["versions"]
    return (
        f"{cpu['model_name']} ({cpu['int8_family']}; {cpu['usable_cpus']} usable CPUs), onnxruntime "
        f"{v['onnxruntime']}, torch {v['torch']}, numpy {v['numpy']}"
    )


def add_run_arguments(parser, texts: int) -> None:
    """The options every machine-recording benchmark takes (threads, sizes, rounds, the idle rule)."""
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--texts", type=int, default=texts)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per comparison (>= 2)")
    parser.add_argument("--require-idle", action="store_true", help="write nothing (exit 2) unless the run is idle")
    parser.add_argument("--settle-s", type=float, default=150, help="wait at most this long for the load to decay")


def start_run(args) -> Run | None:
    """The run's machine record, after the load settles; None (said on stderr) when --require-idle is given and
    the machine is not idle at start."""
    import sys

    run = Run(args.threads, settle_s=args.settle_s)
    if args.require_idle and run.start_load > IDLE_LOAD:
        print(
            f"--require-idle: the 1-minute load average is {run.start_load:.2f} at start (> {IDLE_LOAD})",
            file=sys.stderr,
        )
        return None
    print(f"machine: {describe(run.facts)}; load average {run.start_load:.2f}", flush=True)
    return run
