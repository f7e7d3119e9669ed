"""The one conftest of the suite (tests/ and integrations/): data, shared models, the fake encoder, the two tiers.

Tiers. A test that needs torch (a forward pass, an export, training) is marked `slow`; the rest is the fast tier,
`make test-fast` (`pytest -m 'not slow'`), which must not import torch: `_TorchGuard` below fails a test that is not
marked slow and imports it (while collecting its module too). `make test` runs both tiers.

Models are built once per session and shared read-only. A test that changes one copies it first
(`copy.deepcopy(tiny_mote)`, `shutil.copytree(tiny_onnx_dir, tmp_path / "copy")`); at the end of the session each
shared model's fingerprint and each shared folder's files are checked against what they were when built.

The backend choice's cache ($MOTE_RAG_CACHE, mote_rag.backend) is a fresh temporary folder per run, set in
`pytest_configure`, so `mote-rag index --backend auto` measures on this machine in every run and writes nothing home.

Threads are pinned once, in `pytest_configure`: OMP_NUM_THREADS (and MKL's, OpenBLAS's) is set to the usable CPUs,
at most 4, unless the run sets it; torch and faiss read it when they load (the fast tier never loads torch). On the
idle 2-core machine two threads beat one (MiniLM evaluation 26 s against 40 s, the tiny-model training tests 31 s
against 36 s); on a machine busy with other jobs, `OMP_NUM_THREADS=1 make test` avoids oversubscribing it.
"""

from __future__ import annotations

import copy
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from mote_rag.encoders import EncoderBase
from mote_rag.tasks import TaskSet

REPO = Path(__file__).resolve().parent
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
MAX_THREADS = 4


# ---------------------------------------------------------------------------------------------- tiers and threads
def pytest_configure(config):
    threads = os.environ.get("OMP_NUM_THREADS") or str(min(MAX_THREADS, len(os.sched_getaffinity(0))))
    for name in THREAD_VARIABLES:
        os.environ.setdefault(name, threads)
    if "torch" in sys.modules:  # loaded before us (a plugin): pin it now; otherwise it reads the variables
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    config.pluginmanager.register(_TorchGuard(), "mote-rag-torch-guard")
    # the backend choice and its ONNX exports (mote_rag.backend) go to a cache of the run's own, never ~/.cache
    import tempfile

    os.environ["MOTE_RAG_CACHE"] = config._mote_rag_cache = tempfile.mkdtemp(prefix="mote-rag-test-cache-")


def pytest_unconfigure(config):
    import shutil

    cache = getattr(config, "_mote_rag_cache", None)
    if cache:
        shutil.rmtree(cache, ignore_errors=True)


class _TorchGuard:
    """Fails a fast-tier test (not marked slow) that imports torch, naming it; and a test module that imports torch
    when it is collected (pytest imports every module, even one whose tests are all deselected)."""

    def __init__(self):
        self.module_culprits: set[str] = set()
        self.seconds = {"fast": 0.0, "slow": 0.0}
        self.tests = {"fast": set(), "slow": set()}

    def pytest_report_header(self, config):
        return (
            "tiers: the fast tier is -m 'not slow' (no torch; make test-fast), the slow tier needs torch; "
            f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
        )

    def pytest_runtest_logreport(self, report):
        tier = "slow" if "slow" in report.keywords else "fast"
        self.seconds[tier] += report.duration
        self.tests[tier].add(report.nodeid)

    def pytest_terminal_summary(self, terminalreporter):
        parts = [f"{tier} {len(self.tests[tier])} tests, {self.seconds[tier]:.1f} s" for tier in ("fast", "slow")]
        terminalreporter.write_line("tiers (setup + call + teardown): " + "; ".join(parts))

    @pytest.hookimpl(wrapper=True)
    def pytest_make_collect_report(self, collector):
        before = "torch" in sys.modules
        report = yield
        if not before and "torch" in sys.modules and isinstance(collector, pytest.Module):
            self.module_culprits.add(str(collector.path.relative_to(REPO)))
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        item.stash[_TORCH_BEFORE] = "torch" in sys.modules
        module = str(item.path.relative_to(REPO))
        if module in self.module_culprits and not _is_slow(item):
            pytest.fail(
                f"{module} imports torch when it is imported, yet {item.name} is not marked slow: the fast tier "
                "(pytest -m 'not slow') must not import torch; import it inside the slow tests or their fixtures, "
                "or mark the whole module slow",
                pytrace=False,
            )

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        result = yield
        if not _is_slow(item) and not item.stash.get(_TORCH_BEFORE, True) and "torch" in sys.modules:
            pytest.fail(
                f"{item.nodeid} imported torch but is not marked slow: mark it @pytest.mark.slow, or keep torch out "
                "of it (the fast tier must not import torch)",
                pytrace=False,
            )
        return result


_TORCH_BEFORE = pytest.StashKey[bool]()


def pytest_ignore_collect(collection_path: Path, config):
    """A module marked slow as a whole (`pytestmark = pytest.mark.slow` at its top level) is not even imported
    when the run deselects slow tests: such modules may import torch at the top, the fast tier never loads them."""
    if collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    if _deselects_slow(config.getoption("markexpr")) and _module_marked_slow(collection_path):
        return True
    return None


def _deselects_slow(markexpr: str) -> bool:
    """True when `-m markexpr` deselects every test marked slow, whatever its other marks."""
    if not markexpr:
        return False
    from _pytest.mark.expression import Expression

    expression = Expression.compile(markexpr)
    every_mark = expression.evaluate(lambda _name, **_: True)
    only_slow = expression.evaluate(lambda name, **_: name == "slow")
    return not every_mark and not only_slow


def _module_marked_slow(path: Path) -> bool:
    import ast

    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            return ast.unparse(node.value) == "pytest.mark.slow"
    return False


def _is_slow(item) -> bool:
    return item.get_closest_marker("slow") is not None


def _torch():
    """torch, pinned to the thread count of `pytest_configure` (imported only by the slow tier's fixtures)."""
    import torch

    threads = int(os.environ["OMP_NUM_THREADS"])
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return torch


# ---------------------------------------------------------------------------------------------- data
RANX_METRICS = ("ndcg@10", "map@10", "recall@100", "mrr@10")
RANX_ID_WIDTH = 12


def ranx_scores(qrels: dict, run: dict, metrics=RANX_METRICS) -> dict:
    """ranx's figures for (qrels, run), every document id renamed to one width first (the same renaming in both, so
    the figures are unchanged). ranx types document ids as fixed-width strings and numba compiles its kernels once
    per width, 15-30 s each on 2 cores; with one width the suite compiles them once, and `make test` does that
    first (`warm_ranx`), so a fresh checkout's test timings do not carry it."""
    from ranx import Qrels, Run, evaluate

    names: dict = {}

    def name(doc) -> str:
        return names.setdefault(doc, f"d{len(names):0{RANX_ID_WIDTH - 1}d}")

    renamed_qrels = {str(q): {name(d): int(v) for d, v in docs.items()} for q, docs in qrels.items()}
    renamed_run = {str(q): {name(d): float(v) for d, v in docs.items()} for q, docs in run.items()}
    return evaluate(Qrels(renamed_qrels), Run(renamed_run), list(metrics))


def warm_ranx() -> None:
    """Compile (and cache, in ranx's __pycache__) the numba kernels `ranx_scores` uses; the Makefile's test targets
    run it once."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety notes about ranx's own casts
        ranx_scores({"q0": {"a": 1, "b": 2}, "q1": {"c": 1}}, {"q0": {"a": 0.9, "c": 0.5}, "q1": {"c": 0.7, "b": 0.1}})


def shared_data_dir() -> Path:
    return Path(os.environ.get("MOTE_RAG_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        raise FileNotFoundError(f"shared datasets not found at {path} (set MOTE_RAG_DATA)")
    return path


@pytest.fixture(scope="session")
def base_path() -> Path:
    from mote_rag.default_base import embedded_base_path

    return embedded_base_path()


# ---------------------------------------------------------------------------------------------- the fake encoder
class HashEncoder(EncoderBase):
    """The suite's one fake encoder, torch-free: each word is a fixed pseudo-random vector (seeded by its hash) and a
    text the sum of its words' plus its expert's own vector, so similar texts get similar vectors, each task path
    gives other vectors, and scores do not tie. A row does not depend on its batch. Only `_embed_batch` is its own:
    input checks, task resolution, prefixes, batching and output shapes are EncoderBase's, as for the real backends.

    `calls` holds one (task name, rows) per batch step; `seen` maps a task name to the texts embedded on it.
    """

    def __init__(
        self,
        dim: int = 64,
        fingerprint: str = "hash-v1",
        tasks: TaskSet | None = None,
        use_prefixes: bool = False,
        max_seq_length: int = 128,
        source: str = "hash",
    ):
        self.dim, self.fingerprint, self.tasks = dim, fingerprint, tasks or TaskSet()
        self.use_prefixes, self.max_seq_length, self.source = use_prefixes, max_seq_length, source
        self.calls: list[tuple[str, int]] = []
        self.seen: dict[str, set[str]] = {}

    def _vector(self, key: str) -> np.ndarray:
        return np.random.default_rng(zlib.crc32(key.encode())).standard_normal(self.dim).astype(np.float32)

    def _embed_batch(self, texts, tasks, normalize):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, (text, task) in enumerate(zip(texts, tasks)):
            for word in text.lower().split():
                out[i] += self._vector(word)
            out[i] += 0.5 * self._vector("expert:" + task.expert)
            self.seen.setdefault(task.name, set()).add(text)
        for name in dict.fromkeys(t.name for t in tasks):
            self.calls.append((name, sum(t.name == name for t in tasks)))
        return out / np.linalg.norm(out, axis=1, keepdims=True) if normalize else out

    def tasks_used(self) -> set[str]:
        return {name for name, _ in self.calls}


@pytest.fixture(scope="session")
def hash_encoder():
    """The HashEncoder class (test modules do not import conftest): `hash_encoder(dim=8, fingerprint="fp-a")`."""
    return HashEncoder


@pytest.fixture()
def encoder(hash_encoder):
    """The integrations' vector-store tests' encoder, a HashEncoder: its task paths differ, so routing mix-ups show."""
    return hash_encoder(dim=32, fingerprint="hash-a")


@pytest.fixture()
def other_encoder(hash_encoder):
    """Another model of `encoder`'s shape (another fingerprint): what the stores' encoder guard must refuse."""
    return hash_encoder(dim=32, fingerprint="hash-b")


# ---------------------------------------------------------------------------------------------- shared, read-only
def _read_only(model, name: str):
    """Yield a session model; at the end of the session, fail if a test changed its weights or settings (its
    fingerprint, recomputed, differs): a test that changes a shared model must change a deepcopy."""
    before = model.fingerprint
    yield model
    assert model.refresh_fingerprint() == before, f"a test changed the shared {name}: deepcopy it first"


def _read_only_folder(folder: Path, name: str):
    """Yield a session folder; at the end of the session, fail if a test changed, added or removed a file in it."""
    before = _digest(folder)
    yield folder
    assert _digest(folder) == before, f"a test changed the shared {name}: copytree it first"


def _digest(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): zlib.crc32(p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------- tiny models (slow)
@pytest.fixture(scope="session")
def torch_pinned():
    """torch, imported and pinned to the session's thread count (`_torch`); every torch fixture requests it."""
    return _torch()


@pytest.fixture(scope="session")
def nudge_experts(torch_pinned):
    """nudge_experts(model, seed, scale=0.05): seeded noise on every expert, so each task path is a different
    function; returns the model (changed in place: nudge a copy of a shared one)."""
    torch = torch_pinned

    def nudge(model, seed: int, scale: float = 0.05):
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in model.expert_parameters():
                p.add_(torch.randn_like(p) * scale)
        model.refresh_fingerprint()
        return model

    return nudge


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory, base_path, torch_pinned) -> Path:
    """A 4-layer, 32-wide randomly initialised BERT with the real tokenizer: fast, still a real BertModel."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch_pinned.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(base_path).save_pretrained(out)
    return out


def tiny_tasks():
    """The default four tasks plus `similarity`, which shares the classification expert (a shared graph file)."""
    from mote_rag.tasks import DEFAULT_TASKS, Task

    return (*DEFAULT_TASKS, Task("similarity", "similarity: ", 0.05, expert="classification", aliases=("sts",)))


@pytest.fixture(scope="session")
def tiny_mote(tiny_bert_dir, nudge_experts):
    """The session's tiny MoTE (read-only; deepcopy it to change it): `tiny_bert_dir` upcycled with experts in
    layers 1 and 3, task prefixes on, five tasks on four experts, every expert nudged so every path differs."""
    from mote_rag import MoTEModel

    yield from _read_only(nudge_experts(MoTEModel.upcycle(tiny_bert_dir, tasks=tiny_tasks()), seed=3), "tiny_mote")


@pytest.fixture(scope="session")
def other_tiny_mote(tiny_mote, nudge_experts):
    """`tiny_mote` with its experts nudged again: another model (fingerprint) of the same shape, for caches and
    indexes that two models share."""
    model = nudge_experts(copy.deepcopy(tiny_mote), seed=1)
    assert model.fingerprint != tiny_mote.fingerprint
    return model


@pytest.fixture(scope="session")
def tiny_mote_dir(tmp_path_factory, tiny_mote) -> Path:
    out = tmp_path_factory.mktemp("tiny-mote")
    tiny_mote.save_pretrained(out)
    yield from _read_only_folder(out, "tiny_mote_dir")


@pytest.fixture(scope="session")
def tiny_onnx_dir(tmp_path_factory, tiny_mote) -> Path:
    """`tiny_mote` exported once for the session: every task path, fp32, optimised and int8 (read-only; copytree
    it to change it)."""
    out = tiny_mote.export_onnx(tmp_path_factory.mktemp("tiny-onnx"), optimize=True, quantize=True)
    yield from _read_only_folder(out, "tiny_onnx_dir")


# ---------------------------------------------------------------------------------------------- the real base (slow)
@pytest.fixture(scope="session")
def dense_model(base_path, torch_pinned):
    """The embedded all-MiniLM-L6-v2 as a dense MoTEModel (task prefixes on)."""
    from mote_rag import MoTEModel

    yield from _read_only(MoTEModel.dense(base_path), "dense_model")


@pytest.fixture(scope="session")
def mote_model(base_path, torch_pinned):
    """The embedded all-MiniLM-L6-v2 upcycled, experts untouched: every path is the dense model's."""
    from mote_rag import MoTEModel

    yield from _read_only(MoTEModel.upcycle(base_path), "mote_model")


@pytest.fixture(scope="session")
def minilm_mote(mote_model, torch_pinned):
    """`mote_model` with its four experts nudged apart (0.02 of each weight's std, seed 11), so each task path is a
    different function; the model of the ONNX parity and golden-vector checks."""
    torch = torch_pinned
    model = copy.deepcopy(mote_model)
    generator = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for p in model.expert_parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.02 * p.std())
    model.refresh_fingerprint()
    yield from _read_only(model, "minilm_mote")


@pytest.fixture(scope="session")
def minilm_onnx_dir(minilm_mote, tmp_path_factory) -> Path:
    """`minilm_mote` exported once for the session: every task path, fp32 and int8 (the parity tests compare
    with torch themselves, so the export's own check is off)."""
    out = minilm_mote.export_onnx(tmp_path_factory.mktemp("minilm-onnx"), quantize=True, check=False)
    yield from _read_only_folder(out, "minilm_onnx_dir")


# ---------------------------------------------------------------------------------------------- integrations
# The end-to-end slice: a seeded sample of SciFact test queries, all their positives and sampled distractors
# (mote_rag.evaluation's own limits, so the core evaluation scores exactly the same slice).
SCIFACT_LIMITS = {"max_queries": 40, "max_corpus": 300}


class CachingEncoder:
    """Wraps an encoder and remembers each (task, text) vector, so a corpus is encoded once per session.

    Records every call's task and arguments in `calls`, which routing tests read.
    """

    def __init__(self, encoder):
        self.inner = encoder
        self.cache: dict[tuple[str, str], np.ndarray] = {}
        self.calls: list[dict] = []

    @property
    def tasks(self):
        return self.inner.tasks

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def max_seq_length(self) -> int:
        return self.inner.max_seq_length

    @property
    def source(self) -> str:
        return f"caching({self.inner.source})"

    def encode_query(self, texts, **kwargs):
        return self.encode(texts, task="search_query", **kwargs)

    def encode_document(self, texts, **kwargs):
        return self.encode(texts, task="search_document", **kwargs)

    def encode(self, texts, task="search_document", batch_size=32, show_progress_bar=False, **kwargs):
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        name = self.tasks.get(task).name
        self.calls.append(
            {"task": name, "n": len(items), "batch_size": batch_size, "show_progress_bar": show_progress_bar}
        )
        missing = list(dict.fromkeys(t for t in items if (name, t) not in self.cache))
        if missing:
            vectors = self.inner.encode(
                missing, task=name, batch_size=batch_size, show_progress_bar=show_progress_bar, **kwargs
            )
            self.cache.update({(name, t): v for t, v in zip(missing, vectors)})
        out = np.stack([self.cache[(name, t)] for t in items]) if items else np.zeros((0, self.dim), np.float32)
        return out[0] if single else out


@pytest.fixture(scope="session")
def scifact_limits() -> dict:
    """The SciFact slice's limits (mote_rag.evaluation's): 40 seeded test queries, 300 passages."""
    return dict(SCIFACT_LIMITS)


@pytest.fixture(scope="session")
def caching_encoder():
    """The CachingEncoder class."""
    return CachingEncoder


def _check_routing(reference, texts, docs, queries) -> None:
    """`docs` (one batch) are `reference`'s search_document vectors and `queries` (one text per call) its
    search_query vectors, bit for bit; and the two paths really differ, so a routing mix-up would show."""
    docs, queries = np.asarray(docs, np.float32), np.asarray(queries, np.float32)
    np.testing.assert_array_equal(docs, reference.encode(texts, task="search_document", batch_size=len(texts)))
    # single-text calls are compared with single-text calls: padding in a batch changes the last bits
    np.testing.assert_array_equal(queries, np.stack([reference.encode([t], task="search_query")[0] for t in texts]))
    assert np.abs(docs - queries).max() > 1e-3


@pytest.fixture(scope="session")
def check_routing():
    """check_routing(reference_encoder, texts, doc_vectors, query_vectors): see `_check_routing`."""
    return _check_routing


def _in_order(documents, queries, documents_first: bool):
    """Run the coroutine functions `documents` and `queries` in that order (or the reverse) in one event loop;
    return (documents' result, queries' result). Cache tests embed one role first, then the other."""
    import asyncio

    async def main():
        if documents_first:
            return await documents(), await queries()
        q = await queries()
        return await documents(), q

    return asyncio.run(main())


@pytest.fixture(scope="session")
def in_order():
    """in_order(documents, queries, documents_first): see `_in_order`."""
    return _in_order


@pytest.fixture(params=["encoder object", "onnx folder"])
def routed_source(request):
    """(what the embeddings class is given, the reference encoder): `tiny_mote` itself, or its ONNX export as
    a path (the integrations' default input), checked against an OnnxEncoder on the same folder."""
    if request.param == "encoder object":
        model = request.getfixturevalue("tiny_mote")
        return model, model
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    folder = request.getfixturevalue("tiny_onnx_dir")
    return str(folder), OnnxEncoder(folder)


def _scifact_spec():
    """The core evaluation's SciFact dataset spec with this session's limits, and its folder."""
    from mote_rag.evaluation import get_suite

    suite = get_suite(["scifact"]).with_limits(SCIFACT_LIMITS)
    spec = suite.datasets[0]
    return spec, spec.resolve(suite.root_dir())


@pytest.fixture(scope="session")
def scifact_slice():
    """(corpus {id: text}, queries {id: text}, qrels): the very slice the core evaluation scores."""
    from mote_rag.evaluation.retrieval import load

    data = load(*_scifact_spec())
    return data.corpus, data.queries, data.qrels


@pytest.fixture(scope="session")
def scifact_encoder(minilm_onnx_dir):
    """The ONNX runtime encoder (the integrations' default) on `minilm_onnx_dir`, caching its vectors for the
    whole session."""
    from mote_rag.runtime.onnx_encoder import OnnxEncoder

    return CachingEncoder(OnnxEncoder(minilm_onnx_dir))


def _ndcg_at_10(qrels: dict, run: dict) -> float:
    """The core evaluation's own metric code (BEIR / trec_eval semantics), as a fraction."""
    from mote_rag.evaluation.metrics import retrieval_metrics

    return float(retrieval_metrics(qrels, run)["ndcg@10"])


@pytest.fixture(scope="session")
def ndcg_at_10():
    return _ndcg_at_10


@pytest.fixture(scope="session")
def scifact_core(scifact_slice, scifact_encoder):
    """mote_rag.evaluation.evaluate on the slice: nDCG@10 (fraction), its run and its size."""
    from mote_rag.evaluation import evaluate

    result = evaluate(scifact_encoder, suite=["scifact"], limits=SCIFACT_LIMITS, show_progress=False, keep_runs=True)
    scifact = result["datasets"]["scifact"]
    corpus, queries, qrels = scifact_slice
    assert scifact["_qrels"] == qrels and scifact["size"] == {"queries": len(queries), "corpus": len(corpus)}
    return {"ndcg@10": scifact["main_score"] / 100, "run": scifact["_run"]}
